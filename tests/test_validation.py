"""Input validation at every public entry, and hypothesis fuzzing of all of them.

Every call with random shapes, dtypes and values (NaN/inf, empty, huge) must either raise a
clean ``ValueError``/``TypeError`` and leave the tile exactly as it was (the full state dict is
compared), or give a valid result (right shape and dtype, finite, finite weights afterwards).
The number of bad-input cases tried is printed at the end of the module.
"""

from __future__ import annotations

import collections
import copy
import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rpusim.configs as C
from rpusim import AnalogTile
from rpusim.persistence import state_differences

OUT, IN = 3, 4
COUNTS: collections.Counter = collections.Counter()

# a few configs covering the model families (floating point, pulsed, write noise, compounds)
_FUZZ_CONFIGS = {
    "constant_step": lambda: C.RPUConfig(),
    "constant_step_processes": lambda: C.SingleRPUConfig(device=C.ConstantStepDevice(
        lifetime=10.0, diffusion=0.01, count_pulses=True, drift=C.DriftParameter(nu=0.1))),
    "ideal": lambda: C.SingleRPUConfig(device=C.IdealDevice(diffusion=0.01, lifetime=10.0)),
    "floating_point": lambda: C.FloatingPointRPUConfig(),
    "no_bl_management": lambda: C.SingleRPUConfig(update=C.UpdateParameters(
        fixed_bl=False, update_bl_management=False, update_management=False)),
    "deterministic_implicit": lambda: C.SingleRPUConfig(update=C.UpdateParameters(
        pulse_type=C.PulseType.DETERMINISTIC_IMPLICIT)),
}
if hasattr(C, "LinearStepDevice"):
    _FUZZ_CONFIGS["linear_step_write_noise"] = lambda: C.SingleRPUConfig(
        device=C.LinearStepDevice(write_noise_std=0.5))
if hasattr(C, "TransferCompound"):
    _FUZZ_CONFIGS["transfer"] = lambda: C.UnitCellRPUConfig(device=C.TransferCompound(
        unit_cell_devices=[C.ConstantStepDevice(), C.ConstantStepDevice()], transfer_every=1))
if hasattr(C, "VectorUnitCell"):
    _FUZZ_CONFIGS["vector"] = lambda: C.UnitCellRPUConfig(device=C.VectorUnitCell(
        unit_cell_devices=[C.ConstantStepDevice(), C.ConstantStepDevice()]))

_STATES: dict = {}


def fresh_tile(name: str) -> AnalogTile:
    """A tile of the named config in a fixed trained state (built once, restored per call)."""
    if name not in _STATES:
        tile = AnalogTile(OUT, IN, _FUZZ_CONFIGS[name](), seed=5)
        gen = np.random.default_rng(0)
        tile.update(gen.uniform(-1, 1, (2, IN)), gen.uniform(-1, 1, (2, OUT)))
        _STATES[name] = tile.state_dict()
    return AnalogTile.from_state_dict(_STATES[name])


def _is_clean(err: BaseException) -> bool:
    text = f"{type(err).__module__} {err}".lower()
    return not any(s in text for s in ("numba", "no implementation of function",
                                       "typingerror", "cannot determine"))


def attempt(tile: AnalogTile, entry: str, *args, **kwargs):
    """Call ``tile.entry``; a refusal must be clean and change nothing."""
    before = tile.state_dict()
    try:
        result = getattr(tile, entry)(*args, **kwargs)
    except (ValueError, TypeError) as err:
        assert _is_clean(err), f"{entry}: leaked internal error {type(err).__name__}: {err}"
        assert str(err), f"{entry}: empty error message"
        diff = state_differences(before, tile.state_dict())
        assert diff == [], f"{entry} raised {err!r} but changed {diff}"
        COUNTS["refused"] += 1
        COUNTS[f"refused {entry}"] += 1
        return "refused"
    COUNTS["accepted"] += 1
    assert np.isfinite(tile.get_weights()).all(), f"{entry} left non-finite weights"
    for name, value in tile.get_hidden_parameters().items():
        assert np.isfinite(value).all(), f"{entry} left non-finite {name}"
    return result


