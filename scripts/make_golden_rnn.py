"""Golden scenarios of aihwkit 1.2.0's recurrent layers (``AnalogRNN`` and its cells).

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_rnn.py [--out tests/golden/rnn]

Each scenario builds an ``AnalogRNN``, programs every analog linear with seeded weights and
biases (``set_weights``, in ``named_modules`` order), then trains a few steps with ``AnalogSGD``
on seeded data and initial states: forward, a loss on the outputs and the final states,
backward, ``step``. It records the outputs, final states, the gradients of the input and of the
initial states, and every linear's ``get_weights()`` after each step. Configs are deterministic
(no device-to-device or cycle-to-cycle variation, deterministic pulse trains, noise-free IO),
so the numbers do not depend on aihwkit's random generator, only on the order and content of
the tile calls. Two further scenarios record the initial weights that ``AnalogRNN`` draws from
torch's generator after ``torch.manual_seed``.

File format (``<out>/<name>.npz``): ``meta`` is a 0-d string array of JSON
``{name, cell, input_size, hidden_size, bias, num_layers, bidir, xavier, rpu_config, mapping,
lr, steps, seq_len, batch, linears, n_states, tolerance}``; ``linears`` lists the module paths
of the analog linears. Arrays: ``sw|<path>``/``sb|<path>`` set weights and biases,
``s0_<i>`` the flattened initial states, and per step ``k``: ``x<k>``, ``t<k>`` (target),
``out<k>``, ``st<k>_<i>`` (final states, flattened), ``gx<k>``, ``gs<k>_<i>``,
``w<k>|<path>``, ``b<k>|<path>``. Init scenarios carry only ``w0|<path>``/``b0|<path>``.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import zlib

import numpy as np
import torch
from aihwkit.nn import (AnalogGRUCell, AnalogLinear, AnalogLSTMCell,
                        AnalogLSTMCellCombinedWeight, AnalogRNN, AnalogVanillaRNNCell)
from aihwkit.optim import AnalogSGD
from aihwkit.simulator import configs as C
from aihwkit.simulator.configs import IOParameters, MappingParameter

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from make_golden import NO_DTOD, det_update, sparse_dict  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}
CELLS = {"lstm": AnalogLSTMCell, "gru": AnalogGRUCell, "vanilla": AnalogVanillaRNNCell,
         "lstm_combined": AnalogLSTMCellCombinedWeight}


def flatten(state) -> list[torch.Tensor]:
    """The tensors of a (nested) RNN state in order."""
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for item in state for t in flatten(item)]


def rebuild(state, values):
    """``state`` with its tensors replaced, in order, by ``values`` (an iterator)."""
    if isinstance(state, torch.Tensor):
        return next(values)
    items = [rebuild(item, values) for item in state]
    return type(state)(*items) if hasattr(state, "_fields") else type(state)(items)


def noise_free_io(**kw) -> IOParameters:
    """Default IO (7-bit-ish DAC/ADC, bounds, noise and bound management) without noise."""
    return IOParameters(out_noise=0.0, w_noise=0.0, inp_noise=0.0, **kw)


def config(device, io=None, digital_bias=True, **mapping):
    io = io or {}
    cfg = C.SingleRPUConfig(device=device, update=det_update(),
                            forward=io.get("forward", noise_free_io()),
                            backward=io.get("backward", noise_free_io()))
    cfg.mapping = MappingParameter(digital_bias=digital_bias, **mapping)
    return cfg


def analog_linears(model) -> list[tuple[str, AnalogLinear]]:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AnalogLinear)]


def run(name, cell, rpu_config, *, input_size=4, hidden_size=3, bias=True, num_layers=1,
        bidir=False, seq_len=5, batch=3, steps=3, lr=0.05):
    """Train one model a few steps on aihwkit and return (meta, arrays)."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    torch.manual_seed(0)
    model = AnalogRNN(CELLS[cell], input_size, hidden_size, bias=bias, rpu_config=rpu_config,
                      num_layers=num_layers, bidir=bidir)
    arrays: dict[str, np.ndarray] = {}
    linears = analog_linears(model)
    for path, layer in linears:
        w, b = layer.get_weights()
        new_w = rng.uniform(-0.6, 0.6, tuple(w.shape)).astype(np.float32)
        new_b = None if b is None else rng.uniform(-0.3, 0.3, tuple(b.shape)).astype(np.float32)
        layer.set_weights(torch.from_numpy(new_w),
                          None if new_b is None else torch.from_numpy(new_b))
        arrays[f"sw|{path}"] = new_w
        if new_b is not None:
            arrays[f"sb|{path}"] = new_b
    zero = model.get_zero_state(batch)
    init = [rng.uniform(-0.5, 0.5, tuple(t.shape)).astype(np.float32) for t in flatten(zero)]
    for i, value in enumerate(init):
        arrays[f"s0_{i}"] = value
    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    num_dirs = 2 if bidir else 1
    for k in range(steps):
        x = rng.uniform(-1, 1, (seq_len, batch, input_size)).astype(np.float32)
        target = rng.uniform(-0.5, 0.5, (seq_len, batch, num_dirs * hidden_size))
        target = target.astype(np.float32)
        x_t = torch.from_numpy(x).requires_grad_(True)
        s_t = [torch.from_numpy(v).requires_grad_(True) for v in init]
        opt.zero_grad()
        out, states = model(x_t, rebuild(zero, iter(s_t)))
        finals = flatten(states)
        loss = 0.5 * ((out - torch.from_numpy(target)) ** 2).sum()
        loss = loss + 0.25 * sum((s ** 2).sum() for s in finals)
        loss.backward()
        opt.step()
        arrays[f"x{k}"], arrays[f"t{k}"] = x, target
        arrays[f"out{k}"] = out.detach().numpy()
        arrays[f"gx{k}"] = x_t.grad.numpy()
        for i, s in enumerate(finals):
            arrays[f"st{k}_{i}"] = s.detach().numpy()
        for i, s in enumerate(s_t):
            arrays[f"gs{k}_{i}"] = s.grad.numpy()
        for path, layer in linears:
            w, b = layer.get_weights()
            arrays[f"w{k}|{path}"] = w.detach().numpy().astype(np.float32)
            if b is not None:
                arrays[f"b{k}|{path}"] = b.detach().numpy().astype(np.float32)
    meta = _meta(name, cell, rpu_config, input_size, hidden_size, bias, num_layers, bidir,
                 False, lr, steps, seq_len, batch, [p for p, _ in linears], len(init))
    return meta, arrays


