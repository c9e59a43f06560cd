"""Recurrent analog layers: aihwkit goldens, torch's own RNNs as references, update order."""

import json
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from rpusim.configs import (ConstantStepDevice, FloatingPointRPUConfig,  # noqa: E402
                            IOParameters, SingleRPUConfig, UpdateParameters, config_from_dict)
from rpusim.configs.enums import PulseType  # noqa: E402
from rpusim.torch import (AnalogGRUCell, AnalogLinear, AnalogLSTMCell,  # noqa: E402
                          AnalogLSTMCellCombinedWeight, AnalogRNN, AnalogSGD,
                          AnalogVanillaRNNCell, LSTMState)

GOLDEN = sorted((pathlib.Path(__file__).parent / "golden" / "rnn").glob("*.npz"))
CELLS = {"lstm": AnalogLSTMCell, "gru": AnalogGRUCell, "vanilla": AnalogVanillaRNNCell,
         "lstm_combined": AnalogLSTMCellCombinedWeight}
TORCH_RNN = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "vanilla": torch.nn.RNN}


def flatten(state) -> list:
    if isinstance(state, torch.Tensor):
        return [state]
    return [t for item in state for t in flatten(item)]


def rebuild(state, values):
    if isinstance(state, torch.Tensor):
        return next(values)
    items = [rebuild(item, values) for item in state]
    return type(state)(*items) if hasattr(state, "_fields") else type(state)(items)


def analog_linears(model) -> list:
    return [(name, m) for name, m in model.named_modules() if isinstance(m, AnalogLinear)]


def close(got, expected, tol, where):
    np.testing.assert_allclose(np.asarray(got, np.float32), expected, rtol=tol["rtol"],
                               atol=tol["atol"], err_msg=where)


# -- aihwkit goldens (scripts/make_golden_rnn.py) -----------------------------------------------
def load(path):
    with np.load(path) as data:
        meta = json.loads(str(data["meta"]))
        return meta, {k: data[k] for k in data.files if k != "meta"}


def build(meta, seed=0):
    config = config_from_dict(meta["rpu_config"])
    config.mapping = config_from_dict(meta["mapping"])
    return AnalogRNN(CELLS[meta["cell"]], meta["input_size"], meta["hidden_size"],
                     bias=meta["bias"], rpu_config=config, num_layers=meta["num_layers"],
                     bidir=meta["bidir"], xavier=meta["xavier"], seed=seed)


@pytest.mark.parametrize("path", [p for p in GOLDEN if not p.name.startswith("init_")],
                         ids=lambda p: p.stem)
def test_golden_training(path):
    meta, arrays = load(path)
    tol = meta["tolerance"]
    model = build(meta)
    linears = analog_linears(model)
    assert [p for p, _ in linears] == meta["linears"]
    for p, layer in linears:
        bias = arrays.get(f"sb|{p}")
        layer.set_weights(torch.from_numpy(arrays[f"sw|{p}"]),
                          None if bias is None else torch.from_numpy(bias))
    zero = model.get_zero_state(meta["batch"])
    assert len(flatten(zero)) == meta["n_states"]
    opt = AnalogSGD(model.parameters(), lr=meta["lr"])
    opt.regroup_param_groups(model)
    for k in range(meta["steps"]):
        x = torch.from_numpy(arrays[f"x{k}"]).requires_grad_(True)
        s0 = [torch.from_numpy(arrays[f"s0_{i}"]).requires_grad_(True)
              for i in range(meta["n_states"])]
        opt.zero_grad()
        out, states = model(x, rebuild(zero, iter(s0)))
        finals = flatten(states)
        loss = 0.5 * ((out - torch.from_numpy(arrays[f"t{k}"])) ** 2).sum()
        loss = loss + 0.25 * sum((s ** 2).sum() for s in finals)
        loss.backward()
        opt.step()
        close(out.detach(), arrays[f"out{k}"], tol, f"step {k}: output")
        for i, s in enumerate(finals):
            close(s.detach(), arrays[f"st{k}_{i}"], tol, f"step {k}: final state {i}")
        close(x.grad, arrays[f"gx{k}"], tol, f"step {k}: input gradient")
        for i, s in enumerate(s0):
            close(s.grad, arrays[f"gs{k}_{i}"], tol, f"step {k}: initial-state gradient {i}")
        for p, layer in linears:
            w, b = layer.get_weights()
            close(w, arrays[f"w{k}|{p}"], tol, f"step {k}: weights of {p}")
            if f"b{k}|{p}" in arrays:
                close(b.detach(), arrays[f"b{k}|{p}"], tol, f"step {k}: bias of {p}")