# -- strategies --------------------------------------------------------------------------------
_DTYPES = [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
           np.complex64, object, str]
_SPECIAL = [0.0, -0.0, 1.0, -1.0, np.nan, np.inf, -np.inf, 1e-45, 1e-300, 1e10, 1e20, 1e30,
            3e38, -3e38, 1e300, -1e300]
values = st.one_of(st.floats(-2, 2), st.sampled_from(_SPECIAL),
                   st.floats(allow_nan=True, allow_infinity=True))


@st.composite
def arrays(draw, good_shapes):
    """Mostly well-shaped, sometimes misshapen or empty arrays of many dtypes and values."""
    shape = draw(st.one_of(st.sampled_from(good_shapes),
                           st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple)))
    dtype = draw(st.sampled_from(_DTYPES) if draw(st.booleans()) else st.just(np.float64))
    size = int(np.prod(shape)) if shape else 1
    data = draw(st.lists(values, min_size=size, max_size=size))
    kind = draw(st.sampled_from(["array", "array", "list", "scalar"]))
    with np.errstate(all="ignore"):
        base = np.array(data, dtype=np.float64).reshape(shape)
        if dtype is object:
            arr = base.astype(object)
        elif dtype is str:
            arr = base.astype(str)
        elif np.dtype(dtype).kind in "iub":
            arr = np.nan_to_num(base, posinf=0, neginf=0).clip(-100, 100).astype(dtype)
        else:
            arr = base.astype(dtype)
    if kind == "list":
        return arr.tolist()
    if kind == "scalar":
        return arr.reshape(-1)[0] if arr.size else None
    return arr


numbers = st.one_of(values, st.integers(-10**20, 10**20), st.none(), st.text(max_size=3),
                    st.booleans(), st.just([1.0]), st.just(np.float32(0.5)),
                    st.just(np.array(0.3)), st.just(1 + 2j))

CONFIG_NAMES = sorted(_FUZZ_CONFIGS)


@settings(max_examples=100)
@given(name=st.sampled_from(CONFIG_NAMES), x=arrays([(IN,), (2, IN), (0, IN)]),
       is_test=st.sampled_from([False, True, 1, None]))
def test_fuzz_forward(name, x, is_test):
    tile = fresh_tile(name)
    y = attempt(tile, "forward", x, is_test=is_test)
    if not isinstance(y, str):
        assert y.dtype == tile.dtype and y.shape[-1] == OUT and np.isfinite(y).all()


@settings(max_examples=100)
@given(name=st.sampled_from(CONFIG_NAMES), d=arrays([(OUT,), (2, OUT), (0, OUT)]))
def test_fuzz_backward(name, d):
    tile = fresh_tile(name)
    z = attempt(tile, "backward", d)
    if not isinstance(z, str):
        assert z.dtype == tile.dtype and z.shape[-1] == IN and np.isfinite(z).all()


@settings(max_examples=200)
@given(name=st.sampled_from(CONFIG_NAMES), x=arrays([(IN,), (2, IN), (0, IN)]),
       d=arrays([(OUT,), (2, OUT), (0, OUT)]),
       lr=st.one_of(st.none(), st.floats(0, 1), numbers))
def test_fuzz_update(name, x, d, lr):
    tile = fresh_tile(name)
    attempt(tile, "update", x, d, lr)


@settings(max_examples=60)
@given(name=st.sampled_from(CONFIG_NAMES), w=arrays([(OUT, IN)]))
def test_fuzz_set_weights(name, w):
    attempt(fresh_tile(name), "set_weights", w)


@settings(max_examples=60)
@given(name=st.sampled_from(CONFIG_NAMES), data=st.data())
def test_fuzz_set_hidden_parameters(name, data):
    tile = fresh_tile(name)
    names = tile.get_hidden_parameter_names() + ["nonsense", "", "max_bound_9"]
    keys = data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True))
    params = {k: data.draw(arrays([(OUT, IN)])) for k in keys}
    if data.draw(st.booleans()):
        params = data.draw(st.sampled_from([params, list(params.items()), None, 5]))
    attempt(tile, "set_hidden_parameters", params)


