"""``AnalogSequential`` runs of layers as one autograd step (``rpusim.torch.chain``) against
the modules called one by one (``nn.Sequential.forward``).

Both paths call the same short paths and torch kernels, so everything must agree bit for bit:
outputs, input gradients, the digital parameters' gradients, the analog weights after the
optimizer's steps (their pulsed updates read the stored (x, d) pairs and the tiles' random
streams, which any difference in order or content would change).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import rpusim.torch.chain as chain  # noqa: E402
from rpusim.configs import (ConstantStepDevice, InferenceRPUConfig,  # noqa: E402
                            SingleRPUConfig, SoftBoundsDevice, TorchInferenceRPUConfig,
                            TransferCompound, UnitCellRPUConfig)
from rpusim.torch import (AnalogConv1d, AnalogConv2d, AnalogLinear,  # noqa: E402
                          AnalogSequential, AnalogSGD)

CONFIGS = {
    "constant step": lambda: SingleRPUConfig(device=ConstantStepDevice()),
    "soft bounds": lambda: SingleRPUConfig(device=SoftBoundsDevice()),
    "transfer": lambda: UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[SoftBoundsDevice(), SoftBoundsDevice()])),
    # hardware-aware training (default noisy IO, weight modifiers, remapping): torch's
    # optimizer on the tiles' weights, aihwkit's C++-backed and torch-based tiles
    "inference": InferenceRPUConfig,
    "torch inference": TorchInferenceRPUConfig,
}
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "identity": nn.Identity,
               "relu inplace": lambda: nn.ReLU(inplace=True)}


@pytest.fixture
def chain_calls(monkeypatch):
    """The number of steps of every chain run."""
    calls = []
    forward = chain._ChainFunction.forward

    def counted(ctx, x, steps, *params):
        calls.append(len(steps))
        return forward(ctx, x, steps, *params)

    monkeypatch.setattr(chain._ChainFunction, "forward", staticmethod(counted))
    return calls


def unfused(model: AnalogSequential) -> AnalogSequential:
    model.forward = lambda x: nn.Sequential.forward(model, x)
    return model


def train(model, xs, targets, input_gradient: bool):
    """Two steps of AnalogSGD on a softmax-free squared loss (or NLL after log-softmax);
    returns every output, input gradient and parameter gradient, and the final weights."""
    opt = AnalogSGD(model.parameters(), lr=0.2)
    opt.regroup_param_groups(model)
    records = []
    for x, t in zip(xs, targets):
        x = x.clone().requires_grad_(input_gradient)
        opt.zero_grad()
        y = model(x)
        loss = nn.functional.nll_loss(y, t) if isinstance(model[-1], nn.LogSoftmax) else (
            (y - t.float().unsqueeze(1)) ** 2).sum()
        loss.backward()
        records.append((y.detach().clone(), None if x.grad is None else x.grad.clone(),
                        [None if p.grad is None else p.grad.clone()
                         for p in model.parameters()]))
        opt.step()
    weights = {k: (w.clone(), None if b is None else b.clone())
               for k, (w, b) in model.get_weights().items()}
    return records, weights


def assert_identical(a, b):
    (rec_a, w_a), (rec_b, w_b) = a, b
    for (y1, gx1, gp1), (y2, gx2, gp2) in zip(rec_a, rec_b):
        assert torch.equal(y1, y2)
        assert (gx1 is None) == (gx2 is None)
        if gx1 is not None:
            assert torch.equal(gx1, gx2)
        for p1, p2 in zip(gp1, gp2):
            assert (p1 is None) == (p2 is None)
            if p1 is not None:
                assert torch.equal(p1, p2)
    assert w_a.keys() == w_b.keys()
    for key in w_a:
        assert torch.equal(torch.as_tensor(w_a[key][0]), torch.as_tensor(w_b[key][0])), key


network = st.fixed_dictionaries({
    "conv": st.sampled_from([None, 1, 2]),
    "channels": st.integers(1, 3),
    "kernel": st.integers(1, 3),
    "padding": st.integers(0, 1),
    "stride": st.integers(1, 2),
    "hidden": st.integers(2, 9),
    "classes": st.integers(2, 5),
    "bias": st.booleans(),
    "act1": st.sampled_from(sorted(ACTIVATIONS)),
    "act2": st.sampled_from(sorted(ACTIVATIONS)),
    "head": st.sampled_from(["log_softmax", "softmax", "none"]),
    "config": st.sampled_from(sorted(CONFIGS)),
    "batch": st.integers(1, 4),
    "input_gradient": st.booleans(),
    "seed": st.integers(0, 2**16),
})


def build(spec: dict) -> tuple[AnalogSequential, list, list]:
    torch.manual_seed(spec["seed"])
    config = CONFIGS[spec["config"]]()
    modules, size = [], 6
    shape = (spec["channels"], 6)
    if spec["conv"] == 2:
        shape = (spec["channels"], 6, 5)
    if spec["conv"]:
        conv = AnalogConv1d if spec["conv"] == 1 else AnalogConv2d
        modules += [conv(spec["channels"], 3, spec["kernel"], stride=spec["stride"],
                         padding=spec["padding"], bias=spec["bias"], rpu_config=config),
                    ACTIVATIONS[spec["act1"]]()]
        probe = torch.nn.Sequential(*[m for m in modules if not isinstance(m, nn.ReLU)])
        with torch.no_grad():
            size = probe(torch.zeros(1, *shape)).numel()
    else:
        shape = (6,)
    modules += [nn.Flatten(), AnalogLinear(size, spec["hidden"], bias=spec["bias"],
                                           rpu_config=config),
                ACTIVATIONS[spec["act2"]](),
                AnalogLinear(spec["hidden"], spec["classes"], rpu_config=config)]
    if spec["head"] == "log_softmax":
        modules.append(nn.LogSoftmax(dim=1))
    elif spec["head"] == "softmax":
        modules.append(nn.Softmax(dim=1))
    gen = torch.Generator().manual_seed(spec["seed"] + 1)
    xs = [torch.rand(spec["batch"], *shape, generator=gen) for _ in range(2)]
    targets = [torch.randint(0, spec["classes"], (spec["batch"],), generator=gen)
               for _ in range(2)]
    return AnalogSequential(*modules), xs, targets


@settings(max_examples=40, deadline=None)
@given(spec=network)
def test_chain_is_bit_identical_to_the_modules_one_by_one(spec):
    fused, xs, targets = build(spec)
    calls = []
    forward = chain._ChainFunction.forward
    chain._ChainFunction.forward = staticmethod(
        lambda ctx, x, steps, *p: (calls.append(len(steps)), forward(ctx, x, steps, *p))[1])
    try:
        a = train(fused, xs, targets, spec["input_gradient"])
    finally:
        chain._ChainFunction.forward = staticmethod(forward)
    # every module is known, so one chain of all of them per forward
    assert calls == [len(fused)] * 2
    b = train(unfused(build(spec)[0]), xs, targets, spec["input_gradient"])
    assert_identical(a, b)


def mlp(seed: int = 0, hidden=nn.Sigmoid) -> AnalogSequential:
    torch.manual_seed(seed)
    return AnalogSequential(nn.Flatten(), AnalogLinear(16, 8), hidden(), AnalogLinear(8, 3),
                            nn.LogSoftmax(dim=1))


def data(steps: int = 2):
    gen = torch.Generator().manual_seed(5)
    return ([torch.rand(4, 4, 4, generator=gen) for _ in range(steps)],
            [torch.randint(0, 3, (4,), generator=gen) for _ in range(steps)])


def test_a_hooked_module_splits_the_chain_and_its_hook_runs(chain_calls):
    model = mlp()
    seen = []
    model[2].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    xs, targets = data()
    a = train(model, xs, targets, True)
    # (Flatten, linear) and (linear, LogSoftmax) around the hooked Sigmoid
    assert chain_calls == [2, 2, 2, 2]
    assert seen == [torch.Size([4, 8])] * 2
    assert_identical(a, train(unfused(mlp()), xs, targets, True))


def test_a_hooked_layer_and_an_unknown_module_take_their_own_calls(chain_calls):
    class Scale(nn.Module):
        def forward(self, x):
            return 2 * x

    def model():
        m = mlp(hidden=Scale)
        m[1].register_forward_pre_hook(lambda module, args: None)
        return m
    xs, targets = data()
    a = train(model(), xs, targets, False)
    # Flatten alone and Scale break every run: only (linear, LogSoftmax) remains
    assert chain_calls == [2, 2]
    assert_identical(a, train(unfused(model()), xs, targets, False))


def test_a_global_hook_turns_the_chain_off(chain_calls):
    handle = torch.nn.modules.module.register_module_forward_hook(lambda *args: None)
    try:
        mlp()(torch.rand(2, 16))
    finally:
        handle.remove()
    assert chain_calls == []


def test_evaluation_without_gradients_matches(chain_calls):
    xs, _ = data(1)
    a, b = mlp(), unfused(mlp())
    a.eval()
    b.eval()
    with torch.no_grad():
        assert torch.equal(a(xs[0]), b(xs[0]))
    assert chain_calls == [5]


def test_bad_inputs_get_the_layers_own_errors():
    model = mlp()
    with pytest.raises(ValueError, match="last dimension 16"):
        model(torch.rand(2, 15))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.ones(2, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="expects"):
        AnalogSequential(AnalogConv2d(2, 3, 2), nn.Flatten())(torch.rand(1, 3, 4, 4))


def test_a_split_layer_and_non_zero_padding_mode_leave_the_chain(chain_calls):
    from rpusim.configs import MappingParameter
    torch.manual_seed(0)
    split = SingleRPUConfig(mapping=MappingParameter(max_input_size=5))
    model = AnalogSequential(AnalogConv2d(1, 2, 3, padding=1, padding_mode="reflect"),
                             nn.Tanh(), nn.Flatten(), AnalogLinear(32, 4, rpu_config=split),
                             nn.Tanh(), AnalogLinear(4, 2))
    model(torch.rand(3, 1, 4, 4))
    # only (Tanh, Flatten) between the two refused layers, no analog step: not a chain;
    # then (Tanh, linear)
    assert chain_calls == [2]


def test_an_inplace_module_first_in_a_run_acts_on_the_input_as_torch(chain_calls):
    torch.manual_seed(0)
    model = AnalogSequential(nn.ReLU(inplace=True), AnalogLinear(3, 2), nn.ReLU(inplace=True),
                             AnalogLinear(2, 2))
    x = torch.tensor([[-1.0, 0.5, 2.0]])
    model(x)
    # the first ReLU ran as a module, on x itself; the second joined the chain
    assert torch.equal(x, torch.tensor([[0.0, 0.5, 2.0]]))
    assert chain_calls == [3]


def test_a_kept_run_is_taken_again_without_finding_it(monkeypatch, chain_calls):
    found = []
    steps = chain._steps
    monkeypatch.setattr(chain, "_steps", lambda *args: (found.append(args[1]), steps(*args))[1])
    model = mlp()
    xs, targets = data(3)
    train(model, xs, targets, False)
    assert found == [0]  # found once, for the first input shape
    model(torch.rand(2, 4, 4))
    assert found == [0, 0]  # a new batch size
    assert chain_calls == [5] * 4


def _mutations():
    """Changes to a model between two training steps that change the chain's runs."""
    def hook(m):  # (a hook's result replaces the output)
        m[2].register_forward_hook(lambda module, args, out: 2 * out)

    def replace(m):
        m[2] = nn.Tanh()

    def drop_bias(m):
        m[3].bias = None

    def new_bias(m):
        m[1].bias = nn.Parameter(torch.full((8,), 0.25))

    def softmax_dim(m):
        m[4].dim = 0

    def weight_scale(m):  # the layer leaves the short path (a weight scale)
        m[1].set_weights(*m[1].get_weights(), weight_scaling_omega=1.0)

    def layer_hook(m):
        m[3].analog_module.register_forward_pre_hook(lambda module, args: (args[0] / 2,))

    def append(m):
        m.append(nn.Tanh())

    def bias_data(m):  # the same parameter on new storage (the kept bias array follows it)
        m[1].bias.data = torch.full((8,), 0.5)

    def bias_in_place(m):
        with torch.no_grad():
            m[3].bias.fill_(-0.25)
    return [hook, replace, drop_bias, new_bias, softmax_dim, weight_scale, layer_hook, append,
            bias_data, bias_in_place]


