"""Run IBM aihwkit's own example scripts on rpusim, with only their import lines changed.

Given the ``examples/`` folder of an aihwkit clone, each example that runs offline (no data-set
download) is copied to a scratch folder, its ``aihwkit`` imports are rewritten by the migration
map of the API contract (``shared/api.md``; longest prefix wins, submodules collapse onto the
target module), the one line that imports aihwkit's CUDA probe is dropped and
``cuda.is_compiled()`` becomes ``False`` (rpusim has no CUDA build). The script then runs as
written, epochs included, under a timeout; the report gives pass/fail/timeout per example with
the reason (the last line of the error) and the last line the script printed.

Usage::

    git clone https://github.com/IBM/aihwkit && \\
    python scripts/run_aihwkit_examples.py aihwkit/examples [--only 01,05] [--timeout 900]
        [--workdir DIR] [--json report.json] [--original --python /path/to/aihwkit-venv/python]

``--original`` runs the scripts unchanged (give ``--python`` an interpreter with aihwkit
installed), to put aihwkit's own output next to rpusim's. Plots go to matplotlib's Agg backend.
The examples are never copied into this repository: they are aihwkit's code.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

# The examples of aihwkit's folder that need no data-set download (issue 19).
OFFLINE = ("01", "02", "05", "07", "08", "09", "10", "12", "15", "19", "21", "23", "26", "28",
           "29", "31", "32", "34")
# Third-party packages an offline example imports beyond rpusim's extras: without them the
# example is reported as skipped, not failed.
REQUIRES = {"29": ("pyamg",)}

# aihwkit module -> rpusim module (shared/api.md); a key also covers its submodules.
MIGRATION_MAP = {
    "aihwkit.simulator.configs": "rpusim.configs",
    "aihwkit.simulator.parameters": "rpusim.configs",
    "aihwkit.simulator.presets": "rpusim.presets",
    "aihwkit.simulator.tiles": "rpusim",
    "aihwkit.simulator": "rpusim",
    "aihwkit.nn": "rpusim.torch",
    "aihwkit.optim": "rpusim.torch",
    "aihwkit.utils.analog_info": "rpusim.torch",
    "aihwkit.inference": "rpusim.inference",
    "aihwkit.utils.visualization": "rpusim.plotting",
    "aihwkit.linalg": "rpusim.linalg",
    "aihwkit.utils": "rpusim.utils",
    "aihwkit": "rpusim",
}

_CUDA_IMPORT = re.compile(r"^[ \t]*from[ \t]+aihwkit\.simulator\.rpu_base[ \t]+import[ \t]+cuda"
                          r"[ \t]*(#.*)?\n", re.MULTILINE)
_FROM_IMPORT = re.compile(r"^([ \t]*from[ \t]+)(aihwkit(?:\.\w+)*)(?=[ \t]+import\b)",
                          re.MULTILINE)
_PLAIN_IMPORT = re.compile(r"^([ \t]*import[ \t]+)(aihwkit(?:\.\w+)*)([ \t]+as[ \t]+\w+)",
                           re.MULTILINE)


def map_module(name: str) -> str:
    """The rpusim module that stands in for aihwkit module ``name`` (longest prefix wins).

    Raises
    ------
    ValueError
        ``name`` is not an aihwkit module.
    """
    for prefix in sorted(MIGRATION_MAP, key=len, reverse=True):
        if name == prefix or name.startswith(prefix + "."):
            return MIGRATION_MAP[prefix]
    raise ValueError(f"not an aihwkit module: {name!r}")


def rewrite_source(source: str) -> str:
    """Rewrite a script's aihwkit imports by the migration map, and its CUDA probe.

    ``from aihwkit.x.y import a, b`` keeps its names and gets the mapped module;
    ``import aihwkit.x as m`` becomes ``import <mapped> as m``; the line importing
    ``aihwkit.simulator.rpu_base.cuda`` is dropped and ``cuda.is_compiled()`` reads ``False``.
    A bare ``import aihwkit.x`` (used as a dotted name later) raises ``ValueError``: it cannot
    be rewritten on the import line alone.
    """
    text = _CUDA_IMPORT.sub("", source)
    text = re.sub(r"\bcuda\.is_compiled\(\)", "False", text)
    text = _FROM_IMPORT.sub(lambda m: m.group(1) + map_module(m.group(2)), text)
    text = _PLAIN_IMPORT.sub(lambda m: m.group(1) + map_module(m.group(2)) + m.group(3), text)
    left = re.search(r"^[ \t]*(from|import)[ \t]+aihwkit\b.*$", text, re.MULTILINE)
    if left:
        raise ValueError(f"import line not rewritable by the map: {left.group(0).strip()!r}")
    return text


def find_examples(folder: pathlib.Path, only: list[str] | None = None) -> list[pathlib.Path]:
    """The offline examples ``NN_*.py`` present in ``folder`` (all of ``OFFLINE`` by default)."""
    wanted = only or list(OFFLINE)
    found = []
    for number in wanted:
        matches = sorted(folder.glob(f"{number}_*.py"))
        if not matches:
            raise FileNotFoundError(f"no example {number}_*.py in {folder}")
        found.append(matches[0])
    return found


def _reason(output: str) -> str:
    """The line that says why a script failed: the exception line of its traceback."""
    lines = [line for line in output.strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Interrupt|Exit)\b", line):
            return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


def _last_printed(stdout: str) -> str:
    lines = [line for line in stdout.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


def run_example(script: pathlib.Path, workdir: pathlib.Path, python: str, timeout: float,
                original: bool = False) -> dict:
    """Rewrite (unless ``original``) and run one example in ``workdir``; return its record."""
    name = script.stem
    record = {"example": name, "status": "fail", "reason": "", "last_line": "", "seconds": 0.0}
    missing = [m for m in REQUIRES.get(name.split("_", 1)[0], ())
               if subprocess.run([python, "-c", f"import {m}"], capture_output=True).returncode]
    if missing:
        record.update(status="skipped", reason=f"needs {', '.join(missing)} (not installed)")
        return record
    run_dir = workdir / name
    if run_dir.exists():
        shutil.rmtree(run_dir)
    # the example's folder comes along: scripts read data next to themselves (csv/)
    shutil.copytree(script.parent, run_dir, ignore=shutil.ignore_patterns("*.py", "img"))
    target = run_dir / script.name
    try:
        source = script.read_text(encoding="utf-8")
        target.write_text(source if original else rewrite_source(source), encoding="utf-8")
    except ValueError as err:
        record["reason"] = f"rewrite: {err}"
        return record
    env = dict(os.environ, MPLBACKEND="Agg")
    if not original:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    start = time.perf_counter()
    try:
        done = subprocess.run([python, target.name], cwd=run_dir, env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        record.update(status="timeout", reason=f"still running after {timeout:g} s",
                      last_line=_last_printed(_text(err.stdout)))
    else:
        record["last_line"] = _last_printed(done.stdout)
        if done.returncode == 0:
            record["status"] = "pass"
        else:
            record["reason"] = _reason(done.stderr) or f"exit status {done.returncode}"
        (run_dir / "stdout.txt").write_text(done.stdout, encoding="utf-8")
        (run_dir / "stderr.txt").write_text(done.stderr, encoding="utf-8")
    record["seconds"] = round(time.perf_counter() - start, 1)
    return record


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def format_table(records: list[dict]) -> str:
    """A Markdown table of the records."""
    rows = ["| example | result | seconds | reason / last line printed |", "|---|---|---|---|"]
    for rec in records:
        detail = rec["reason"] if rec["status"] != "pass" else rec["last_line"]
        detail = detail.replace("|", "\\|")
        rows.append(f"| {rec['example']} | {rec['status']} | {rec['seconds']:g} | {detail} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=pathlib.Path, help="aihwkit's examples/ folder")
    parser.add_argument("--only", default="", help="comma-separated example numbers, e.g. 01,23")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds per example")
    parser.add_argument("--workdir", type=pathlib.Path, default=None,
                        help="where the rewritten copies run (default: a temporary folder)")
    parser.add_argument("--python", default=sys.executable, help="interpreter to run them with")
    parser.add_argument("--original", action="store_true",
                        help="run the scripts unchanged (with an aihwkit interpreter)")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write records here")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] or None
    scripts = find_examples(args.folder.resolve(), only)
    workdir = args.workdir or pathlib.Path(tempfile.mkdtemp(prefix="aihwkit_examples_"))
    workdir.mkdir(parents=True, exist_ok=True)
    records = []
    for script in scripts:
        rec = run_example(script, workdir.resolve(), args.python, args.timeout, args.original)
        records.append(rec)
        print(f"{rec['example']:45s} {rec['status']:8s} {rec['seconds']:7.1f} s  "
              f"{rec['reason'] or rec['last_line']}", flush=True)
    print()
    print(format_table(records))
    skipped = sum(r["status"] == "skipped" for r in records)
    print(f"\n{sum(r['status'] == 'pass' for r in records)} of {len(records)} pass"
          f"{f', {skipped} skipped' if skipped else ''} (outputs under {workdir})")
    if args.json:
        args.json.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return 0 if all(r["status"] in ("pass", "skipped") for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
