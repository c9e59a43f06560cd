"""Dump the Python dataclass defaults of aihwkit 1.2.0's configuration classes to JSON.

Run with the aihwkit oracle environment (not with rpusim)::

    /tmp/aihwkit-venv/bin/python scripts/dump_defaults.py [output.json]

The output (default ``tests/golden/aihwkit_defaults.json``) maps every config class that
rpusim's API contract names to the default value of each of its fields. Values are JSON-safe:
enums as their member name, nested dataclasses as dicts with a ``"__class__"`` key, tuples as
lists, non-finite floats as the strings ``"inf"``, ``"-inf"`` and ``"nan"``, other objects (an
inference noise model) as their public attributes with a ``"__class__"`` key. A value that has
no JSON form (a class object such as ``tile_class``) is written as ``{"__repr__": repr(value)}``.
``tests/test_defaults.py`` compares rpusim's defaults with this file.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import pathlib
import sys

CLASSES = [
    # parameters
    "IOParameters", "UpdateParameters", "DriftParameter", "SimpleDriftParameter",
    # single devices
    "FloatingPointDevice", "IdealDevice", "ConstantStepDevice", "LinearStepDevice",
    "SoftBoundsDevice", "SoftBoundsPmaxDevice", "SoftBoundsReferenceDevice", "ExpStepDevice",
    "PowStepDevice", "PowStepReferenceDevice", "PiecewiseStepDevice",
    # compounds
    "VectorUnitCell", "ReferenceUnitCell", "OneSidedUnitCell", "DifferenceUnitCell",
    "TransferCompound", "BufferedTransferCompound", "ChoppedTransferCompound",
    "DynamicTransferCompound", "MixedPrecisionCompound",
    # RPU configurations
    "SingleRPUConfig", "UnitCellRPUConfig", "FloatingPointRPUConfig",
    "DigitalRankUpdateRPUConfig",
]


def plain(value):
    """Return a JSON-safe form of a default value."""
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {"__class__": type(value).__name__}
        for field in dataclasses.fields(value):
            out[field.name] = plain(getattr(value, field.name))
        return out
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if not isinstance(value, type) and hasattr(value, "__dict__"):
        # a plain object (an inference noise model, a drift compensation): its public state
        out = {"__class__": type(value).__name__}
        for name, item in vars(value).items():
            if not name.startswith("_"):
                out[name] = plain(item)
        return out
    return {"__repr__": repr(value)}


def main(argv: list[str]) -> None:
    # imported here so that tests can use ``plain`` without aihwkit installed
    import aihwkit
    from aihwkit.simulator import configs as aconf

    root = pathlib.Path(__file__).resolve().parents[1]
    target = pathlib.Path(argv[1]) if len(argv) > 1 else root / "tests/golden/aihwkit_defaults.json"
    classes = {}
    for name in CLASSES:
        cls = getattr(aconf, name)
        classes[name] = plain(cls())
    data = {"aihwkit_version": aihwkit.__version__, "classes": classes}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {len(classes)} classes to {target}")


if __name__ == "__main__":
    main(sys.argv)
