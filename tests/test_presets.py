"""rpusim.presets equal aihwkit 1.2.0's presets field by field, and each one runs in a tile.

The expected values come from ``tests/golden/aihwkit_presets.json``, written by
``scripts/dump_presets.py`` from the aihwkit oracle with the serializer of
``scripts/dump_defaults.py`` (also used here for rpusim's side). One test per preset, so a
preset that rpusim lacks or gets wrong fails on its own.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rpusim.configs
import rpusim.presets
from rpusim import AnalogTile
from rpusim.configs import (IOParameters, RPUConfig, SingleRPUConfig, UnitCellRPUConfig,
                            UpdateParameters)
from rpusim.configs._base import ConfigBase
from rpusim.demo import pulse_response
from rpusim.devices import PulsedDevice

ROOT = pathlib.Path(__file__).resolve().parents[1]
_FIXTURE = json.loads((ROOT / "tests" / "golden" / "aihwkit_presets.json").read_text())
_spec = importlib.util.spec_from_file_location("dump_defaults",
                                               ROOT / "scripts" / "dump_defaults.py")
_dump = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_dump)
_plain = _dump.plain

_RESPONSES = json.loads(
    (ROOT / "tests" / "golden" / "aihwkit_preset_responses.json").read_text())
PRESETS = _FIXTURE["presets"]
WEB_PRESETS = _FIXTURE["web_presets"]
CLASSES = _FIXTURE["classes"]
BASES = _FIXTURE["bases"]

# Fields of aihwkit's configs that rpusim deliberately does not have: those of the RPU
# configs that belong to its torch layer (as in test_defaults.py; rpusim has one AnalogTile
# class and takes the dtype as a tile argument), and one unused converter attribute.
IGNORED_FIELDS = {
    "tile_class": "torch tile module class; rpusim has a single AnalogTile",
    "tile_array_class": "torch module used to split large layers into tiles",
    "simulator_tile_class": "torch simulator class of aihwkit's torch inference tile",
    "runtime": "torch runtime options (data type, offloading); rpusim takes dtype",
    "scale_ratio": "attribute aihwkit's conductance converters set to None and never read "
                   "(the conversion returns the ratio with its parameters)",
}


def _equal(expected, got) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return type(expected) is type(got) and expected == got
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        return expected == got or abs(expected - got) <= 1e-12 * max(abs(expected), abs(got))
    return expected == got


def _compare(expected, got, path: str, problems: list[str]) -> None:
    """Collect every difference between aihwkit's serialized value and rpusim's, with its path."""
    if isinstance(expected, dict) and "__class__" in expected:
        name = got.get("__class__") if isinstance(got, dict) else got
        if name != expected["__class__"]:
            problems.append(f"{path}: expected a {expected['__class__']}, got {name!r}")
            return
        for key, value in expected.items():
            if key == "__class__" or key in IGNORED_FIELDS:
                continue
            if key not in got:
                problems.append(f"{path}.{key}: missing in rpusim's {name} (aihwkit: {value!r})")
            else:
                _compare(value, got[key], f"{path}.{key}", problems)
        return
    if isinstance(expected, list):
        if not isinstance(got, list) or len(got) != len(expected):
            problems.append(f"{path}: expected {expected!r}, got {got!r}")
            return
        for k, (e, g) in enumerate(zip(expected, got)):
            _compare(e, g, f"{path}[{k}]", problems)
        return
    if not _equal(expected, got):
        problems.append(f"{path}: aihwkit {expected!r}, rpusim {got!r}")


def test_fixture_is_from_aihwkit_1_2_0():
    assert _FIXTURE["aihwkit_version"] == "1.2.0"
    assert len(PRESETS) == 68


def test_package_exports_exactly_aihwkits_presets():
    assert sorted(rpusim.presets.__all__) == sorted(PRESETS)


def _check_preset(cls, name: str) -> None:
    assert cls is not None, f"rpusim has no preset {name}"
    base = cls.__mro__[1]
    assert dataclasses.is_dataclass(cls) and base.__name__ == BASES[name], (
        f"{name} must subclass {BASES[name]} (as in aihwkit), not {base.__name__}")
    problems: list[str] = []
    _compare(CLASSES[name], _plain(cls()), name, problems)
    assert not problems, f"{name} differs from aihwkit 1.2.0:\n" + "\n".join(problems)


@pytest.mark.parametrize("name", PRESETS)
def test_preset_equals_aihwkit(name):
    _check_preset(getattr(rpusim.presets, name, None), name)


@pytest.mark.parametrize("name", WEB_PRESETS)
def test_web_preset_equals_aihwkit(name):
    _check_preset(getattr(rpusim.presets.web, name, None), name)


def test_ignored_fields_exist_in_aihwkit():
    # keeps the ignore list honest: every entry names a field of some aihwkit preset
    text = json.dumps(CLASSES)
    for field in IGNORED_FIELDS:
        assert f'"{field}":' in text, field


def _as_rpu_config(preset) -> RPUConfig:
    """A tile config that exercises ``preset`` (an RPU config, device, IO or update preset)."""
    if isinstance(preset, RPUConfig):
        return preset
    if isinstance(preset, PulsedDevice):
        return SingleRPUConfig(device=preset)
    if isinstance(preset, IOParameters):
        return SingleRPUConfig(forward=preset, backward=preset)
    if isinstance(preset, UpdateParameters):
        return SingleRPUConfig(update=preset)
    return UnitCellRPUConfig(device=preset)


@pytest.mark.parametrize("name", PRESETS + ["WebComposerInferenceRPUConfig",
                                            "OldWebComposerInferenceRPUConfig"])
def test_preset_trains_in_a_tile(name):
    preset = getattr(rpusim.presets, name, None) or getattr(rpusim.presets.web, name)
    tile = AnalogTile(3, 4, _as_rpu_config(preset()), seed=1)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (8, 4))
    y = tile.forward(x)
    assert y.shape == (8, 3) and np.all(np.isfinite(y))
    before = {"weights": tile.get_weights(), **tile.get_hidden_parameters()}
    for _ in range(3):
        tile.update(x, rng.uniform(-1, 1, (8, 3)), lr=0.5)
        tile.post_update_step()
    after = {"weights": tile.get_weights(), **tile.get_hidden_parameters()}
    assert all(np.all(np.isfinite(v)) for v in after.values())
    changed = [key for key in before if not np.array_equal(before[key], after[key])]
    assert changed, f"{name}: three updates changed neither the weights nor a hidden parameter"
    # the whole state (write noise of every sub-device included) survives a round trip
    twin = AnalogTile.from_state_dict(tile.state_dict())
    np.testing.assert_array_equal(twin.forward(x, is_test=True), tile.forward(x, is_test=True))


DEVICE_PRESETS = [n for n in PRESETS if n.endswith("PresetDevice")]


@pytest.mark.parametrize("name", DEVICE_PRESETS)
def test_preset_device_runs_as_its_base_model(name):
    """A preset device is its base model with other values: same seed => same bits."""
    preset = getattr(rpusim.presets, name)()
    base_cls = getattr(rpusim.configs, BASES[name])
    twin = base_cls(**{f.name: getattr(preset, f.name) for f in dataclasses.fields(preset)})
    rng = np.random.default_rng(3)
    x, d = rng.uniform(-1, 1, (5, 4)), rng.uniform(-1, 1, (5, 3))
    results = []
    for device in (preset, twin):
        tile = AnalogTile(3, 4, SingleRPUConfig(device=device), seed=7)
        tile.update(x, d, lr=0.3)
        results.append((tile.get_hidden_parameters(), tile.forward(x)))
    (hidden_p, y_p), (hidden_t, y_t) = results
    assert list(hidden_p) == list(hidden_t)
    for key in hidden_p:
        np.testing.assert_array_equal(hidden_p[key], hidden_t[key], err_msg=key)
    np.testing.assert_array_equal(y_p, y_t)
    # and the preset's values are the ones in effect, not the base class defaults
    assert _plain(preset) != _plain(base_cls())


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_RESPONSES["devices"]))
def test_preset_device_pulse_response_matches_aihwkit(name):
    """Mean and spread over 300 elements of n up then n down single pulses, against aihwkit's.

    The means may differ by 4 standard errors of the difference (at each of six pulse
    counts); the standard deviations by a factor 1.35 (the standard error of a ratio of two
    300-sample standard deviations is about 0.06).
    """
    ref = _RESPONSES["devices"][name]
    n_elements = _RESPONSES["elements"]
    trace = pulse_response(getattr(rpusim.presets, name)(), ref["pulses"], n_elements, seed=11)
    at = trace[ref["checkpoints"]].astype(np.float64)
    mean, var = np.array(ref["mean"]), np.array(ref["var"])
    se = np.sqrt((var + at.var(axis=1)) / n_elements)
    z = (at.mean(axis=1) - mean) / np.where(se > 0, se, 1.0)
    assert np.all(np.abs(z) < 4.0), f"{name}: mean differs by {np.round(z, 1)} SE"
    spread = var > 1e-12
    ratio = at.std(axis=1)[spread] / np.sqrt(var[spread])
    assert np.all((ratio > 1 / 1.35) & (ratio < 1.35)), f"{name}: std ratio {np.round(ratio, 2)}"


@pytest.mark.parametrize("name", DEVICE_PRESETS + ["PCMPresetUnitCell"])
def test_response_command_draws_each_preset_device(name, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    from rpusim.__main__ import main
    field, value, shown = (("refresh_every", "2", "2") if name == "PCMPresetUnitCell"
                           else ("dw_min_std", "0", "0.0"))
    out = tmp_path / f"{name}.png"
    assert main(["response", name, f"--{field}", value, "--pulses", "4", "--devices", "2",
                 "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = capsys.readouterr().out
    # the preset's own values, with the one field set on the command line
    assert f"{name}({field}={shown})" in text


def test_subclass_adding_a_field_is_not_silently_its_parent():
    @dataclasses.dataclass
    class ExtendedReRam(rpusim.presets.ReRamESPresetDevice):
        extra_knob: float = 1.0

    with pytest.raises(TypeError, match="not a registered device model"):
        AnalogTile(2, 2, SingleRPUConfig(device=ExtendedReRam()))


def test_presets_are_independent_instances():
    a, b = rpusim.presets.TikiTakaReRamSBPreset(), rpusim.presets.TikiTakaReRamSBPreset()
    a.device.unit_cell_devices[0].dw_min = 0.5
    assert b.device.unit_cell_devices[0].dw_min == 0.002
    assert a.device.unit_cell_devices[1].dw_min == 0.002


def test_saved_preset_tile_loads_in_a_fresh_process(tmp_path):
    tile = AnalogTile(3, 2, rpusim.presets.AGADReRamSBPreset(), seed=4)
    tile.update(np.ones((2, 2)), np.full((2, 3), 0.5), lr=0.2)
    path = tmp_path / "agad.npz"
    tile.save(path)
    np.save(tmp_path / "w.npy", tile.get_weights())
    code = ("import sys, numpy as np; from rpusim import AnalogTile; "
            "t = AnalogTile.load(sys.argv[1]); "
            "assert type(t.rpu_config).__name__ == 'AGADReRamSBPreset'; "
            "assert np.array_equal(t.get_weights(), np.load(sys.argv[2]))")
    result = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "w.npy")],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]


def test_every_preset_is_a_config():
    for name in rpusim.presets.__all__:
        assert issubclass(getattr(rpusim.presets, name), ConfigBase), name
