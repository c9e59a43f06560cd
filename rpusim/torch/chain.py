"""A run of layers of an ``AnalogSequential`` as one autograd step.

A small network trained on a CPU spends most of its time not in the analog work but in
per-module overhead: each module call, autograd node and Python backward costs microseconds,
and an analog layer is a Python autograd function. ``AnalogSequential`` therefore runs each
maximal run of its children that are analog layers on their short path (one plain tile,
:meth:`~rpusim.torch.mapping.TileGrid.is_plain`) or stateless torch modules it knows
(``Flatten``, ``Identity``, ``Sigmoid``, ``Tanh``, ``ReLU``, ``Softmax``, ``LogSoftmax``) as
one autograd function. Its forward calls the same short paths and torch functions as the
modules would, and its backward the same backward functions torch's autograd calls for them,
in the same order: results are bit-identical to calling the modules one by one. Anything else
(hooks, other modules, inputs a layer would refuse, tracing) takes the modules' own calls,
which also raise their errors.

A container keeps the runs it found for each input shape and dtype, and takes a kept run
again only while everything that decided it holds: the same modules in the same places,
none hooked, the same attributes of the torch modules whose steps read any, and each analog
layer's own test that its step is still the one it would make (``chain_step_current``).
Finding a run anew took about a fifteenth of a small MLP's training step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules import module as _module

from rpusim.torch.mapping import TileGrid, _has_hooks, apply_function, context_input

__all__ = ["AnalogStep", "sequential_forward"]

_aten = torch.ops.aten


class AnalogStep:
    """An analog layer's short path in a chain: ``unit`` has ``short_forward(x, bias)`` and
    ``short_backward(saved, grad_y, input_gradient, bias_gradient, weight_gradient)``;
    ``params`` are the tensors whose gradients the step returns (the layer's analog context,
    digital bias and weight parameter, or None); ``pad`` the zero padding applied before the
    unit (F.pad's argument) with the slices that undo it on the gradient, or None; ``token``
    whatever else the layer's ``chain_step_current`` compares (e.g. a convolution's
    geometry)."""

    __slots__ = ("unit", "params", "pad", "unpad", "token", "flat")

    def __init__(self, unit, params: tuple, pad=None, unpad=None, token=None):
        self.unit, self.params, self.pad, self.unpad = unit, params, pad, unpad
        self.token = token
        # the 2-d shape a layer's short path reshapes its input's array to, where a Flatten
        # step before it leaves its input as it is (see _steps), else None
        self.flat = None

    def holds(self, layer, grid, dtype: torch.dtype) -> bool:
        """Whether ``grid`` (``layer``'s grid now) is still plain for ``dtype`` and this step's
        parameters are still its analog context, ``layer``'s bias and its weight binding (the
        common part of the layers' ``chain_step_current``)."""
        params = self.params
        bias = layer._parameters.get("bias", self)  # (missing: never this step's bias)
        return (grid is not None and bias is params[1]
                and grid._parameters.get("analog_ctx") is params[0]
                and grid.is_plain_for(dtype, bias) and grid.plain_weight() is params[2])

    def forward(self, t: torch.Tensor):
        if self.pad is not None:
            t = torch.nn.functional.pad(t, self.pad)
        if self.flat is not None:
            return self.unit.short_forward(t, self.params[1], self.flat)
        return self.unit.short_forward(t, self.params[1])

    def backward(self, saved, grad, input_gradient: bool, needs: tuple):
        grad_x, grad_bias, grad_weight = self.unit.short_backward(
            saved, grad, input_gradient, needs[1], needs[2])
        if grad_x is not None and self.unpad is not None:
            grad_x = grad_x[self.unpad]
        return grad_x, (None, grad_bias, grad_weight)


class _Elementwise:
    """A stateless module whose backward reads its output (as torch's autograd does)."""

    __slots__ = ("fn", "grad_fn")
    params = ()

    def __init__(self, fn, grad_fn):
        self.fn, self.grad_fn = fn, grad_fn

    def forward(self, t):
        y = self.fn(t)
        return y, y

    def backward(self, y, grad, input_gradient, needs):
        return (self.grad_fn(grad, y) if input_gradient else None), ()


class _Flatten:
    __slots__ = ("start", "end")
    params = ()

    def __init__(self, start: int, end: int):
        self.start, self.end = start, end

    def forward(self, t):
        return t.flatten(self.start, self.end), t.shape

    def backward(self, shape, grad, input_gradient, needs):
        return (grad.reshape(shape) if input_gradient else None), ()


class _DeferredFlatten:
    """A Flatten step whose next step, a linear layer's short path, flattens the input's NumPy
    array itself (a view, as torch's flatten of a contiguous tensor; a copy of another): the
    torch call cost about 1 us alone, 5 us of a training step. Its backward reshapes the
    gradient to the input's ``shape``, as :class:`_Flatten`'s."""

    __slots__ = ("shape",)
    params = ()

    def __init__(self, shape: tuple):
        self.shape = shape

    def forward(self, t):
        return t, None

    def backward(self, saved, grad, input_gradient, needs):
        return (grad.reshape(self.shape) if input_gradient else None), ()


class _Identity:
    __slots__ = ()
    params = ()

    def forward(self, t):
        return t, None

    def backward(self, saved, grad, input_gradient, needs):
        return (grad if input_gradient else None), ()


_IDENTITY = _Identity()


# the backward functions of (log-)softmax: torch's own bindings of the aten operators where it
# has them (an operator packet's Python dispatch cost about 2 us more a call)
_LOG_SOFTMAX_BACKWARD = getattr(torch, "_log_softmax_backward_data",
                                _aten._log_softmax_backward_data)
_SOFTMAX_BACKWARD = getattr(torch, "_softmax_backward_data", _aten._softmax_backward_data)


def _softmax_step(module, log: bool, ndim: int):
    dim = module.dim
    if dim is None or not -ndim <= dim < ndim:
        return None  # torch's implicit-dimension warning or error: the module's own call
    if log:
        return _Elementwise(lambda t: t.log_softmax(dim),
                            lambda g, y: _LOG_SOFTMAX_BACKWARD(g, y, dim, y.dtype))
    return _Elementwise(lambda t: t.softmax(dim),
                        lambda g, y: _SOFTMAX_BACKWARD(g, y, dim, y.dtype))


def _operator(packet):
    """An aten operator's callable with the fewest Python calls: its default overload's C++
    binding where torch exposes it (the packet goes through two Python calls to it, about
    0.5 us), else the packet."""
    return getattr(getattr(packet, "default", None), "_op", packet)


_THRESHOLD_BACKWARD = _operator(_aten.threshold_backward)
_SIGMOID = _Elementwise(torch.sigmoid, _operator(_aten.sigmoid_backward))
_TANH = _Elementwise(torch.tanh, _operator(_aten.tanh_backward))
_RELU = _Elementwise(torch.relu, lambda g, y: _THRESHOLD_BACKWARD(g, y, 0))


def _flatten_step(module: nn.Flatten, shape: tuple):
    ndim = len(shape)
    start = module.start_dim + ndim if module.start_dim < 0 else module.start_dim
    end = module.end_dim + ndim if module.end_dim < 0 else module.end_dim
    if not 0 <= start <= end < ndim:
        return None
    size = 1
    for n in shape[start:end + 1]:
        size *= n
    return _Flatten(start, end), (*shape[:start], size, *shape[end + 1:])


def _softmax_or_none(module, shape, log: bool):
    step = _softmax_step(module, log, len(shape))
    return None if step is None else (step, shape)


# the known stateless torch modules (exact types: a subclass may override forward): the
# step for an input of ``shape`` and the output's shape, or None
_TORCH_STEPS = {
    nn.Sigmoid: lambda module, shape: (_SIGMOID, shape),
    nn.Tanh: lambda module, shape: (_TANH, shape),
    # also for inplace=True (not first in a run: see _steps): the same values, and nothing
    # else holds the chain's intermediates
    nn.ReLU: lambda module, shape: (_RELU, shape),
    nn.Identity: lambda module, shape: (_IDENTITY, shape),
    nn.Flatten: _flatten_step,
    nn.LogSoftmax: lambda module, shape: _softmax_or_none(module, shape, True),
    nn.Softmax: lambda module, shape: _softmax_or_none(module, shape, False),
}


class _ChainFunction(torch.autograd.Function):
    """Forward and backward of a list of steps; the inputs after ``steps`` are the steps'
    ``params``, in order."""

    @staticmethod
    def forward(ctx, x, steps, *params):
        saved = []
        t = x
        for step in steps:
            t, s = step.forward(t)
            saved.append(s)
        ctx.steps, ctx.saved = steps, saved
        # an undefined gradient stays None (see the note in rpusim.torch.mapping)
        ctx.set_materialize_grads(False)
        return t

    @staticmethod
    def backward(ctx, grad):
        needs = ctx.needs_input_grad
        steps, saved = ctx.steps, ctx.saved
        ctx.saved = None
        if grad is None:
            return (None,) * len(needs)
        # a step's input needs a gradient where the chain's input or an earlier step's
        # parameter does (as each module's input would in autograd)
        input_needs = [needs[0]]
        pos = 2
        for step in steps[:-1]:
            n = len(step.params)
            input_needs.append(input_needs[-1] or any(needs[pos:pos + n]))
            pos += n
        grads = [None] * (len(needs) - 2)
        pos = len(needs)
        for k in range(len(steps) - 1, -1, -1):
            step = steps[k]
            pos -= len(step.params)
            grad, param_grads = step.backward(saved[k], grad, input_needs[k],
                                              needs[pos:pos + len(step.params)])
            grads[pos - 2:pos - 2 + len(step.params)] = param_grads
            if grad is None:
                break  # nothing before this step needs a gradient
        return (grad, None, *grads)


# the attributes that the steps of these modules read: a kept run holds while they keep
# their values (``inplace``: a ReLU may not start a run)
_TORCH_STATE = {
    nn.Flatten: lambda module: (module.start_dim, module.end_dim),
    nn.LogSoftmax: lambda module: module.dim,
    nn.Softmax: lambda module: module.dim,
    nn.ReLU: lambda module: module.inplace,
}


_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)
_is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", lambda: False)