@settings(max_examples=150)
@given(name=st.sampled_from(CONFIG_NAMES),
       call=st.sampled_from(["decay_weights", "drift_weights", "reset_columns",
                             "set_learning_rate", "set_hidden_update_index",
                             "diffuse_weights", "post_update_step"]),
       a=numbers, b=st.one_of(st.integers(-10, 10), numbers), c=numbers)
def test_fuzz_scalar_entries(name, call, a, b, c):
    tile = fresh_tile(name)
    if call == "reset_columns":
        attempt(tile, call, a, b, c)
    elif call in ("diffuse_weights", "post_update_step"):
        attempt(tile, call)
    else:
        attempt(tile, call, a)


_SIZES = st.one_of(st.integers(-3, 0), numbers, st.just(np.int64(2)), st.integers(1, 5))
_KINDS = ["bad_dw_min", "bad_bounds", "bad_bl", "bad_enum", "nan_res", "not_a_config",
          "huge_value", "empty_compound", "default", "ideal", "none"]
_BAD_DTYPES = [np.float16, np.int32, "f8", "float32", "nonsense", complex, None, 3]


@st.composite
def constructor_args(draw):
    """Valid arguments with 0, 1 or 2 of them replaced by random (mostly bad) ones."""
    args = [draw(st.integers(1, 5)), draw(st.integers(1, 5)),
            draw(st.sampled_from(["default", "ideal", "none"])),
            draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
            draw(st.sampled_from([np.float32, np.float64]))]
    pools = [_SIZES, _SIZES, st.sampled_from(_KINDS), st.one_of(st.integers(-5, 2**70), numbers),
             st.sampled_from(_BAD_DTYPES)]
    for k in draw(st.lists(st.integers(0, 4), max_size=2, unique=True)):
        args[k] = draw(pools[k])
    return args


def _constructor_config(kind):
    if kind == "default":
        return C.RPUConfig()
    if kind == "ideal":
        return C.SingleRPUConfig(device=C.IdealDevice())
    if kind == "bad_dw_min":
        return C.SingleRPUConfig(device=C.ConstantStepDevice(dw_min=0.0))
    if kind == "bad_bounds":
        return C.SingleRPUConfig(device=C.ConstantStepDevice(w_min=0.7, w_max=0.5))
    if kind == "bad_bl":
        return C.SingleRPUConfig(update=C.UpdateParameters(desired_bl=-3))
    if kind == "bad_enum":
        return C.SingleRPUConfig(update=C.UpdateParameters(pulse_type="Sometimes"))
    if kind == "nan_res":
        return C.SingleRPUConfig(forward=C.IOParameters(out_res=float("nan")))
    if kind == "not_a_config":
        return {"device": "ConstantStep"}
    if kind == "huge_value":
        return C.SingleRPUConfig(device=C.IdealDevice(diffusion=1e300))
    if kind == "empty_compound" and hasattr(C, "VectorUnitCell"):
        return C.UnitCellRPUConfig(device=C.VectorUnitCell(unit_cell_devices=[]))
    return None


@settings(max_examples=150)
@given(args=constructor_args())
def test_fuzz_constructor(args):
    out_size, in_size, kind, seed, dtype = args
    try:
        tile = AnalogTile(out_size, in_size, _constructor_config(kind), seed=seed, dtype=dtype)
    except (ValueError, TypeError) as err:
        assert _is_clean(err) and str(err)
        COUNTS["refused"] += 1
        COUNTS["refused constructor"] += 1
        return
    COUNTS["accepted"] += 1
    assert tile.get_weights().shape == (out_size, in_size)
    assert np.isfinite(tile.get_weights()).all()