@pytest.mark.parametrize("path", [p for p in GOLDEN if p.name.startswith("init_")],
                         ids=lambda p: p.stem)
def test_golden_initial_weights(path):
    """``torch.manual_seed`` then ``AnalogRNN(...)`` draws aihwkit's initial weights."""
    meta, arrays = load(path)
    torch.manual_seed(meta["torch_seed"])
    model = build(meta, seed=None)
    linears = analog_linears(model)
    assert [p for p, _ in linears] == meta["linears"]
    for p, layer in linears:
        w, b = layer.get_weights()
        close(w, arrays[f"w0|{p}"], meta["tolerance"], f"initial weights of {p}")
        close(b.detach(), arrays[f"b0|{p}"], meta["tolerance"], f"initial bias of {p}")


def test_golden_fixtures_present():
    assert len(GOLDEN) >= 13


# -- floating point equals torch's nn.LSTM / nn.GRU / nn.RNN --------------------------------------
def copy_into_torch(model, ref, cell, num_layers, bidir):
    """Copy the analog model's weights into torch's RNN (per layer and direction)."""
    with torch.no_grad():
        for k in range(num_layers):
            for direction in range(2 if bidir else 1):
                layer = model.rnn.layers[k]
                cell_mod = (layer.directions[direction] if bidir else layer).cell
                suffix = f"l{k}" + ("_reverse" if direction else "")
                if cell == "lstm_combined":
                    w, b = cell_mod.weight.get_weights()
                    n_in = w.shape[1] - cell_mod.hidden_size
                    parts = {"weight_ih": w[:, :n_in], "weight_hh": w[:, n_in:],
                             "bias_ih": b, "bias_hh": torch.zeros_like(b)}
                else:
                    w_ih, b_ih = cell_mod.weight_ih.get_weights()
                    w_hh, b_hh = cell_mod.weight_hh.get_weights()
                    parts = {"weight_ih": w_ih, "weight_hh": w_hh, "bias_ih": b_ih,
                             "bias_hh": b_hh}
                for name, value in parts.items():
                    getattr(ref, f"{name}_{suffix}").copy_(value)


def torch_final_states(states, cell, num_layers, bidir):
    """Our per-layer states in torch's ``(layers * dirs, batch, hidden)`` layout."""
    per_dir = [s for layer in states for s in (layer if bidir else [layer])]
    if cell.startswith("lstm"):
        return (torch.stack([s[0] for s in per_dir]), torch.stack([s[1] for s in per_dir]))
    return torch.stack(per_dir)


@pytest.mark.parametrize("cell,num_layers,bidir", [
    ("lstm", 1, False), ("gru", 2, False), ("vanilla", 1, True), ("lstm_combined", 2, True),
    ("lstm", 2, True)])