def run_init(name, cell, rpu_config, *, xavier, input_size=4, hidden_size=3, num_layers=2,
             bidir=True, seed=7):
    """The initial weights ``AnalogRNN`` draws after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    model = AnalogRNN(CELLS[cell], input_size, hidden_size, rpu_config=rpu_config,
                      num_layers=num_layers, bidir=bidir, xavier=xavier)
    arrays = {}
    linears = analog_linears(model)
    for path, layer in linears:
        w, b = layer.get_weights()
        arrays[f"w0|{path}"] = w.detach().numpy().astype(np.float32)
        arrays[f"b0|{path}"] = b.detach().numpy().astype(np.float32)
    meta = _meta(name, cell, rpu_config, input_size, hidden_size, True, num_layers, bidir,
                 xavier, 0.0, 0, 0, 0, [p for p, _ in linears], 0)
    meta["torch_seed"] = seed
    return meta, arrays


def _meta(name, cell, rpu_config, input_size, hidden_size, bias, num_layers, bidir, xavier,
          lr, steps, seq_len, batch, linears, n_states):
    return {"name": name, "cell": cell, "input_size": input_size, "hidden_size": hidden_size,
            "bias": bias, "num_layers": num_layers, "bidir": bidir, "xavier": xavier,
            "rpu_config": sparse_dict(rpu_config), "mapping": sparse_dict(rpu_config.mapping),
            "lr": lr, "steps": steps, "seq_len": seq_len, "batch": batch, "linears": linears,
            "n_states": n_states, "tolerance": TOLERANCE}


def scenarios():
    constant = C.ConstantStepDevice(dw_min=0.002, **NO_DTOD)
    soft = C.SoftBoundsDevice(dw_min=0.002, w_max=1.0, w_min=-1.0, **NO_DTOD)
    perfect = {"forward": IOParameters(is_perfect=True),
               "backward": IOParameters(is_perfect=True)}
    for cell in CELLS:
        yield run(f"{cell}_constant_step", cell, config(constant))
    yield run("lstm_softbounds_perfect_io", "lstm", config(soft, perfect))
    yield run("gru_softbounds", "gru", config(soft), seq_len=4, batch=2)
    yield run("lstm_bidir_2layers", "lstm", config(soft), num_layers=2, bidir=True,
              seq_len=4, batch=2, steps=2)
    yield run("gru_analog_bias_2layers", "gru", config(constant, digital_bias=False),
              num_layers=2, steps=2)
    yield run("vanilla_no_bias_bidir", "vanilla", config(soft), bias=False, bidir=True,
              hidden_size=5, input_size=2)
    # every linear split over a grid of tiles (per-tile IO scaling changes the results)
    yield run("lstm_mapped_tiles", "lstm", config(constant, max_input_size=3, max_output_size=5))
    yield run("gru_weight_scaling", "gru", config(soft, weight_scaling_omega=0.6,
                                                  weight_scaling_columnwise=True), steps=2)
    floating = C.FloatingPointRPUConfig()
    yield run_init("init_lstm_default", "lstm", floating, xavier=False)
    yield run_init("init_gru_xavier", "gru", floating, xavier=True, num_layers=1, bidir=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(ROOT / "tests" / "golden" / "rnn"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    for meta, arrays in scenarios():
        path = out / f"{meta['name']}.npz"
        np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)
        print(f"wrote {path} ({len(arrays)} arrays)")


if __name__ == "__main__":
    main()