def _chain_allowed(x) -> bool:
    return (isinstance(x, torch.Tensor) and x.is_cpu and x.is_floating_point()
            and not torch.jit.is_scripting() and torch._C._get_tracing_state() is None
            and not _is_compiling()
            and _functorch_active is not None and not _functorch_active()
            and not (_module._global_forward_hooks or _module._global_forward_pre_hooks
                     or _module._global_backward_hooks
                     or _module._global_backward_pre_hooks))


class _Run:
    """A run of steps from a module of a container for one input shape and dtype (see
    :func:`_steps`), with what decided it: ``modules`` (the container's children then),
    ``checks`` (per step: its module, the module's type, its ``_TORCH_STATE`` or None and its
    value, the analog step or None)."""

    __slots__ = ("steps", "stop", "analog", "modules", "checks")

    def __init__(self, steps: list, stop: int, analog: int, modules: list, checks: list):
        self.steps, self.stop, self.analog = steps, stop, analog
        self.modules, self.checks = modules, checks

    def current(self, modules: list, dtype: torch.dtype) -> bool:
        """Whether :func:`_steps` would find this run again (global hooks and the input's
        kind are tested before, by :func:`_chain_allowed`)."""
        # a list compares its entries by identity first: modules define no equality
        if modules != self.modules:
            return False
        for module, kind, state, value, analog in self.checks:
            if (type(module) is not kind or module._forward_hooks or module._forward_pre_hooks
                    or module._backward_hooks or module._backward_pre_hooks):
                return False
            if analog is not None:
                if not module.chain_step_current(analog, dtype):
                    return False
            elif state is not None and state(module) != value:
                return False
        return True