def test_floating_point_equals_torch_rnn(cell, num_layers, bidir):
    torch.manual_seed(3)
    model = AnalogRNN(CELLS[cell], 3, 4, rpu_config=FloatingPointRPUConfig(),
                      num_layers=num_layers, bidir=bidir, seed=0)
    ref = TORCH_RNN[cell.split("_")[0]](3, 4, num_layers=num_layers, bidirectional=bidir)
    copy_into_torch(model, ref, cell, num_layers, bidir)
    if cell == "lstm_combined":  # one bias per tile: torch's bias_hh stays 0
        for name, value in ref.named_parameters():
            value.requires_grad_(not name.startswith("bias_hh"))
    x = torch.randn(6, 2, 3)
    target = torch.randn(6, 2, 8 if bidir else 4)
    opt = AnalogSGD(model.parameters(), lr=0.1)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.1)
    for _ in range(2):
        results = []
        for net, optimizer in ((model, opt), (ref, ref_opt)):
            x_in = x.clone().requires_grad_(True)
            out, states = net(x_in)
            optimizer.zero_grad()
            ((out - target) ** 2).sum().backward()
            optimizer.step()
            results.append((out.detach(), states, x_in.grad))
        (out, states, grad), (ref_out, ref_states, ref_grad) = results
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-5)
        ours = torch_final_states(states, cell, num_layers, bidir)
        torch.testing.assert_close(flatten(ours), [t.detach() for t in flatten(ref_states)],
                                   rtol=1e-5, atol=1e-5)
        trained = type(ref)(3, 4, num_layers=num_layers, bidirectional=bidir)
        copy_into_torch(model, trained, cell, num_layers, bidir)
        for name, value in ref.named_parameters():
            torch.testing.assert_close(getattr(trained, name), value, rtol=1e-4, atol=1e-5,
                                       msg=lambda m, name=name: f"{name}: {m}")