@settings(max_examples=60)
@given(name=st.sampled_from(CONFIG_NAMES), data=st.data())
def test_fuzz_load_state_dict(name, data):
    """Foreign dicts and states of other tiles: refused cleanly, or loaded exactly."""
    tile = fresh_tile(name)
    other = _STATES[data.draw(st.sampled_from(sorted(_STATES)))]
    choice = data.draw(st.sampled_from(["other", "empty", "junk", "not_a_dict", "edited"]))
    if choice == "other":
        state = other
    elif choice == "empty":
        state = {}
    elif choice == "junk":
        state = {data.draw(st.text(max_size=5)): data.draw(arrays([(OUT, IN)]))}
    elif choice == "not_a_dict":
        state = data.draw(st.sampled_from([None, 3, "state", [("weights", 1)]]))
    else:
        state = dict(other)
        key = data.draw(st.sampled_from(sorted(state)))
        state[key] = data.draw(arrays([np.shape(state[key])]))
    result = attempt(tile, "load_state_dict", state)
    if result != "refused":
        assert state_differences(state, tile.state_dict()) == []


@settings(max_examples=40)
@given(data=st.data())
def test_fuzz_load_file(data):
    """Random bytes, and a good file with random bytes overwritten, cut or appended: a clean
    ValueError, or (damage in zip metadata only) exactly the saved state."""
    good = _good_file()
    how = data.draw(st.sampled_from(["random", "overwrite", "cut", "append"]))
    if how == "random":
        blob = data.draw(st.binary(max_size=200))
    elif how == "overwrite":
        pos = data.draw(st.integers(0, len(good) - 1))
        patch = data.draw(st.binary(min_size=1, max_size=16))
        blob = good[:pos] + patch + good[pos + len(patch):]
    elif how == "cut":
        blob = good[:data.draw(st.integers(0, len(good) - 1))]
    else:
        blob = good + data.draw(st.binary(min_size=1, max_size=64))
    try:
        tile = AnalogTile.load(io.BytesIO(blob))
    except ValueError as err:
        assert _is_clean(err) and str(err)
        COUNTS["refused"] += 1
        COUNTS["refused load"] += 1
        return
    COUNTS["accepted"] += 1
    assert state_differences(_STATES["constant_step"], tile.state_dict()) == []


def _good_file() -> bytes:
    buf = io.BytesIO()
    fresh_tile("constant_step").save(buf)
    return buf.getvalue()