def _steps(modules: list, start: int, x: torch.Tensor) -> _Run:
    """The longest run of steps from ``modules[start]`` for input ``x`` (its ``stop`` is the
    index after the run). Analog layers make theirs with ``chain_step``."""
    shape, dtype = tuple(x.shape), x.dtype
    steps, checks, analog = [], [], 0
    for i in range(start, len(modules)):
        module = modules[i]
        kind = type(module)
        make = _TORCH_STEPS.get(kind)
        if make is not None:
            found = make(module, shape)
        else:
            chain_step = getattr(kind, "chain_step", None)
            found = None if chain_step is None else chain_step(module, shape, dtype)
        # (``inplace`` is an instance attribute where a module has it: no failing lookup)
        if found is None or _has_hooks(module) or (not steps and module.__dict__.get("inplace",
                                                                                  False)):
            # an in-place module first in a run would act on a tensor from outside the chain
            return _Run(steps, i, analog, modules, checks)
        step, out_shape = found
        is_analog = type(step) is AnalogStep
        analog += is_analog
        if (is_analog and steps and type(steps[-1]) is _Flatten and step.pad is None
                and type(step.unit) is TileGrid):
            steps[-1] = _DeferredFlatten(flatten_input)
            step.flat = shape
        flatten_input = shape
        shape = out_shape
        steps.append(step)
        state = None if is_analog else _TORCH_STATE.get(kind)
        checks.append((module, kind, state, None if state is None else state(module),
                       step if is_analog else None))
    return _Run(steps, len(modules), analog, modules, checks)


# kept runs per container, beyond which they are dropped (inputs of ever new shapes)
_KEPT_RUNS = 16


def _run(container: nn.Sequential, modules: list, start: int, x: torch.Tensor) -> _Run:
    """:func:`_steps`, or the run kept from an earlier call if it still holds."""
    runs = container.__dict__.get("_chain_runs")
    key = (start, x.shape, x.dtype)
    if runs is not None:
        run = runs.get(key)
        if run is not None and run.current(modules, x.dtype):
            return run
    else:
        runs = container.__dict__["_chain_runs"] = {}
    if len(runs) >= _KEPT_RUNS:
        runs.clear()
    run = runs[key] = _steps(modules, start, x)
    return run


def _inputs(steps: list) -> list:
    """The steps' parameters as the chain's inputs, an analog step's context left out where
    its bias or weight parameter needs a gradient (:func:`~rpusim.torch.mapping.context_input`)."""
    out = []
    for step in steps:
        params = step.params
        if type(step) is AnalogStep:
            params = (context_input(*params), params[1], params[2])
        out += params
    return out


def sequential_forward(container: nn.Sequential, x):
    """``nn.Sequential.forward`` with runs of known modules as one autograd step each (see
    the module docstring); ``None`` when ``x`` cannot take that path at all."""
    if not _chain_allowed(x):
        return None
    modules = list(container._modules.values())
    i = 0
    while i < len(modules):
        run = _run(container, modules, i, x)
        steps = run.steps
        if run.analog and len(steps) > 1:
            x = apply_function(_ChainFunction, x, steps, *_inputs(steps))
            i = run.stop
        else:
            x = modules[i](x)
            i += 1
            if not _chain_allowed(x):
                for module in modules[i:]:
                    x = module(x)
                return x
    return x