@pytest.mark.parametrize("mutate", _mutations(), ids=lambda f: f.__name__)
def test_a_kept_run_follows_changes_of_the_model(mutate):
    xs, targets = data(2)

    def run(model):
        opt = AnalogSGD(model.parameters(), lr=0.2)
        opt.regroup_param_groups(model)
        out = []
        for k, (x, t) in enumerate(zip(xs, targets)):
            if k == 1:
                mutate(model)
                opt = AnalogSGD(model.parameters(), lr=0.2)
                opt.regroup_param_groups(model)
            opt.zero_grad()
            y = model(x)
            y.sum().backward()
            out.append(y.detach().clone())
            opt.step()
        return out, [w.clone() for w, _ in model.get_weights().values()]
    (ya, wa), (yb, wb) = run(mlp()), run(unfused(mlp()))
    for a, b in zip(ya + wa, yb + wb):
        assert torch.equal(a, b)


def test_a_kept_convolution_run_follows_its_stride():
    def model():
        torch.manual_seed(3)
        return AnalogSequential(AnalogConv2d(2, 3, 2), nn.Tanh(), AnalogConv2d(3, 2, 2),
                                nn.Flatten(), AnalogLinear(50, 2))
    a, b = model(), unfused(model())
    x = torch.rand(2, 2, 7, 7)
    assert torch.equal(a(x), b(x))
    for m in (a, b):
        m[0].stride = (2, 2)
        # the linear layer now gets 2 x 2 x 2 inputs
        with pytest.raises(ValueError, match="last dimension 50"):
            m(x)
        m[4] = AnalogLinear(8, 2)
    b[4].load_state_dict(a[4].state_dict())
    assert torch.equal(a(x), b(x))