# -- specific messages -------------------------------------------------------------------------
def test_messages_name_expected_and_received():
    tile = fresh_tile("constant_step")
    with pytest.raises(ValueError, match=r"\(4,\).*got \(3,\)"):
        tile.forward(np.zeros(3))
    with pytest.raises(ValueError, match=r"\(3, 4\).*got \(4, 3\)"):
        tile.set_weights(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="complex"):
        tile.forward(np.zeros(4, complex))
    with pytest.raises(TypeError, match="bool"):
        tile.update(np.zeros(4, bool), np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        tile.backward(np.array([0.0, np.nan, 1.0]))
    with pytest.raises(ValueError, match="float32"):
        tile.forward(np.full(4, 1e300))
    with pytest.raises(ValueError, match="same batch size"):
        tile.update(np.zeros((2, 4)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="learning rate.*got -0.1"):
        tile.update(np.zeros(4), np.zeros(3), lr=-0.1)
    with pytest.raises(ValueError, match="learning rate.*got nan"):
        tile.set_learning_rate(float("nan"))
    with pytest.raises(ValueError, match="valid names.*max_bound"):
        tile.set_hidden_parameters({"max_bund": np.zeros((3, 4))})
    with pytest.raises(ValueError, match="reset_prob.*got 2.0"):
        tile.reset_columns(0, 1, 2.0)
    with pytest.raises(TypeError, match="start_column_idx.*float"):
        tile.reset_columns(0.5)


@pytest.mark.parametrize("make, match", [
    (lambda: C.ConstantStepDevice(dw_min=0.0), "dw_min"),
    (lambda: C.ConstantStepDevice(dw_min=-0.01), "dw_min"),
    (lambda: C.ConstantStepDevice(w_min=0.3), "w_min"),
    (lambda: C.ConstantStepDevice(w_max=-0.3), "w_max"),
    (lambda: C.ConstantStepDevice(dw_min="big"), "dw_min"),
    (lambda: C.ConstantStepDevice(lifetime=float("inf")), "lifetime"),
    (lambda: C.ConstantStepDevice(drift="none"), "drift"),
])
def test_impossible_device_configs(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AnalogTile(2, 2, C.SingleRPUConfig(device=make()))


@pytest.mark.parametrize("kw, match", [
    ({"update": C.UpdateParameters(desired_bl=-1)}, "desired_bl"),
    ({"update": C.UpdateParameters(desired_bl=0)}, "desired_bl"),
    ({"update": C.UpdateParameters(pulse_type="Bogus")}, "pulse_type.*Bogus"),
    ({"update": C.UpdateParameters(res=float("nan"))}, "res"),
    ({"forward": C.IOParameters(inp_res=float("inf"))}, "inp_res"),
    ({"forward": C.IOParameters(noise_management="Sometimes")}, "noise_management"),
    ({"backward": C.IOParameters(out_noise=-1.0)}, "out_noise"),
    ({"forward": 3}, "forward"),
    ({"device": C.IdealDevice(diffusion=1e300)}, "diffusion"),
])
def test_impossible_rpu_configs(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        AnalogTile(2, 2, C.SingleRPUConfig(**kw))


def test_config_is_not_modified_by_the_tile():
    config = C.SingleRPUConfig(update=C.UpdateParameters(pulse_type="StochasticCompressed"))
    kept = copy.deepcopy(config)
    AnalogTile(2, 2, config)
    assert config == kept


def test_numpy_scalars_in_configs_are_accepted():
    dev = C.ConstantStepDevice(dw_min=np.float32(0.01), w_max=np.float64(0.5),
                               construction_seed=np.int64(3), count_pulses=np.bool_(True))
    tile = AnalogTile(2, 2, C.SingleRPUConfig(device=dev))
    assert type(tile.rpu_config.device.dw_min) is float
    assert tile.rpu_config.device.dw_min == float(np.float32(0.01))


@pytest.mark.parametrize("entry", ["empty_compound"])
def test_empty_compound_is_refused(entry):
    config = _constructor_config(entry)
    if config is None:
        pytest.fail("VectorUnitCell is not exported")
    with pytest.raises(ValueError, match="unit_cell_devices"):
        AnalogTile(2, 2, config)


def test_mismatched_compound_lists_are_refused():
    two = [C.ConstantStepDevice(), C.ConstantStepDevice()]
    with pytest.raises(ValueError, match="gamma_vec"):
        AnalogTile(2, 2, C.UnitCellRPUConfig(device=C.VectorUnitCell(
            unit_cell_devices=two, gamma_vec=[1.0])))
    with pytest.raises(ValueError, match="unit_cell_devices"):
        AnalogTile(2, 2, C.UnitCellRPUConfig(device=C.TransferCompound(
            unit_cell_devices=two[:1])))


def test_huge_update_is_refused_and_tile_unchanged():
    for name in ("constant_step", "ideal", "deterministic_implicit"):
        tile = fresh_tile(name)
        before = tile.state_dict()
        for x, d, lr in [(1e30, 1e30, 0.1), (3e38, 3e38, 1.0), (1.0, 1.0, 1e39)]:
            with pytest.raises(ValueError):
                tile.update(np.full(IN, x), np.full(OUT, d), lr)
        assert state_differences(before, tile.state_dict()) == []


def test_zz_report_fuzz_counts(capsys):
    """Runs last in this module: prints how many bad inputs were tried (all refused cleanly)."""
    with capsys.disabled():
        entries = {k[len("refused "):]: v for k, v in sorted(COUNTS.items())
                   if k.startswith("refused ")}
        print(f"\n[validation] fuzz calls: {COUNTS['refused'] + COUNTS['accepted']}; "
              f"bad inputs refused cleanly with the tile unchanged: {COUNTS['refused']}; "
              f"valid results: {COUNTS['accepted']}; refused per entry: {entries}")
    assert COUNTS["refused"] >= 500
