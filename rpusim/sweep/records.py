"""A results folder: one JSON record per finished run, written atomically, and a manifest.

Layout of ``DIR``::

    sweep.json            what the sweep is (experiment, base, grid, seeds) and its run keys
    records/KEY.json      one finished run: parameters, seed, status, metrics or error, time, worker
    results.csv           the table (rewritten at the end of every run of the sweep)

A record is written to a temporary file in ``records/`` and renamed over its final name
(``os.replace``, atomic on POSIX and Windows), so a crash leaves either no record or a whole
one; a rerun treats the run as unfinished in the first case. Only the driver writes records,
once per result it receives, so a run recomputed after a lost worker still gives one record.
"""

from __future__ import annotations

import json
import os
import pathlib
import tempfile
import warnings

__all__ = ["SweepMismatch", "MANIFEST", "RECORDS", "open_folder", "write_record",
           "write_atomic"]

MANIFEST = "sweep.json"
RECORDS = "records"


class SweepMismatch(ValueError):
    """The results folder belongs to a different sweep (its runs differ from the SPEC's)."""


def write_atomic(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: all or nothing."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise


def _manifest(description: dict, keys: list[str]) -> dict:
    return {**description, "runs": keys}


def open_folder(folder, description: dict, points) -> dict[str, dict]:
    """Prepare ``folder`` for a sweep and return the records already finished, by run key.

    A new folder gets a manifest. An existing one must hold the same runs (the same keys);
    otherwise :class:`SweepMismatch` is raised and nothing is touched. A record that cannot
    be read (e.g. edited by hand) is reported with a warning and treated as unfinished.
    """
    folder = pathlib.Path(folder)
    keys = [point.key for point in points]
    manifest_path = folder / MANIFEST
    if manifest_path.exists():
        try:
            old = json.loads(manifest_path.read_text())
            old_keys = old["runs"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise SweepMismatch(f"{manifest_path} is not a sweep manifest ({err}); use another "
                                f"folder") from None
        if set(old_keys) != set(keys):
            gone, new = len(set(old_keys) - set(keys)), len(set(keys) - set(old_keys))
            raise SweepMismatch(
                f"{folder} holds a different sweep (experiment {old.get('experiment')!r}): "
                f"{gone} of its {len(old_keys)} runs are not in this SPEC and {new} of this "
                f"SPEC's {len(keys)} runs are not in it (changed base, grid, seeds or "
                f"experiment); results are never mixed: use another folder (--out), or delete "
                f"{folder} to start over")
    else:
        (folder / RECORDS).mkdir(parents=True, exist_ok=True)
        write_atomic(manifest_path, json.dumps(_manifest(description, keys), indent=1))
    (folder / RECORDS).mkdir(exist_ok=True)
    finished = {}
    for point in points:
        record = _read_record(folder / RECORDS / f"{point.key}.json", point)
        if record is not None:
            finished[point.key] = record
    return finished


def _read_record(path: pathlib.Path, point) -> dict | None:
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        same = (record["key"] == point.key and record["seed"] == point.seed
                and record["params"] == point.params and record["status"] in ("ok", "error"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        warnings.warn(f"unreadable record {path} ({err}): the run is computed again",
                      stacklevel=3)
        return None
    if not same:
        warnings.warn(f"record {path} does not match its run: the run is computed again",
                      stacklevel=3)
        return None
    return record


def write_record(folder, record: dict) -> None:
    """Write one finished run's record atomically (``records/KEY.json``)."""
    path = pathlib.Path(folder) / RECORDS / f"{record['key']}.json"
    write_atomic(path, json.dumps(record, indent=1))