@settings(deadline=None, max_examples=12)
@given(cell=st.sampled_from(sorted(CELLS)), n_in=st.integers(1, 4), hidden=st.integers(1, 5),
       seq_len=st.integers(1, 4), batch=st.integers(1, 3), num_layers=st.integers(1, 2),
       bidir=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_floating_point_forward_and_gradients_any_shape(cell, n_in, hidden, seq_len, batch,
                                                        num_layers, bidir, seed):
    """Any sizes: the analog RNN's outputs, final states and input gradients are torch's."""
    torch.manual_seed(seed)
    model = AnalogRNN(CELLS[cell], n_in, hidden, rpu_config=FloatingPointRPUConfig(),
                      num_layers=num_layers, bidir=bidir, seed=seed)
    ref = TORCH_RNN[cell.split("_")[0]](n_in, hidden, num_layers=num_layers,
                                         bidirectional=bidir)
    copy_into_torch(model, ref, cell, num_layers, bidir)
    x = torch.randn(seq_len, batch, n_in)
    outs = []
    for net in (model, ref):
        x_in = x.clone().requires_grad_(True)
        out, states = net(x_in)
        out.square().sum().backward()
        outs.append((out.detach(), states, x_in.grad))
    torch.testing.assert_close(outs[0][0], outs[1][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(outs[0][2], outs[1][2], rtol=1e-4, atol=1e-5)
    ours = torch_final_states(outs[0][1], cell, num_layers, bidir)
    torch.testing.assert_close(flatten(ours), [t.detach() for t in flatten(outs[1][1])],
                               rtol=1e-5, atol=1e-5)


# -- update order -------------------------------------------------------------------------------
def record_updates(model) -> dict:
    """Wrap every tile's ``_update_rows`` (where ``update`` and the layers' update path
    meet) in a recorder that still updates."""
    calls = {}
    for path, layer in analog_linears(model):
        tile = layer.analog_tile
        calls[path] = []

        def update(x, d, lr, _orig=tile._update_rows, _log=calls[path]):
            _log.append((np.array(x, copy=True), np.array(d, copy=True)))
            return _orig(x, d, lr)
        tile._update_rows = update
    return calls


@pytest.mark.parametrize("bidir", [False, True])
def test_one_update_per_step_in_reverse_time_order(bidir):
    """Each linear gets one update per step: seq_len * batch rows, last time step first."""
    seq_len, batch, n_in, hidden = 4, 3, 2, 5
    model = AnalogRNN(AnalogLSTMCell, n_in, hidden, rpu_config=FloatingPointRPUConfig(),
                      bidir=bidir, seed=1)
    calls = record_updates(model)
    x = torch.rand(seq_len, batch, n_in)
    h0 = torch.rand(batch, hidden)
    zero = model.get_zero_state(batch)
    states = [[LSTMState(h0, s.cx) for s in zero[0]]] if bidir else [LSTMState(h0, zero[0].cx)]
    opt = AnalogSGD(model.parameters(), lr=0.01)
    out, _ = model(x, states)
    out.sum().backward()
    opt.step()
    assert all(len(log) == 1 for log in calls.values())
    for direction in range(2 if bidir else 1):
        prefix = f"rnn.layers.0.directions.{direction}.cell" if bidir else "rnn.layers.0.cell"
        time_order = range(seq_len) if direction else range(seq_len - 1, -1, -1)
        x_ih, d_ih = calls[f"{prefix}.weight_ih"][0]
        assert x_ih.shape == (seq_len * batch, n_in) and d_ih.shape == (seq_len * batch,
                                                                          4 * hidden)
        np.testing.assert_array_equal(x_ih, np.concatenate([x[t].numpy() for t in time_order]))
        # the recurrent tile sees the previous hidden state: h0 at the first processed step
        x_hh, _ = calls[f"{prefix}.weight_hh"][0]
        outputs = out[..., direction * hidden:(direction + 1) * hidden].detach()
        previous = {t: (h0 if t == (seq_len - 1 if direction else 0) else
                        outputs[t + 1 if direction else t - 1]) for t in range(seq_len)}
        np.testing.assert_allclose(x_hh, np.concatenate([previous[t].numpy()
                                                         for t in time_order]), rtol=1e-6)


@pytest.mark.parametrize("nm,calls", [("ABS_MAX", 1), ("AVERAGE_ABS_MAX", 4)])
def test_input_projection_in_one_call_unless_rows_carry_state(nm, calls):
    """One weight_ih forward per sequence; per step where the IO keeps a running abs-max."""
    from rpusim.configs.enums import NoiseManagementType
    config = SingleRPUConfig(forward=IOParameters(
        noise_management=getattr(NoiseManagementType, nm)))
    model = AnalogRNN(AnalogGRUCell, 2, 3, rpu_config=config, seed=0)
    counts = {}
    for path, layer in analog_linears(model):
        tile = layer.analog_tile

        # the entry point of both tile.forward and the layers' short path
        def forward(x, *args, _orig=tile._forward_rows, _path=path, **kwargs):
            counts[_path] = counts.get(_path, 0) + 1
            return _orig(x, *args, **kwargs)
        tile._forward_rows = forward
    model(torch.rand(4, 5, 2))
    assert counts == {"rnn.layers.0.cell.weight_ih": calls, "rnn.layers.0.cell.weight_hh": 4}


# -- structure, defaults, seeds, validation -----------------------------------------------------
def test_module_paths_and_state_layout():
    model = AnalogRNN(AnalogLSTMCell, 3, 4, rpu_config=SingleRPUConfig(), num_layers=2,
                      bidir=True, seed=0)
    names = [p for p, _ in analog_linears(model)]
    assert names[:2] == ["rnn.layers.0.directions.0.cell.weight_ih",
                         "rnn.layers.0.directions.0.cell.weight_hh"]
    assert len(names) == 8 and len(list(model.analog_tiles())) == 8
    # layer 1 reads both directions of layer 0
    assert model.rnn.layers[1].directions[0].cell.weight_ih.in_features == 8
    out, states = model(torch.rand(5, 2, 3))
    assert out.shape == (5, 2, 8)
    assert len(states) == 2 and len(states[0]) == 2
    # aihwkit's cells return the new LSTM state as a plain (h, c) tuple
    assert isinstance(states[1][1], tuple) and states[1][1][1].shape == (2, 4)
    assert isinstance(model.get_zero_state(2)[0][0], LSTMState)
    gru = AnalogRNN(AnalogGRUCell, 3, 4, rpu_config=SingleRPUConfig(), seed=0)
    out, states = gru(torch.rand(5, 2, 3))
    assert isinstance(states[0], torch.Tensor)
    torch.testing.assert_close(states[0], out[-1])


def test_without_rpu_config_cells_are_digital():
    model = AnalogRNN(AnalogVanillaRNNCell, 3, 4)
    cell = model.rnn.layers[0].cell
    assert type(cell.weight_ih) is torch.nn.Linear and not analog_linears(model)


def test_gru_without_rpu_config_uses_inference_config():
    from rpusim import configs
    cell = AnalogGRUCell(3, 4, True)
    assert isinstance(cell.weight_ih, AnalogLinear)
    assert isinstance(cell.weight_ih.analog_tile.rpu_config, configs.InferenceRPUConfig)


def test_default_init_is_uniform_in_inverse_sqrt_hidden():
    model = AnalogRNN(AnalogLSTMCell, 6, 16, rpu_config=FloatingPointRPUConfig(), seed=0)
    for _, layer in analog_linears(model):
        w, b = layer.get_weights()
        assert float(w.abs().max()) <= 0.25 and float(b.abs().max()) <= 0.25
        assert float(w.abs().max()) > 0.2  # 384 draws: the bound is nearly reached
    xavier = AnalogRNN(AnalogGRUCell, 6, 16, rpu_config=FloatingPointRPUConfig(), xavier=True)
    w, b = xavier.rnn.layers[0].cell.weight_hh.get_weights()
    assert float(b.abs().max()) == 0.0 and float(w.abs().max()) <= np.sqrt(6 / (16 + 48))


def noisy_config():
    return SingleRPUConfig(device=ConstantStepDevice(),
                           update=UpdateParameters(pulse_type=PulseType.STOCHASTIC_COMPRESSED))


def train_once(model, x):
    opt = AnalogSGD(model.parameters(), lr=0.1)
    out, _ = model(x)
    out.square().sum().backward()
    opt.step()
    return out.detach(), [layer.get_weights()[0] for _, layer in analog_linears(model)]


def test_seed_makes_runs_bit_identical_and_tiles_independent():
    x = torch.rand(3, 2, 4)
    runs = []
    for _ in range(2):
        torch.manual_seed(5)
        runs.append(train_once(AnalogRNN(AnalogGRUCell, 4, 3, rpu_config=noisy_config(),
                                         num_layers=2, seed=11), x))
    torch.testing.assert_close(runs[0][0], runs[1][0], rtol=0, atol=0)
    for a, b in zip(runs[0][1], runs[1][1]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    # the tiles draw from different streams: equal weights, different device-to-device draws
    model = AnalogRNN(AnalogVanillaRNNCell, 3, 3, rpu_config=noisy_config(), seed=11)
    tiles = [layer.analog_tile for _, layer in analog_linears(model)]
    params = [t.get_hidden_parameters()["dwmin_up"] for t in tiles]
    assert not np.array_equal(params[0], params[1])


def test_state_dict_round_trip_resumes_identically():
    x = torch.rand(3, 2, 4)
    torch.manual_seed(0)
    model = AnalogRNN(AnalogLSTMCell, 4, 3, rpu_config=noisy_config(), seed=2)
    train_once(model, x)
    state = model.state_dict()
    twin = AnalogRNN(AnalogLSTMCell, 4, 3, rpu_config=noisy_config(), seed=99)
    twin.load_state_dict(state)
    a, b = train_once(model, x), train_once(twin, x)
    torch.testing.assert_close(a[0], b[0], rtol=0, atol=0)
    for wa, wb in zip(a[1], b[1]):
        torch.testing.assert_close(wa, wb, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(num_layers=0), "num_layers"), (dict(dropout=1.5), "dropout"),
    (dict(hidden_size=0), "hidden_size")])
def test_bad_arguments(kwargs, match):
    args = dict(cell=AnalogLSTMCell, input_size=3, hidden_size=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        AnalogRNN(**args)


def test_bad_input_shape_and_dropout_warning():
    model = AnalogRNN(AnalogVanillaRNNCell, 3, 4, rpu_config=SingleRPUConfig(), seed=0)
    with pytest.raises(ValueError, match="seq_len, batch, features"):
        model(torch.rand(2, 3))
    with pytest.warns(UserWarning, match="dropout"):
        AnalogRNN(AnalogVanillaRNNCell, 3, 4, dropout=0.5)