def test_a_model_copies_and_pickles_after_its_runs_were_kept():
    import copy
    import pickle
    model = mlp()
    x = torch.rand(4, 4, 4)
    model(x)
    twins = (copy.deepcopy(model), pickle.loads(pickle.dumps(model)))
    expected = model(x)
    for twin in twins:
        assert "_chain_runs" not in twin.__dict__
        assert torch.equal(twin(x), expected)
        # the twin's run acts on its own layers
        assert all(c[0] is m for c, m in zip(twin._chain_runs[(0, x.shape, x.dtype)].checks,
                                             twin))


_FROZEN = [(), ("1.bias",), ("3.bias",), ("1.bias", "3.bias"), ("1.analog_module.analog_ctx",),
           ("1.bias", "1.analog_module.analog_ctx"),
           ("1.bias", "3.bias", "1.analog_module.analog_ctx", "3.analog_module.analog_ctx")]


# (everything frozen and an input without gradient: nothing to differentiate, on both paths)
@pytest.mark.parametrize("frozen, input_gradient",
                         [(f, g) for f in _FROZEN for g in (False, True)
                          if g or len(f) < 4])
def test_frozen_parameters_train_as_the_modules_one_by_one(frozen, input_gradient):
    """The chain leaves an analog layer's context out of its inputs where the layer's bias
    needs a gradient (its backward runs all the same): with any of the biases and contexts
    frozen, it trains bit-identically to the modules one by one, and the first layer gets its
    pulsed update (its weights move) exactly where its backward runs: where its input, its
    context or its bias needs a gradient."""
    xs, targets = data()
    results, moved = [], []
    for build_model in (mlp, lambda: unfused(mlp())):
        model = build_model()
        params = dict(model.named_parameters())
        for name in frozen:
            params[name].requires_grad_(False)
        before = {k: w.clone() for k, (w, _) in model.get_weights().items()}
        results.append(train(model, xs, targets, input_gradient))
        moved.append({k: not torch.equal(before[k], results[-1][1][k][0]) for k in before})
    assert_identical(*results)
    assert moved[0] == moved[1]
    first = sorted(moved[0])[0]
    assert moved[0][first] == (input_gradient or "1.bias" not in frozen
                               or "1.analog_module.analog_ctx" not in frozen)


