"""Dump every preset of aihwkit 1.2.0 (``aihwkit.simulator.presets``) to JSON, field by field.

Run with the aihwkit oracle environment (not with rpusim)::

    /tmp/aihwkit-venv/bin/python scripts/dump_presets.py [output.json]

The output (default ``tests/golden/aihwkit_presets.json``) maps each preset class name to its
default instance, serialized recursively (nested devices, IO and update parameters, noise
models) by ``scripts/dump_defaults.py``'s ``plain``: class names under ``"__class__"``, enums
as member names. ``"presets"`` holds the names ``aihwkit.simulator.presets`` exports;
``"web_presets"`` the classes of its ``web`` module (the inference composer's defaults,
not exported by the package). ``"bases"`` names the aihwkit base class of each preset.
``tests/test_presets.py`` compares rpusim's presets with this file.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _plain():
    """``plain`` of scripts/dump_defaults.py (one serializer for both fixtures)."""
    spec = importlib.util.spec_from_file_location("dump_defaults", ROOT / "scripts" /
                                                  "dump_defaults.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.plain


def _classes(module) -> list[type]:
    """The dataclasses defined in ``module`` itself, in source order."""
    found = [cls for _, cls in inspect.getmembers(module, inspect.isclass)
             if cls.__module__ == module.__name__]
    return sorted(found, key=lambda cls: inspect.getsourcelines(cls)[1])


def main(argv: list[str]) -> None:
    import aihwkit
    from aihwkit.simulator import presets
    from aihwkit.simulator.presets import web

    plain = _plain()
    target = pathlib.Path(argv[1]) if len(argv) > 1 else ROOT / "tests/golden/aihwkit_presets.json"
    names = [name for name in dir(presets)
             if inspect.isclass(getattr(presets, name))
             and getattr(presets, name).__module__.startswith("aihwkit.simulator.presets.")]
    web_names = [cls.__name__ for cls in _classes(web)]
    everything = {name: getattr(presets, name) for name in names}
    everything.update({name: getattr(web, name) for name in web_names})
    data = {
        "aihwkit_version": aihwkit.__version__,
        "presets": sorted(names),
        "web_presets": web_names,
        "bases": {name: cls.__mro__[1].__name__ for name, cls in everything.items()},
        "classes": {name: plain(cls()) for name, cls in everything.items()},
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1) + "\n")
    print(f"wrote {len(names)} presets and {len(web_names)} web presets to {target}")


if __name__ == "__main__":
    main(sys.argv)
