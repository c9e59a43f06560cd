"""rpusim's config defaults equal aihwkit 1.2.0's Python dataclass defaults (spec README item 1).

The expected values come from ``tests/golden/aihwkit_defaults.json``, written by
``scripts/dump_defaults.py`` from the aihwkit oracle. One test per aihwkit class, so a class
that rpusim lacks or gets wrong fails on its own.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import warnings

import pytest

import rpusim.configs

_FIXTURE = pathlib.Path(__file__).parent / "golden" / "aihwkit_defaults.json"
# the fixture's serializer itself, so that both sides are written the same way
_spec = importlib.util.spec_from_file_location(
    "dump_defaults", pathlib.Path(__file__).parents[1] / "scripts" / "dump_defaults.py")
_dump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dump)
_plain = _dump.plain
_DEFAULTS = json.loads(_FIXTURE.read_text())["classes"]

_RPU_CONFIGS = ("SingleRPUConfig", "UnitCellRPUConfig", "FloatingPointRPUConfig",
                "DigitalRankUpdateRPUConfig")

# (class, field) -> reason: aihwkit fields that belong to its torch layer and that rpusim
# deliberately does not have.
IGNORED = {}
for _cls in _RPU_CONFIGS:
    IGNORED.update({
        (_cls, "tile_class"): "torch tile module class; rpusim has a single AnalogTile",
        (_cls, "tile_array_class"): "torch module used to split large layers into tiles",
        (_cls, "runtime"): "torch runtime options (data type, offloading); rpusim takes dtype",
    })
IGNORED.update({
    ("UnitCellRPUConfig", "device"): "aihwkit's default is the abstract UnitCell placeholder, "
                                     "which cannot build a tile",
    ("DigitalRankUpdateRPUConfig", "device"): "aihwkit's default is the abstract "
                                              "DigitalRankUpdateCell placeholder",
})


def _equal(expected, got) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if expected == got:
            return True
        return abs(expected - got) <= 1e-12 * max(abs(expected), abs(got))
    return expected == got


def _compare(expected, got, path: str, owner: str, problems: list[str]) -> None:
    """Collect every difference between an aihwkit default and rpusim's, with its path."""
    if isinstance(expected, dict) and "__class__" in expected:
        if not isinstance(got, dict) or got.get("__class__") != expected["__class__"]:
            name = got.get("__class__") if isinstance(got, dict) else got
            problems.append(f"{path}: expected a {expected['__class__']}, got {name!r}")
            return
        cls = expected["__class__"]
        for key, value in expected.items():
            if key == "__class__" or (cls, key) in IGNORED:
                continue
            if key not in got:
                problems.append(f"{path}.{key}: missing in rpusim.configs.{cls} "
                                f"(aihwkit default {value!r})")
                continue
            _compare(value, got[key], f"{path}.{key}", cls, problems)
        return
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            problems.append(f"{path}: expected {expected!r}, got {got!r}")
            return
        for k, (e, g) in enumerate(zip(expected, got)):
            _compare(e, g, f"{path}[{k}]", owner, problems)
        return
    if not _equal(expected, got):
        problems.append(f"{path}: aihwkit default {expected!r}, rpusim {got!r}")


def test_fixture_is_from_aihwkit_1_2_0():
    assert json.loads(_FIXTURE.read_text())["aihwkit_version"] == "1.2.0"


def test_ignored_fields_exist_in_aihwkit():
    # Keeps the ignore list honest: every entry names a real aihwkit field.
    for cls, field in IGNORED:
        assert field in _DEFAULTS[cls], (cls, field)


@pytest.mark.parametrize("name", sorted(_DEFAULTS))
def test_defaults_equal_aihwkit(name):
    cls = getattr(rpusim.configs, name, None)
    assert cls is not None, f"rpusim.configs has no class {name}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)   # DifferenceUnitCell says so
        got = _plain(cls())
    problems: list[str] = []
    _compare(_DEFAULTS[name], got, name, name, problems)
    assert not problems, "defaults differ from aihwkit 1.2.0:\n" + "\n".join(problems)