@pytest.mark.parametrize("change", ["data", "in place", "new parameter"])
def test_the_kept_bias_array_follows_the_bias(change):
    """A layer's short path keeps a NumPy view of its digital bias between steps: after the
    bias gets new storage (``bias.data = ...``), new values in place or a new parameter, its
    outputs are those of a twin whose kept view was dropped before the same call."""
    xs, _ = data(2)
    outputs = []
    for drop in (False, True):
        model = mlp()
        model(xs[0])
        layer = model[1]
        if change == "data":
            layer.bias.data = torch.full((8,), 0.5)
        elif change == "in place":
            with torch.no_grad():
                layer.bias.fill_(-0.25)
        else:
            layer.bias = nn.Parameter(torch.full((8,), 0.75))
        if drop:
            layer.analog_module.__dict__.pop("_bias_view", None)
        outputs.append(model(xs[1]).detach())
    assert torch.equal(outputs[0], outputs[1])


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("input_gradient", [False, True])
def test_a_flatten_before_a_linear_layer_is_left_to_the_layer(layout, input_gradient):
    """A Flatten right before a linear layer leaves its input as it is, and the layer's short
    path reshapes the input's array (``_DeferredFlatten``): outputs, input gradients and the
    trained weights are those of the modules one by one, also for an input that is not
    contiguous (reshaped as a copy, as torch's flatten does)."""
    xs, targets = data()
    if layout == "transposed":
        xs = [x.transpose(1, 2) for x in xs]
    model = mlp()
    model(xs[0])
    assert [type(s).__name__ for r in model.__dict__["_chain_runs"].values()
            for s in r.steps][:2] == ["_DeferredFlatten", "AnalogStep"]
    assert_identical(train(mlp(), xs, targets, input_gradient),
                     train(unfused(mlp()), xs, targets, input_gradient))
