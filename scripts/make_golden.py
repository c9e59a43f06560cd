"""Generate the golden conformance fixtures from aihwkit 1.2.0 (the oracle).

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden.py [--group update] [--out tests/golden]

Every scenario is deterministic: no cycle-to-cycle noise, no write noise, no stochastic pulse
trains, noise-free IO, and device-to-device variation either switched off or overwritten
element by element through ``set_hidden_parameters``; so the recorded numbers do not depend on
aihwkit's random number generator. Each scenario becomes ``<out>/<group>__<name>.npz``; the
format is documented in ``tests/golden/README.md`` and replayed by ``tests/test_golden.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import math
import pathlib
import sys
import zlib

import numpy as np
import torch
from aihwkit.simulator import configs as C
from aihwkit.simulator.configs import (BoundManagementType, IOParameters,
                                       NoiseManagementType, PulseType, UpdateParameters)

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = {"rtol": 1e-4, "atol": 1e-6, "mvm_atol": 1e-5}

# Fields of aihwkit's RPU configurations that only its torch layer uses (rpusim has none).
_TORCH_ONLY = {"tile_class", "tile_array_class", "runtime", "pre_post", "mapping"}


# -- config dicts in rpusim's ConfigBase.to_dict() format, non-default fields only ---------------
def _plain(value):
    if isinstance(value, enum.Enum):
        return value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"__class__": type(value).__name__,
                **{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                   if f.name not in _TORCH_ONLY}}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def sparse_dict(obj) -> dict:
    """``{"__class__": name, field: value}`` for the fields that differ from the class default."""
    default = type(obj)()
    out = {"__class__": type(obj).__name__}
    for field in dataclasses.fields(obj):
        if field.name in _TORCH_ONLY:
            continue
        value, ref = getattr(obj, field.name), getattr(default, field.name)
        if _plain(value) == _plain(ref):
            continue
        if dataclasses.is_dataclass(value):
            out[field.name] = sparse_dict(value)
        elif isinstance(value, (list, tuple)):
            out[field.name] = [sparse_dict(v) if dataclasses.is_dataclass(v) else _plain(v)
                               for v in value]
        else:
            out[field.name] = _plain(value)
    return out


# -- recording one scenario -------------------------------------------------------------------
def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


class Scenario:
    """Runs operations on one aihwkit tile and records them as ops plus arrays."""

    def __init__(self, group: str, name: str, out_size: int, in_size: int, rpu_config,
                 seed: int = 0, tolerance: dict | None = None):
        self.group, self.name = group, name
        self.out_size, self.in_size = out_size, in_size
        self.rpu_config = rpu_config
        self.module = rpu_config.tile_class(out_size, in_size, rpu_config)
        self.tile = self.module.tile
        self.rng = np.random.default_rng(seed)
        self.ops: list[dict] = []
        self.arrays: dict[str, np.ndarray] = {}
        self.tolerance = dict(TOLERANCE if tolerance is None else tolerance)
        self._n = 0

    # helpers
    def _key(self, prefix: str, value) -> str:
        key = f"{prefix}{self._n}"
        self._n += 1
        self.arrays[key] = np.asarray(value, dtype=np.float32)
        return key

    def uniform(self, lo, hi, shape) -> np.ndarray:
        return self.rng.uniform(lo, hi, shape).astype(np.float32)

    def weights(self) -> np.ndarray:
        return self.tile.get_weights().numpy().astype(np.float32)

    def hidden(self) -> dict[str, np.ndarray]:
        names = self.tile.get_hidden_parameter_names()
        values = self.tile.get_hidden_parameters().numpy()
        return {n: values[k].astype(np.float32) for k, n in enumerate(names)}

    # ops
    def check_weights(self) -> None:
        self.ops.append({"op": "check_weights", "expect": self._key("w", self.weights())})

    def check_hidden(self) -> None:
        prefix = f"h{self._n}_"
        self._n += 1
        for name, value in self.hidden().items():
            self.arrays[prefix + name] = value
        self.ops.append({"op": "check_hidden", "prefix": prefix})

    def set_weights(self, w: np.ndarray, check: bool = True) -> None:
        w = np.asarray(w, np.float32)
        self.tile.set_weights(_t(w))
        self.ops.append({"op": "set_weights", "w": self._key("sw", w)})
        if check:
            self.check_weights()

    def set_hidden_parameters(self, params: dict[str, np.ndarray], check: bool = True) -> None:
        names = self.tile.get_hidden_parameter_names()
        current = self.tile.get_hidden_parameters().numpy().copy()
        unknown = set(params) - set(names)
        assert not unknown, unknown
        for name, value in params.items():
            current[names.index(name)] = value
        self.tile.set_hidden_parameters(torch.from_numpy(current))
        prefix = f"hp{self._n}_"
        self._n += 1
        for name, value in params.items():
            self.arrays[prefix + name] = np.asarray(value, np.float32)
        self.ops.append({"op": "set_hidden_parameters", "prefix": prefix})
        if check:
            self.check_weights()
            self.check_hidden()

    def set_hidden_update_index(self, index: int) -> None:
        self.tile.set_hidden_update_index(index)
        self.ops.append({"op": "set_hidden_update_index", "index": int(index)})

    def set_learning_rate(self, lr: float) -> None:
        self.tile.set_learning_rate(lr)
        self.ops.append({"op": "set_learning_rate", "lr": float(lr)})

    def update(self, x: np.ndarray, d: np.ndarray, check: bool = True) -> None:
        x, d = np.asarray(x, np.float32), np.asarray(d, np.float32)
        self.tile.update(_t(x), _t(d), False)
        self.ops.append({"op": "update", "x": self._key("x", x), "d": self._key("d", d)})
        if check:
            self.check_weights()

    def random_update(self, batch: int, x_scale: float = 1.0, d_scale: float = 1.0,
                      check: bool = True) -> None:
        self.update(self.uniform(-x_scale, x_scale, (batch, self.in_size)),
                    self.uniform(-d_scale, d_scale, (batch, self.out_size)), check)

    def forward(self, x: np.ndarray, is_test: bool = False) -> np.ndarray:
        x = np.asarray(x, np.float32)
        y = self.tile.forward(_t(x), False, False, False, is_test).numpy()
        self.ops.append({"op": "forward", "x": self._key("fx", x),
                         "expect": self._key("fy", y), "is_test": bool(is_test)})
        return y

    def backward(self, d: np.ndarray) -> np.ndarray:
        d = np.asarray(d, np.float32)
        z = self.tile.backward(_t(d), False, False, False).numpy()
        self.ops.append({"op": "backward", "d": self._key("bd", d),
                         "expect": self._key("bz", z)})
        return z

    def post_update_step(self, check: bool = True) -> None:
        self.module.post_update_step()
        self.ops.append({"op": "post_update_step"})
        if check:
            self.check_weights()

    def decay_weights(self, alpha: float = 1.0, check: bool = True) -> None:
        self.tile.decay_weights(alpha)
        self.ops.append({"op": "decay_weights", "alpha": float(alpha)})
        if check:
            self.check_weights()

    def reset_columns(self, start: int, num: int, check: bool = True) -> None:
        self.tile.reset_columns(start, num, 1.0)
        self.ops.append({"op": "reset_columns", "start": int(start), "num": int(num)})
        if check:
            self.check_weights()

    def drift_weights(self, delta_t: float, check: bool = True) -> None:
        self.tile.drift_weights(delta_t)
        self.ops.append({"op": "drift_weights", "delta_t": float(delta_t)})
        if check:
            self.check_weights()

    # output
    def meta(self) -> dict:
        return {"name": self.name, "group": self.group, "dtype": "float32",
                "out_size": self.out_size, "in_size": self.in_size,
                "rpu_config": sparse_dict(self.rpu_config), "ops": self.ops,
                "tolerance": self.tolerance}

    def save(self, out_dir: pathlib.Path) -> pathlib.Path:
        path = out_dir / f"{self.group}__{self.name}.npz"
        np.savez_compressed(path, meta=np.array(json.dumps(self.meta())), **self.arrays)
        return path


# -- config helpers ---------------------------------------------------------------------------
NO_DTOD = dict(dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
               w_min_dtod=0.0, lifetime_dtod=0.0, reset_dtod=0.0, diffusion_dtod=0.0,
               reset_std=0.0)
PERFECT = dict(forward=IOParameters(is_perfect=True), backward=IOParameters(is_perfect=True))


def det_update(**kw) -> UpdateParameters:
    kw.setdefault("pulse_type", PulseType.DETERMINISTIC_IMPLICIT)
    return UpdateParameters(**kw)


def constant_step(**kw) -> C.ConstantStepDevice:
    return C.ConstantStepDevice(**{**NO_DTOD, **kw})


def single(device, update=None, **io) -> C.SingleRPUConfig:
    io = {**PERFECT, **io}
    return C.SingleRPUConfig(device=device, update=update or det_update(), **io)


def random_hidden(sc: Scenario, dw_min: float, w_max: float, w_min: float,
                  spread: float = 0.3) -> dict[str, np.ndarray]:
    """Per-element common hidden parameters around the given means (deterministic draws)."""
    shape = (sc.out_size, sc.in_size)
    g = sc.uniform(1 - spread, 1 + spread, shape)
    return {
        "max_bound": (w_max * sc.uniform(1 - spread, 1 + spread, shape)).astype(np.float32),
        "min_bound": (w_min * sc.uniform(1 - spread, 1 + spread, shape)).astype(np.float32),
        "dwmin_up": (dw_min * g * sc.uniform(0.9, 1.1, shape)).astype(np.float32),
        "dwmin_down": (dw_min * g * sc.uniform(0.9, 1.1, shape)).astype(np.float32),
    }


# -- group "update" (issue 2) -------------------------------------------------------------------
def scenarios_update():
    G = "update"
    lrs_clip = [(0.01, 1), (0.1, 4), (0.5, 16), (2.0, 3)]

    # bit length x update management x fixed_bl grid
    for bl in (1, 5, 31, 100):
        for um in (False, True):
            for ublm in (False, True):
                for fixed in (True, False):
                    name = (f"bl{bl}_um{int(um)}_ublm{int(ublm)}_fixed{int(fixed)}")
                    upd = det_update(desired_bl=bl, update_management=um,
                                     update_bl_management=ublm, fixed_bl=fixed)
                    sc = Scenario(G, name, 4, 5, single(constant_step(dw_min=0.01), upd),
                                  seed=zlib.crc32(name.encode()))
                    sc.set_weights(sc.uniform(-0.3, 0.3, (4, 5)))
                    for lr, batch in lrs_clip:
                        sc.set_learning_rate(lr)
                        sc.random_update(batch)
                    sc.check_hidden()
                    yield sc

    # learning rates and batch sizes on a larger tile, default BL settings
    for k, (out_size, in_size) in enumerate([(1, 1), (3, 7), (20, 30), (11, 2)]):
        name = f"cs_lr_batches_{out_size}x{in_size}"
        sc = Scenario(G, name, out_size, in_size, single(constant_step()), seed=100 + k)
        sc.set_weights(sc.uniform(-0.2, 0.2, (out_size, in_size)))
        for lr, batch in [(0.001, 1), (0.01, 2), (0.05, 8), (0.1, 16), (0.3, 5), (1.0, 1)]:
            sc.set_learning_rate(lr)
            sc.random_update(batch, d_scale=0.5)
        sc.forward(sc.uniform(-1, 1, (3, in_size)))
        sc.backward(sc.uniform(-1, 1, (3, out_size)))
        sc.check_hidden()
        yield sc

    for scale in (0.5, 2.0, 7.0):
        for ublm in (False, True):
            name = f"um_grad_scale_{scale}_ublm{int(ublm)}"
            upd = det_update(um_grad_scale=scale, update_bl_management=ublm)
            sc = Scenario(G, name, 6, 8, single(constant_step(dw_min=0.005), upd), seed=7)
            sc.set_weights(sc.uniform(-0.2, 0.2, (6, 8)))
            for lr, batch in [(0.05, 3), (0.2, 6), (1.0, 2)]:
                sc.set_learning_rate(lr)
                sc.random_update(batch)
            sc.check_hidden()
            yield sc

    for k, (xr, dr, um, ublm) in enumerate([(1 / 7, 1 / 5, True, True), (0.1, 0, True, True),
                                            (0, 0.25, True, False), (0.05, 0.3, False, False),
                                            (1 / 3, 1 / 3, False, True)]):
        name = f"res_implicit_{k}"
        upd = det_update(x_res_implicit=xr, d_res_implicit=dr, update_management=um,
                         update_bl_management=ublm)
        sc = Scenario(G, name, 5, 9, single(constant_step(dw_min=0.01), upd), seed=20 + k)
        sc.set_weights(sc.uniform(-0.3, 0.3, (5, 9)))
        for lr, batch in [(0.05, 2), (0.2, 5), (0.8, 3)]:
            sc.set_learning_rate(lr)
            sc.random_update(batch)
        sc.check_hidden()
        yield sc

    for k, (res, um, ublm, bl) in enumerate([(0, True, True, 31), (1 / 16, True, True, 31),
                                             (0.05, False, False, 10), (0, False, True, 7),
                                             (0.2, True, False, 100)]):
        name = f"mean_count_{k}"
        upd = UpdateParameters(pulse_type=PulseType.MEAN_COUNT, res=res, update_management=um,
                               update_bl_management=ublm, desired_bl=bl)
        sc = Scenario(G, name, 7, 6, single(constant_step(dw_min=0.01), upd), seed=30 + k)
        sc.set_weights(sc.uniform(-0.3, 0.3, (7, 6)))
        for lr, batch in [(0.02, 1), (0.1, 4), (0.5, 9)]:
            sc.set_learning_rate(lr)
            sc.random_update(batch)
        sc.check_hidden()
        yield sc

    for up_down in (0.3, -0.25):
        name = f"up_down_{up_down}"
        sc = Scenario(G, name, 8, 8, single(constant_step(dw_min=0.01, up_down=up_down)),
                      seed=40)
        sc.set_weights(sc.uniform(-0.3, 0.3, (8, 8)))
        sc.set_learning_rate(0.1)
        for batch in (1, 4, 16):
            sc.random_update(batch)
        sc.check_hidden()
        yield sc

    for k, (w_max, w_min) in enumerate([(0.2, -0.15), (0.05, -0.6), (1.0, -0.02)]):
        name = f"saturate_{k}"
        sc = Scenario(G, name, 5, 6, single(constant_step(dw_min=0.02, w_max=w_max,
                                                           w_min=w_min)), seed=50 + k)
        sc.set_weights(sc.uniform(-0.1, 0.1, (5, 6)))
        sc.set_learning_rate(1.0)
        x = np.abs(sc.uniform(0.5, 1.0, (4, 6)))
        d = np.abs(sc.uniform(0.5, 1.0, (4, 5)))
        for _ in range(3):
            sc.update(x, -d)    # up to the upper bound
        for _ in range(4):
            sc.update(x, d)     # down to the lower bound
        sc.set_learning_rate(0.3)
        sc.random_update(6)
        sc.check_hidden()
        yield sc

    for k, (lifetime, reset) in enumerate([(10.0, 0.0), (10.0, 0.1), (5.0, -0.3), (0.5, 0.2)]):
        name = f"decay_{k}"
        sc = Scenario(G, name, 4, 7, single(constant_step(dw_min=0.01, lifetime=lifetime,
                                                           reset=reset)), seed=60 + k)
        sc.set_weights(sc.uniform(-0.5, 0.5, (4, 7)))
        sc.post_update_step()
        sc.set_learning_rate(0.1)
        for batch in (2, 3):
            sc.random_update(batch)
            sc.post_update_step()
        sc.decay_weights(0.5)
        sc.decay_weights(2.0)
        sc.check_hidden()
        yield sc

    for k, (reset, start, num) in enumerate([(0.0, 0, 1), (0.05, 5, 4), (-0.1, 2, -1),
                                             (0.2, 6, 3)]):
        name = f"reset_columns_{k}"
        sc = Scenario(G, name, 3, 7, single(constant_step(dw_min=0.01, reset=reset)),
                      seed=70 + k)
        sc.set_weights(sc.uniform(-0.4, 0.4, (3, 7)))
        sc.reset_columns(start, num)
        sc.set_learning_rate(0.2)
        sc.random_update(3)
        sc.reset_columns((start + 3) % 7, 2)
        sc.check_hidden()
        yield sc

    # per-element hidden parameters (dtod on in the config, so dw_min is not re-estimated)
    for k, (out_size, in_size) in enumerate([(6, 9), (20, 30), (2, 13)]):
        name = f"hidden_per_element_{k}"
        dev = C.ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, reset_std=0.0,
                                   lifetime=20.0)
        sc = Scenario(G, name, out_size, in_size, single(dev), seed=80 + k)
        hp = random_hidden(sc, 0.01, 0.4, -0.35)
        shape = (out_size, in_size)
        hp["reset_bias"] = sc.uniform(-0.1, 0.1, shape)
        hp["decay_scales"] = sc.uniform(0.8, 1.0, shape)
        hp["decay_scales"][0, 0] = 0.0     # a lifetime <= 1: the weight snaps to reset_bias
        # hidden parameters first: the initial weights are clipped to bounds drawn by aihwkit's
        # RNG, so only weights written after the bounds are set are deterministic
        sc.set_hidden_parameters(hp, check=False)
        sc.set_weights(sc.uniform(-0.5, 0.5, shape))
        sc.check_hidden()
        sc.set_learning_rate(0.2)
        for batch in (1, 5, 12):
            sc.random_update(batch)
            sc.post_update_step()
        sc.reset_columns(1, 2)
        sc.random_update(4)
        sc.forward(sc.uniform(-1, 1, (2, in_size)))
        sc.backward(sc.uniform(-1, 1, (2, out_size)))
        sc.check_hidden()
        yield sc

    # dw_min re-estimated on purpose: no dtod, every set step twice the configured dw_min
    name = "hidden_reestimate_dw_min"
    sc = Scenario(G, name, 5, 5, single(constant_step(dw_min=0.005)), seed=90)
    shape = (5, 5)
    sc.set_weights(sc.uniform(-0.3, 0.3, shape))
    sc.set_hidden_parameters({"dwmin_up": np.full(shape, 0.01, np.float32),
                              "dwmin_down": np.full(shape, 0.01, np.float32)})
    for lr, batch in [(0.05, 2), (0.3, 4)]:
        sc.set_learning_rate(lr)
        sc.random_update(batch)
    sc.check_hidden()
    yield sc

    # lr == 0 does nothing; bias-free ideal / floating-point paths
    name = "lr_zero_noop"
    sc = Scenario(G, name, 3, 4, single(constant_step(dw_min=0.01)), seed=91)
    sc.set_weights(sc.uniform(-0.3, 0.3, (3, 4)))
    sc.set_learning_rate(0.0)
    sc.random_update(3)
    sc.set_learning_rate(0.1)
    sc.random_update(3)
    yield sc

    for k, lifetime in enumerate((0.0, 10.0, 0.8)):
        name = f"ideal_{k}"
        cfg = single(C.IdealDevice(lifetime=lifetime, reset_std=0.0), UpdateParameters())
        sc = Scenario(G, name, 6, 10, cfg, seed=95 + k)
        sc.set_weights(sc.uniform(-1, 1, (6, 10)))
        for lr, batch in [(0.01, 1), (0.1, 7), (1.0, 16)]:
            sc.set_learning_rate(lr)
            sc.random_update(batch)
            sc.post_update_step()
        sc.decay_weights(0.5)
        sc.reset_columns(8, 3)
        sc.forward(sc.uniform(-1, 1, (4, 10)))
        sc.backward(sc.uniform(-1, 1, (4, 6)))
        yield sc

    for k, pt in enumerate((PulseType.NONE, PulseType.NONE_WITH_DEVICE)):
        name = f"pulse_type_{pt.name.lower()}"
        cfg = single(constant_step(dw_min=0.01, w_max=0.3, w_min=-0.25),
                     UpdateParameters(pulse_type=pt))
        sc = Scenario(G, name, 5, 4, cfg, seed=98 + k)
        sc.set_weights(sc.uniform(-0.2, 0.2, (5, 4)))
        for lr, batch in [(0.05, 1), (0.5, 6), (2.0, 3)]:
            sc.set_learning_rate(lr)
            sc.random_update(batch)
        sc.forward(sc.uniform(-1, 1, (2, 4)))
        sc.check_hidden()
        yield sc

    # forward / backward only, is_perfect, vector and batch input, is_test
    name = "perfect_mvm"
    sc = Scenario(G, name, 13, 17, single(constant_step()), seed=99)
    sc.set_weights(sc.uniform(-0.6, 0.6, (13, 17)))
    sc.forward(sc.uniform(-1, 1, (1, 17)))
    sc.forward(sc.uniform(-3, 3, (9, 17)), is_test=True)
    sc.backward(sc.uniform(-1, 1, (1, 13)))
    sc.backward(sc.uniform(-2, 2, (5, 13)))
    yield sc

    yield from _edge_scenarios(G)

    # inputs on a decimal grid and "round" learning rates hit exact ties of ceil(k) and of
    # rint((q_d BL) q_x), where only float32 arithmetic in aihwkit's order gives its counts
    for k, (pt, um, ublm, fixed, dw) in enumerate([
            (PulseType.DETERMINISTIC_IMPLICIT, True, True, True, 0.01),
            (PulseType.DETERMINISTIC_IMPLICIT, True, False, True, 0.01),
            (PulseType.DETERMINISTIC_IMPLICIT, False, False, False, 0.01),
            (PulseType.DETERMINISTIC_IMPLICIT, False, True, True, 0.001),
            (PulseType.MEAN_COUNT, True, True, True, 0.01),
            (PulseType.MEAN_COUNT, False, False, False, 0.005)]):
        name = f"grid_ties_{k}"
        upd = UpdateParameters(pulse_type=pt, update_management=um,
                               update_bl_management=ublm, fixed_bl=fixed, desired_bl=10)
        device = constant_step(dw_min=dw, w_max=5.0, w_min=-5.0)
        sc = Scenario(G, name, 8, 10, single(device, upd), seed=120 + k)
        sc.set_weights(np.zeros((8, 10), np.float32))
        for step, lr in enumerate([0.1, 0.2, 0.3, 0.05, 0.01, 0.15, 0.6, 0.1]):
            sc.set_learning_rate(lr)
            x = (sc.rng.integers(-20, 21, (16, 10)) * 0.05).astype(np.float32)
            d = (sc.rng.integers(-10, 11, (16, 8)) * 0.1).astype(np.float32)
            sc.update(x, d)
        yield sc

    # samples whose x or d is all zero give no pulses (update.md §4.2 step 2)
    name = "zero_rows"
    sc = Scenario(G, name, 4, 6, single(constant_step(dw_min=0.01)), seed=102)
    sc.set_weights(sc.uniform(-0.3, 0.3, (4, 6)))
    sc.set_learning_rate(0.3)
    x = sc.uniform(-1, 1, (4, 6))
    d = sc.uniform(-1, 1, (4, 4))
    x[1] = 0.0
    d[2] = 0.0
    sc.update(x, d)
    yield sc

    # perfect_bias: the last column gets ideal steps and bounds 100 * w_min / w_max
    name = "perfect_bias"
    sc = Scenario(G, name, 3, 5, single(constant_step(dw_min=0.01, w_max=0.1, w_min=-0.1,
                                                       up_down=0.3, perfect_bias=True)),
                  seed=103)
    sc.set_weights(sc.uniform(-2, 2, (3, 5)))
    sc.set_learning_rate(1.0)
    for _ in range(3):
        sc.update(np.ones((2, 5), np.float32), -np.ones((2, 3), np.float32))
    sc.random_update(4)
    sc.check_hidden()
    yield sc

    # FloatingPointRPUConfig: exact update, decay and simple drift
    name = "floating_point"
    cfg = C.FloatingPointRPUConfig(device=C.FloatingPointDevice(
        lifetime=10.0, drift=C.SimpleDriftParameter(nu=0.1)))
    sc = Scenario(G, name, 5, 7, cfg, seed=104)
    sc.set_weights(sc.uniform(-1, 1, (5, 7)))
    for lr, batch in [(0.1, 1), (0.5, 6)]:
        sc.set_learning_rate(lr)
        sc.random_update(batch)
        sc.post_update_step()
    sc.drift_weights(5.0)
    sc.drift_weights(50.0)
    sc.forward(sc.uniform(-1, 1, (3, 7)))
    sc.backward(sc.uniform(-1, 1, (3, 5)))
    yield sc

    # a long sequence on a mid-size tile, k > desired_bl often
    name = "long_sequence"
    sc = Scenario(G, name, 12, 15, single(constant_step(dw_min=0.002, w_max=0.3,
                                                         w_min=-0.3)), seed=101)
    sc.set_weights(sc.uniform(-0.25, 0.25, (12, 15)))
    for step in range(12):
        sc.set_learning_rate([0.01, 0.05, 0.2][step % 3])
        sc.random_update(1 + step % 5, d_scale=0.5)
    sc.check_hidden()
    yield sc


def _edge_scenarios(G):
    """Float32 and rounding edge cases of deterministic pulse counts (update.md §4.2, §6.2)."""
    # k = ((lr * x_max) * d_max) / g evaluates to 3.0000002 in float32: BL = ceil(k) = 4, and
    # (q_d * BL) * q_x for d = 0.2, x = 0.25 gives 0.50000006 -> 1 pulse (0 in exact arithmetic)
    name = "float32_ceil_edge"
    sc = Scenario(G, name, 3, 3, single(constant_step(dw_min=0.01)), seed=110)
    sc.set_weights(np.zeros((3, 3), np.float32))
    sc.set_learning_rate(0.1)
    sc.update(np.array([[1.0, 0.25, -0.5]], np.float32), np.array([[0.3, 0.2, -0.1]], np.float32))
    sc.update(np.array([[0.25, 1.0, 0.75]], np.float32), np.array([[-0.2, 0.3, 0.15]], np.float32))
    yield sc

    # A = B = 1 and BL = ceil(lr / g) = 4 (no management, fixed_bl off): counts rint(4 d x) hit
    # the half-way values 0.5, 1.5, 2.5, 3.5 -> 0, 2, 2, 4 (half to even)
    name = "rint_half_even"
    upd = det_update(desired_bl=1, fixed_bl=False, update_management=False,
                     update_bl_management=False)
    sc = Scenario(G, name, 4, 4, single(constant_step(dw_min=0.01), upd), seed=111)
    sc.set_weights(np.zeros((4, 4), np.float32))
    sc.set_learning_rate(0.04)
    x = np.array([[0.25, 0.5, 1.0, 0.875]], np.float32)
    d = np.array([[0.5, 0.75, 0.625, 1.0]], np.float32)
    sc.update(x, d)
    sc.update(-x, d)
    yield sc


def _device_run(sc: Scenario, w_lo: float, w_hi: float, decay: bool = False,
                n_saturate: int = 3) -> None:
    """Random updates at several learning rates, then both directions to saturation."""
    sc.set_weights(sc.uniform(w_lo, w_hi, (sc.out_size, sc.in_size)))
    for lr, batch in [(0.01, 1), (0.1, 4), (0.5, 8)]:
        sc.set_learning_rate(lr)
        sc.random_update(batch)
        if decay:
            sc.post_update_step()
    sc.set_learning_rate(1.0)
    x = sc.uniform(0.5, 1.0, (4, sc.in_size))
    d = sc.uniform(0.5, 1.0, (4, sc.out_size))
    for _ in range(n_saturate):
        sc.update(x, -d)    # W -= lr d x with d < 0: up pulses, toward the upper bound
    if decay:
        sc.post_update_step()
    for _ in range(n_saturate + 1):
        sc.update(x, d)     # down pulses, toward the lower bound
    sc.set_learning_rate(0.2)
    sc.random_update(5)
    sc.check_hidden()


def _full_hidden(sc: Scenario, dw_min: float, w_max: float, w_min: float,
                 extras: dict | None = None, lifetime: bool = False) -> dict:
    """A value for every hidden parameter of the tile (so none is left to aihwkit's RNG)."""
    shape = (sc.out_size, sc.in_size)
    hp = random_hidden(sc, dw_min, w_max, w_min)
    hp["decay_scales"] = (sc.uniform(0.85, 0.99, shape) if lifetime
                          else np.ones(shape, np.float32))
    hp["diffusion_rates"] = np.zeros(shape, np.float32)
    hp["reset_bias"] = sc.uniform(-0.05, 0.05, shape)
    hp["drift_nu"] = np.zeros(shape, np.float32)
    hp.update(extras or {})
    names = sc.tile.get_hidden_parameter_names()
    missing = set(names) - set(hp)
    assert not missing, (sc.name, missing)
    return {n: hp[n] for n in names}


def scenarios_devices():
    G = "devices"
    mk = lambda cls, **kw: cls(**{**NO_DTOD, **kw})  # noqa: E731

    def run(name, device, out_size=6, in_size=8, w=(-0.3, 0.3), decay=False, seed=0,
            hidden=None):
        sc = Scenario(G, name, out_size, in_size, single(device), seed=seed)
        if hidden is not None:
            sc.set_hidden_parameters(hidden(sc), check=False)
        _device_run(sc, *w, decay=decay)
        return sc

    ls = dict(dw_min=0.01, w_max=0.5, w_min=-0.4, gamma_up_dtod=0.0, gamma_down_dtod=0.0)
    yield run("linear_step_0", mk(C.LinearStepDevice, gamma_up=0.3, gamma_down=0.6, **ls), seed=1)
    yield run("linear_step_updown", mk(C.LinearStepDevice, gamma_up=0.5, gamma_down=0.2,
                                       up_down=0.2, mean_bound_reference=False, **ls), seed=2)
    yield run("linear_step_increasing", mk(C.LinearStepDevice, gamma_up=-0.4, gamma_down=0.3,
                                           allow_increasing=True, **ls), seed=3)
    yield run("linear_step_additive_decay", mk(C.LinearStepDevice, gamma_up=0.2,
                                               gamma_down=0.7, mult_noise=False, lifetime=15.0,
                                               reset=0.05, **ls), decay=True, seed=4)
    yield run("linear_step_reverse", mk(C.LinearStepDevice, gamma_up=0.5, gamma_down=0.5,
                                        reverse_up=True, reverse_down=True,
                                        reverse_offset=0.05, **ls), seed=5)

    def ls_hidden(sc):
        shape = (sc.out_size, sc.in_size)
        hp = random_hidden(sc, 0.01, 0.5, -0.4)
        extras = {"slope_up": -sc.uniform(0.1, 0.6, shape) * hp["dwmin_up"] / 0.5,
                  "slope_down": -sc.uniform(0.1, 0.6, shape) * hp["dwmin_down"] / -0.4}
        return _full_hidden(sc, 0.01, 0.5, -0.4, {**hp, **extras})

    yield run("linear_step_hidden", C.LinearStepDevice(dw_min=0.01, w_max=0.5, w_min=-0.4,
                                                       dw_min_std=0.0, reset_std=0.0),
              hidden=ls_hidden, seed=6)

    sb = dict(dw_min=0.01, w_max=0.7, w_min=-0.5)
    yield run("soft_bounds_0", mk(C.SoftBoundsDevice, **sb), w=(-0.4, 0.6), seed=10)
    yield run("soft_bounds_updown_decay", mk(C.SoftBoundsDevice, up_down=-0.3, lifetime=8.0,
                                             reset=-0.1, **sb), decay=True, seed=11)
    yield run("soft_bounds_additive", mk(C.SoftBoundsDevice, mult_noise=False, dw_min=0.02,
                                         w_max=0.4, w_min=-0.8), seed=12)

    def sb_hidden(sc):
        hp = random_hidden(sc, 0.01, 0.7, -0.5)
        extras = {"slope_up": -hp["dwmin_up"] / hp["max_bound"],
                  "slope_down": -hp["dwmin_down"] / hp["min_bound"]}
        return _full_hidden(sc, 0.01, 0.7, -0.5, {**hp, **extras}, lifetime=True)

    yield run("soft_bounds_hidden", C.SoftBoundsDevice(dw_min=0.01, w_max=0.7, w_min=-0.5,
                                                       dw_min_std=0.0, reset_std=0.0,
                                                       lifetime=10.0),
              hidden=sb_hidden, decay=True, seed=13)

    yield run("soft_bounds_pmax_0", mk(C.SoftBoundsPmaxDevice, p_max=200, alpha=0.002,
                                       range_min=-0.8, range_max=1.2), w=(-0.5, 0.8), seed=20)
    yield run("soft_bounds_pmax_1", mk(C.SoftBoundsPmaxDevice, p_max=50, alpha=0.01,
                                       range_min=-1.0, range_max=0.5, lifetime=12.0),
              decay=True, seed=21)

    sbr = dict(dw_min=0.01, w_max=0.6, w_min=-0.6)
    yield run("soft_bounds_reference_0", mk(C.SoftBoundsReferenceDevice, reference_mean=0.1,
                                            **sbr), w=(-0.3, 0.3), seed=30)
    yield run("soft_bounds_reference_mult", mk(C.SoftBoundsReferenceDevice, mult_noise=True,
                                               reference_mean=-0.15, up_down=0.2, **sbr),
              w=(-0.3, 0.3), seed=31)
    yield run("soft_bounds_reference_sp", mk(C.SoftBoundsReferenceDevice, up_down=0.3,
                                             subtract_symmetry_point=True, lifetime=10.0,
                                             **sbr), w=(-0.3, 0.3), decay=True, seed=32)

    def sbr_hidden(sc):
        extras = {"reference": sc.uniform(-0.1, 0.1, (sc.out_size, sc.in_size))}
        return _full_hidden(sc, 0.01, 0.6, -0.6, extras)

    yield run("soft_bounds_reference_hidden",
              C.SoftBoundsReferenceDevice(dw_min=0.01, w_max=0.6, w_min=-0.6, dw_min_std=0.0,
                                          reset_std=0.0, reference_std=0.1),
              hidden=sbr_hidden, w=(-0.3, 0.3), seed=33)

    es = dict(dw_min=0.01, w_max=0.6, w_min=-0.5)
    yield run("exp_step_0", mk(C.ExpStepDevice, A_up=0.01, A_down=0.2, gamma_up=5.0,
                               gamma_down=6.0, a=0.5, b=0.1, **es), seed=40)
    yield run("exp_step_updown_decay", mk(C.ExpStepDevice, A_up=0.05, A_down=0.05,
                                          gamma_up=3.0, gamma_down=3.0, a=0.2, b=-0.1,
                                          up_down=0.25, lifetime=20.0, **es), decay=True,
              seed=41)
    yield run("exp_step_default_shape", mk(C.ExpStepDevice, **es), seed=42)
    yield run("exp_step_hidden", C.ExpStepDevice(dw_min=0.01, w_max=0.6, w_min=-0.5,
                                                 dw_min_std=0.0, reset_std=0.0, A_up=0.02,
                                                 A_down=0.1, gamma_up=4.0, gamma_down=4.0),
              hidden=lambda sc: _full_hidden(sc, 0.01, 0.6, -0.5), seed=43)

    ps = dict(dw_min=0.01, w_max=0.6, w_min=-0.6, pow_gamma_dtod=0.0, pow_up_down_dtod=0.0)
    yield run("pow_step_0", mk(C.PowStepDevice, pow_gamma=1.5, **ps), seed=50)
    yield run("pow_step_updown", mk(C.PowStepDevice, pow_gamma=0.7, pow_up_down=0.3,
                                    up_down=-0.1, lifetime=10.0, **ps), decay=True, seed=51)

    def ps_hidden(sc):
        shape = (sc.out_size, sc.in_size)
        extras = {"gamma_up": sc.uniform(0.5, 2.0, shape),
                  "gamma_down": sc.uniform(0.5, 2.0, shape)}
        return _full_hidden(sc, 0.01, 0.6, -0.6, extras)

    yield run("pow_step_hidden", C.PowStepDevice(dw_min=0.01, w_max=0.6, w_min=-0.6,
                                                 dw_min_std=0.0, reset_std=0.0),
              hidden=ps_hidden, seed=52)

    yield run("pow_step_reference_0", mk(C.PowStepReferenceDevice, pow_gamma=2.0,
                                         reference_mean=0.05, **ps), w=(-0.3, 0.3), seed=60)
    yield run("pow_step_reference_sp", mk(C.PowStepReferenceDevice, pow_gamma=1.3,
                                          pow_up_down=0.2, subtract_symmetry_point=True,
                                          n_estimation_steps=200, **ps),
              w=(-0.2, 0.2), seed=61)

    def psr_hidden(sc):
        shape = (sc.out_size, sc.in_size)
        extras = {"gamma_up": sc.uniform(0.8, 1.6, shape),
                  "gamma_down": sc.uniform(0.8, 1.6, shape),
                  "reference": sc.uniform(-0.05, 0.05, shape)}
        return _full_hidden(sc, 0.01, 0.6, -0.6, extras)

    yield run("pow_step_reference_hidden",
              C.PowStepReferenceDevice(dw_min=0.01, w_max=0.6, w_min=-0.6, dw_min_std=0.0,
                                       reset_std=0.0), hidden=psr_hidden, w=(-0.2, 0.2),
              seed=62)

    pw = dict(dw_min=0.01, w_max=0.5, w_min=-0.5)
    yield run("piecewise_step_0", mk(C.PiecewiseStepDevice,
                                     piecewise_up=[0.5, 1.0, 1.2, 0.8, 0.3],
                                     piecewise_down=[0.2, 0.9, 1.1, 1.0, 0.6], **pw), seed=70)
    yield run("piecewise_step_two_nodes", mk(C.PiecewiseStepDevice, piecewise_up=[1.5, 0.2],
                                             piecewise_down=[0.1, 1.3], up_down=0.2,
                                             lifetime=10.0, **pw), decay=True, seed=71)
    yield run("piecewise_step_hidden",
              C.PiecewiseStepDevice(dw_min=0.01, w_max=0.5, w_min=-0.5, dw_min_std=0.0,
                                    reset_std=0.0, piecewise_up=[0.3, 1.0, 0.6],
                                    piecewise_down=[0.7, 1.0, 0.2]),
              hidden=lambda sc: _full_hidden(sc, 0.01, 0.5, -0.5), seed=72)

    # drift (devices.md §7): deterministic without nu_std, nu_dtod and w_noise_std
    for k, drift in enumerate([C.DriftParameter(nu=0.1),
                               C.DriftParameter(nu=0.05, t_0=10.0, nu_k=0.02, log_g0=0.1,
                                                wg_ratio=2.0, g_offset=0.5, w_offset=0.1)]):
        name = f"drift_{k}"
        sc = Scenario(G, name, 4, 5, single(constant_step(dw_min=0.01, drift=drift)),
                      seed=80 + k)
        sc.set_weights(sc.uniform(0.05, 0.5, (4, 5)))
        for dt in (5.0, 5.0, 90.0):
            sc.drift_weights(dt)
        sc.set_learning_rate(0.1)
        sc.update(sc.uniform(0.2, 1, (1, 5)) * (np.arange(5) < 2), sc.uniform(0.2, 1, (1, 4)))
        for dt in (10.0, 100.0):
            sc.drift_weights(dt)
        sc.check_hidden()
        yield sc

    name = "drift_hidden_nu"
    sc = Scenario(G, name, 3, 6, single(constant_step(dw_min=0.01,
                                                      drift=C.DriftParameter(nu=0.1,
                                                                             nu_dtod=0.3))),
                  seed=85)
    sc.set_hidden_parameters({"drift_nu": sc.uniform(0.02, 0.2, (3, 6))}, check=False)
    sc.set_weights(sc.uniform(-0.5, 0.5, (3, 6)))
    for dt in (2.0, 20.0, 200.0):
        sc.drift_weights(dt)
    sc.check_hidden()
    yield sc


def _io_scenario(name, forward, backward=None, out_size=7, in_size=12, w_scale=0.5,
                 x_scales=(1.0, 0.3, 3.0), seed=0, weights=None):
    cfg = C.SingleRPUConfig(device=C.IdealDevice(), forward=forward,
                            backward=backward or IOParameters(out_noise=0.0),
                            update=det_update())
    sc = Scenario("io", name, out_size, in_size, cfg, seed=seed)
    w = sc.uniform(-w_scale, w_scale, (out_size, in_size)) if weights is None else weights
    sc.set_weights(w)
    for k, scale in enumerate(x_scales):
        x = sc.uniform(-scale, scale, (4, in_size))
        x[1] = np.abs(x[1])                      # an all-positive row
        if k == 0:
            x[2] = 0.0                           # an all-zero row
            x[3] = -np.abs(x[3])                 # an all-non-positive row (MAX NM -> 0)
        sc.forward(x, is_test=(k == 2))
        d = sc.uniform(-scale, scale, (3, out_size))
        if k == 0:
            d[1] = 0.0
        sc.backward(d)
    return sc


def scenarios_io():
    NM, BM = NoiseManagementType, BoundManagementType
    quiet = dict(out_noise=0.0)
    io = lambda **kw: IOParameters(**{**quiet, **kw})  # noqa: E731

    yield _io_scenario("defaults_no_noise", io(), io(), seed=1)
    for k, (ir, orr) in enumerate([(1 / 62, 1 / 254), (0.1, 0.05), (31, 100), (255, 1 / 30),
                                   (0, 0)]):
        yield _io_scenario(f"resolution_{k}", io(inp_res=ir, out_res=orr),
                           io(inp_res=ir, out_res=orr), seed=10 + k)
    yield _io_scenario("inp_bound_nm_none", io(inp_bound=0.5, noise_management=NM.NONE,
                                               bound_management=BM.NONE),
                       io(inp_bound=0.7, noise_management=NM.NONE), seed=20)
    yield _io_scenario("inp_unbounded_nm_none", io(inp_bound=-1.0, noise_management=NM.NONE,
                                                   bound_management=BM.NONE),
                       io(inp_bound=0.0, noise_management=NM.NONE), seed=21)
    yield _io_scenario("out_bound_clip", io(out_bound=2.0, bound_management=BM.NONE),
                       io(out_bound=1.5), w_scale=1.0, seed=22)
    yield _io_scenario("out_unbounded", io(out_bound=0.0, out_res=0.0,
                                           bound_management=BM.NONE),
                       io(out_bound=-1.0), w_scale=2.0, seed=23)
    for k, (nm, thres) in enumerate([(NM.NONE, 0.0), (NM.ABS_MAX, 0.0), (NM.ABS_MAX, 0.5),
                                     (NM.MAX, 0.0), (NM.MAX, 2.0), (NM.ABS_MAX_NP_SUM, 0.0),
                                     (NM.ABS_MAX_NP_SUM, 1.5), (NM.AVERAGE_ABS_MAX, 0.0),
                                     (NM.CONSTANT, 2.0), (NM.CONSTANT, 0.0)]):
        fwd = io(noise_management=nm, nm_thres=thres)
        bwd = io(noise_management=nm, nm_thres=thres)
        yield _io_scenario(f"nm_{nm.name.lower()}_{thres}", fwd, bwd, seed=30 + k)
    big = dict(w_scale=4.0, x_scales=(1.0, 3.0, 0.5))
    for k, (bm, extra) in enumerate([(BM.NONE, {}), (BM.ITERATIVE, {}),
                                     (BM.ITERATIVE_WORST_CASE, {}),
                                     (BM.ITERATIVE, {"bm_test_negative_bound": False}),
                                     (BM.ITERATIVE, {"max_bm_factor": 4}),
                                     (BM.ITERATIVE, {"max_bm_res": 0.05}),
                                     (BM.ITERATIVE, {"inp_res": 1 / 1022})]):
        yield _io_scenario(f"bm_{k}_{bm.name.lower()}", io(bound_management=bm, **extra),
                           io(bound_management=bm), out_size=6, in_size=40, seed=50 + k,
                           **big)
    yield _io_scenario("out_scale", io(out_scale=2.5), io(out_scale=0.4), seed=60)
    yield _io_scenario("inp_asymmetry", io(inp_asymmetry=0.2), io(inp_asymmetry=-0.1),
                       seed=61)
    yield _io_scenario("out_asymmetry", io(out_asymmetry=0.3), io(out_asymmetry=0.1), seed=62)
    for k, mv in enumerate(("POS_NEG_SEPARATE", "POS_NEG_SEPARATE_DIGITAL_SUM")):
        mvt = getattr(C.AnalogMVType, mv)
        yield _io_scenario(f"mv_{mv.lower()}", io(mv_type=mvt, out_res=1 / 62),
                           io(mv_type=mvt), seed=63 + k)
        yield _io_scenario(f"mv_{mv.lower()}_saturate", io(mv_type=mvt, out_bound=3.0),
                           io(mv_type=mvt, out_bound=2.0), out_size=5, in_size=30,
                           w_scale=2.0, seed=65 + k)
    # deterministic non-idealities (io.md §6, §8)
    yield _io_scenario("ir_drop", io(ir_drop=2.0, ir_drop_g_ratio=1000.0),
                       io(ir_drop=1.0, ir_drop_g_ratio=500.0), seed=70)
    yield _io_scenario("out_nonlinearity", io(out_nonlinearity=0.5),
                       io(out_nonlinearity=0.3, out_bound=0.0), seed=71)
    yield _io_scenario("slope_calibration", io(out_nonlinearity=0.4, slope_calibration=0.5),
                       io(out_nonlinearity=0.2, slope_calibration=0.3), seed=72)
    for k, vmin in enumerate((-1.0, 0.0)):
        yield _io_scenario(f"r_series_{k}", io(r_series=0.3, v_offset_w_min=vmin),
                           io(r_series=0.2, v_offset_w_min=vmin), seed=73 + k)
    yield _io_scenario("ideal_mv_type", io(mv_type=C.AnalogMVType.IDEAL, out_scale=1.5),
                       io(is_perfect=True, out_scale=2.0), seed=75)


def _compound_run(sc: Scenario, schedule, w=(-0.3, 0.3), post: bool = False) -> None:
    sc.set_weights(sc.uniform(*w, (sc.out_size, sc.in_size)))
    sc.check_hidden()
    for lr, batch in schedule:
        sc.set_learning_rate(lr)
        sc.random_update(batch)
        if post:
            sc.post_update_step()
    sc.check_hidden()


def scenarios_compound():
    G = "compound"
    VP = C.VectorUnitCellUpdatePolicy
    cs = lambda dw, **kw: constant_step(dw_min=dw, **kw)  # noqa: E731
    sb = lambda dw, **kw: C.SoftBoundsDevice(**{**NO_DTOD, "dw_min": dw, **kw})  # noqa: E731
    sched = [(0.05, 1), (0.2, 4), (0.5, 3), (0.1, 8)]

    def unit(device):
        return C.UnitCellRPUConfig(device=device, update=det_update(), **PERFECT)

    for k, (policy, gvec, devs) in enumerate([
            (VP.ALL, [], [cs(0.01), cs(0.02, up_down=0.2)]),
            (VP.ALL, [0.5, 2.0], [cs(0.01), sb(0.01, w_max=0.5, w_min=-0.4)]),
            (VP.SINGLE_FIXED, [], [cs(0.01), cs(0.01), cs(0.005)]),
            (VP.SINGLE_SEQUENTIAL, [0.3, 0.3, 0.4], [cs(0.01), cs(0.02), cs(0.01)])]):
        name = f"vector_{k}_{policy.name.lower()}"
        cfg = unit(C.VectorUnitCell(unit_cell_devices=devs, update_policy=policy,
                                    gamma_vec=gvec, first_update_idx=1 if k == 2 else 0))
        sc = Scenario(G, name, 5, 6, cfg, seed=200 + k)
        _compound_run(sc, sched)
        if policy == VP.SINGLE_FIXED:
            sc.set_hidden_update_index(2)
            sc.random_update(3)
            sc.check_hidden()
        yield sc

    for k, devs in enumerate([[sb(0.01, w_max=0.6, w_min=-0.6)],
                              [cs(0.01, lifetime=10.0), cs(0.01, lifetime=10.0)]]):
        name = f"reference_{k}"
        cfg = unit(C.ReferenceUnitCell(unit_cell_devices=devs))
        sc = Scenario(G, name, 4, 7, cfg, seed=210 + k)
        sc.set_weights(np.zeros((4, 7), np.float32))   # device 0 starts random in aihwkit
        sc.set_hidden_update_index(1)
        sc.set_weights(sc.uniform(-0.1, 0.1, (4, 7)))
        sc.set_hidden_update_index(0)
        _compound_run(sc, sched, post=(k == 1))
        yield sc

    name = "one_sided_no_refresh"
    cfg = unit(C.OneSidedUnitCell(unit_cell_devices=[cs(0.01, w_max=0.5)]))
    sc = Scenario(G, name, 5, 5, cfg, seed=220)
    _compound_run(sc, sched)
    yield sc

    def transfer(devs, cls=C.TransferCompound, tu=None, **kw):
        return cls(unit_cell_devices=devs, transfer_forward=IOParameters(is_perfect=True),
                   transfer_update=tu or det_update(), **kw)

    tsched = [(0.1, 1), (0.1, 3), (0.3, 2), (0.05, 5), (0.2, 1), (0.2, 4)]
    for k, kw in enumerate([
            dict(gamma=0.5),
            dict(gamma=0.0),
            dict(gamma_vec=[0.3, 0.7], transfer_every=2.0),
            dict(gamma=0.2, transfer_every=0.5, n_reads_per_transfer=2),
            dict(gamma=0.5, units_in_mbatch=False, transfer_every=3.0, transfer_lr=0.5,
                 scale_transfer_lr=False),
            dict(gamma=0.5, fast_lr=0.5, scale_fast_lr=False),
            dict(gamma=0.5, fast_lr=0.0, transfer_columns=False),
            dict(gamma=0.3, with_reset_prob=1.0, n_reads_per_transfer=2),
    ]):
        name = f"transfer_{k}"
        devs = [cs(0.01, reset=0.02 if "with_reset_prob" in kw else 0.0), cs(0.005)]
        cfg = unit(transfer(devs, **kw))
        sc = Scenario(G, name, 4, 6, cfg, seed=230 + k)
        _compound_run(sc, tsched)
        yield sc

    name = "transfer_three_devices"
    cfg = unit(transfer([cs(0.01), cs(0.005), cs(0.002)], gamma=0.5, transfer_every=1.0,
                        units_in_mbatch=False))
    sc = Scenario(G, name, 3, 5, cfg, seed=240)
    _compound_run(sc, tsched + tsched)
    yield sc

    name = "transfer_soft_bounds_decay"
    cfg = unit(transfer([sb(0.01, lifetime=20.0), sb(0.004, lifetime=50.0)], gamma=0.4))
    sc = Scenario(G, name, 4, 4, cfg, seed=241)
    _compound_run(sc, tsched, post=True)
    yield sc

    # nested compounds: hidden names inner-to-outer (compounds.md §1.3)
    name = "transfer_of_reference_cells"
    ref = lambda dw: C.ReferenceUnitCell(unit_cell_devices=[sb(dw), sb(dw)])  # noqa: E731
    cfg = unit(transfer([ref(0.01), ref(0.005)], gamma=0.5))
    sc = Scenario(G, name, 3, 4, cfg, seed=242)
    _compound_run(sc, tsched)
    yield sc

    name = "vector_of_vectors"
    cfg = unit(C.VectorUnitCell(unit_cell_devices=[
        C.VectorUnitCell(unit_cell_devices=[cs(0.01), cs(0.02)]), cs(0.005)]))
    sc = Scenario(G, name, 4, 3, cfg, seed=243)
    _compound_run(sc, sched)
    yield sc

    # issue #302 / PR #313: with gamma = 0 the hidden weights of A and C can be set
    name = "transfer_gamma0_set_hidden"
    cfg = unit(transfer([cs(0.01), cs(0.005)], gamma=0.0))
    sc = Scenario(G, name, 3, 5, cfg, seed=244)
    sc.set_weights(np.zeros((3, 5), np.float32))
    sc.set_hidden_parameters({"hidden_weights_0": sc.uniform(-0.2, 0.2, (3, 5)),
                              "hidden_weights_1": sc.uniform(-0.4, 0.4, (3, 5))})
    sc.forward(sc.uniform(-1, 1, (2, 5)))
    for lr, batch in tsched:
        sc.set_learning_rate(lr)
        sc.random_update(batch)
    sc.check_hidden()
    yield sc

    for k, kw in enumerate([
            dict(gamma=0.5, transfer_columns=False, n_reads_per_transfer=2),
            dict(gamma=0.3, tu=UpdateParameters(pulse_type=PulseType.MEAN_COUNT,
                                                desired_bl=15)),
            dict(gamma=0.3, transfer_lr_vec=[0.5, 1.0], transfer_every_vec=[2.0, 0.0])]):
        name = f"transfer_extra_{k}"
        cfg = unit(transfer([cs(0.01), cs(0.005)], **kw))
        sc = Scenario(G, name, 5, 3, cfg, seed=245 + k)
        _compound_run(sc, tsched)
        yield sc

    # slices of one transfer that wrap past the last column: two read-and-update passes
    for k, (nr, prob) in enumerate([(2, 1.0), (2, 0.0), (3, 1.0), (3, 0.0)]):
        name = f"transfer_wrap_{k}"
        devs = [cs(0.01, reset=0.02), cs(0.005)]
        cfg = unit(transfer(devs, gamma=0.3, n_reads_per_transfer=nr, with_reset_prob=prob))
        sc = Scenario(G, name, 4, 5, cfg, seed=250 + k)
        _compound_run(sc, tsched)
        yield sc

    bu = dict(transfer_forward=IOParameters(is_perfect=True))
    for k, kw in enumerate([dict(gamma=0.0), dict(gamma=0.5, momentum=0.3, forget_buffer=False,
                                                  thres_scale=2.0),
                            dict(gamma=0.0, thres_scale=0.5, step=2.0)]):
        name = f"buffered_{k}"
        cfg = unit(C.BufferedTransferCompound(unit_cell_devices=[cs(0.01), cs(0.005)],
                                              **bu, **kw))
        sc = Scenario(G, name, 4, 5, cfg, seed=250 + k)
        _compound_run(sc, tsched + tsched)
        yield sc

    for k, kw in enumerate([dict(gamma=0.0, in_chop_prob=0.5, in_chop_random=False),
                            dict(gamma=0.5, in_chop_prob=0.0, momentum=0.2),
                            dict(gamma=0.0, in_chop_prob=1.0, in_chop_random=False,
                                 buffer_granularity=2.0, fast_lr=0.1)]):
        name = f"chopped_{k}"
        cfg = unit(C.ChoppedTransferCompound(unit_cell_devices=[cs(0.01), cs(0.005)],
                                             **bu, **kw))
        sc = Scenario(G, name, 3, 4, cfg, seed=260 + k)
        _compound_run(sc, tsched + tsched)
        yield sc

    name = "dynamic_0"
    cfg = unit(C.DynamicTransferCompound(unit_cell_devices=[cs(0.001), cs(0.002)], **bu,
                                         gamma=0.0, in_chop_prob=0.25, fast_lr=0.05))
    sc = Scenario(G, name, 3, 4, cfg, seed=270)
    _compound_run(sc, tsched * 4)
    yield sc

    for k, kw in enumerate([dict(), dict(granularity=0.02, transfer_lr=0.5,
                                          n_rows_per_transfer=2),
                            dict(n_x_bins=5, n_d_bins=7, stoc_round_x=False,
                                 stoc_round_d=False, transfer_every=2)]):
        name = f"mixed_precision_{k}"
        kw.setdefault("stoc_round_x", False)
        kw.setdefault("stoc_round_d", False)
        cfg = C.DigitalRankUpdateRPUConfig(device=C.MixedPrecisionCompound(device=cs(0.01),
                                                                           **kw),
                                           update=det_update(), **PERFECT)
        sc = Scenario(G, name, 5, 4, cfg, seed=280 + k)
        _compound_run(sc, tsched)
        yield sc


GROUPS = {"update": scenarios_update, "devices": scenarios_devices, "io": scenarios_io,
          "compound": scenarios_compound}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--group", action="append", choices=sorted(GROUPS),
                        help="group(s) to generate (default: all)")
    parser.add_argument("--out", default=str(ROOT / "tests" / "golden"))
    args = parser.parse_args(argv)
    out_dir = pathlib.Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for group in args.group or sorted(GROUPS):
        for old in out_dir.glob(f"{group}__*.npz"):
            old.unlink()
        count = 0
        for sc in GROUPS[group]():
            sc.save(out_dir)
            count += 1
        print(f"{group}: {count} scenarios")


if __name__ == "__main__":
    main(sys.argv[1:])
