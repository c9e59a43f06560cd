"""Analog optimizers: a torch optimizer for the digital parameters, pulsed tile updates for the
analog layers, in aihwkit's order (aihwkit's ``AnalogSGD``, ``AnalogAdam``, ``AnalogOptimizer``)."""

from __future__ import annotations

from itertools import chain
from types import new_class

import torch
from torch.optim import optimizer as _torch_optimizer

from rpusim.torch.base import AnalogContext

__all__ = ["AnalogOptimizerMixin", "AnalogOptimizer", "AnalogSGD", "AnalogAdam"]

# torch wraps every optimizer class's ``step`` in a function that runs the optimizer hooks inside
# a profiler range (``Optimizer.profile_hook_step``), marking it ``hooked``. The range costs
# about 6 us even when nothing profiles (a tenth of a small layer's optimizer step), so the
# analog step runs the same hooks itself and opens the range only while a profiler records.
# Where a torch version lacks these names, torch's wrapper is kept.
_HOOK_TABLES = (getattr(_torch_optimizer, "_global_optimizer_pre_hooks", None),
                getattr(_torch_optimizer, "_global_optimizer_post_hooks", None))
_OWN_HOOKS = all(t is not None for t in _HOOK_TABLES)
_profiling = getattr(getattr(torch._C, "_autograd", None), "_profiler_enabled", None)


def _unhooked(step):
    """A torch optimizer class's ``step`` without torch's hook wrapper (whose hooks the analog
    step has run already)."""
    return step.__wrapped__ if getattr(step, "hooked", False) else step


_SGD_STEP = _unhooked(torch.optim.SGD.step)


class AnalogOptimizerMixin:
    """What makes a torch optimizer analog (mixed in before the optimizer class).

    ``step()`` first runs the optimizer on the digital parameters; then every tile grid found
    through its :class:`~rpusim.torch.base.AnalogContext` gets one ``update`` per tile with all
    (x, d) pairs its backward passes stored, concatenated in backward order, at the learning
    rate of the context's parameter group (pairs are dropped at learning rate 0); finally every
    grid runs ``post_update_step()`` (diffusion, decay), learning rate 0 included. The analog
    update is always plain pulsed SGD, whatever the digital optimizer (as in aihwkit).
    """

    def regroup_param_groups(self, *_args) -> None:
        """Give every analog context a parameter group of its own (as aihwkit), so that a
        learning-rate schedule can treat analog layers separately."""
        analog = []
        for group in self.param_groups:
            analog += [p for p in group["params"] if isinstance(p, AnalogContext)]
            group["params"] = [p for p in group["params"] if not isinstance(p, AnalogContext)]
        self.param_groups = [g for g in self.param_groups if g["params"]]
        for ctx in analog:
            self.add_param_group({"params": [ctx]})

    def set_learning_rate(self, learning_rate: float = 0.1) -> None:
        """Set the learning rate of every parameter group."""
        for group in self.param_groups:
            group["lr"] = learning_rate

    def step(self, closure=None, **kwargs):
        """One optimizer step (see the class description); returns the closure's loss.

        The optimizer hooks (``register_step_pre_hook`` / ``register_step_post_hook`` and the
        global ones) run once, around the whole step, as for any torch optimizer."""
        if not _OWN_HOOKS or type(self).step is not AnalogOptimizerMixin.step:
            # torch's wrapper of a subclass's own step has run the hooks
            return self._analog_step(closure, **kwargs)
        args = (self,) if closure is None else (self, closure)
        if _profiling is None or _profiling():
            with torch.autograd.profiler.record_function(
                    f"Optimizer.step#{type(self).__name__}.step"):
                return self._hooked_step(args, kwargs)
        return self._hooked_step(args, kwargs)

    step.hooked = _OWN_HOOKS  # torch leaves a step marked hooked as it is

    def _hooked_step(self, args: tuple, kwargs: dict):
        """The step with the optimizer hooks around it (see :meth:`step`)."""
        for pre_hook in chain(_HOOK_TABLES[0].values(), self._optimizer_step_pre_hooks.values()):
            result = pre_hook(self, args, kwargs)
            if result is not None:
                if not (isinstance(result, tuple) and len(result) == 2):
                    raise RuntimeError(f"an optimizer step pre-hook must return None or a "
                                       f"tuple (new_args, new_kwargs), got {result!r}")
                args, kwargs = result
        out = AnalogOptimizerMixin._analog_step(*args, **kwargs)
        self._optimizer_step_code()
        for post_hook in chain(self._optimizer_step_post_hooks.values(),
                               _HOOK_TABLES[1].values()):
            post_hook(self, args, kwargs)
        return out

    def _analog_step(self, closure=None, **kwargs):
        # torch.no_grad() as a decorator makes about ten Python calls a step
        enabled = torch.is_grad_enabled()
        torch._C._set_grad_enabled(False)
        try:
            return self._analog_step_no_grad(closure, **kwargs)
        finally:
            torch._C._set_grad_enabled(enabled)

    def _analog_step_no_grad(self, closure=None, **kwargs):
        groups = self.param_groups
        # the groups of analog contexts alone have nothing for the digital optimizer (their
        # contexts never get a gradient); it would still walk each of them
        digital = [g for g in groups if not _analog_only(g)]
        self.param_groups = digital
        try:
            loss = self._digital_step(closure, **kwargs)
        finally:
            self.param_groups = groups
        grids = []
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                # (a Parameter's isinstance runs its metaclass's Python check)
                if type(p) is not AnalogContext and (type(p) is torch.nn.Parameter
                                                     or not isinstance(p, AnalogContext)):
                    continue
                grid = p.analog_module
                grids.append(grid)
                if lr == 0.0:
                    grid.drop_pending()
                elif grid.has_pending():
                    grid.update(lr)
        for grid in grids:
            grid.post_update_step()
        return loss

    def _digital_step(self, closure=None, **kwargs):
        """The digital optimizer's step on ``self.param_groups`` (the digital groups), without
        its hook wrapper. Plain SGD (no momentum, weight decay, ``maximize``, ``foreach``,
        ``fused`` or ``differentiable``, a float learning rate) is done here with torch's own
        update ``p.add_(grad, alpha=-lr)``, the same operation and bits: torch's step costs
        about 10 us more per call in its group bookkeeping."""
        step = _unhooked(super().step.__func__)
        if closure is None and not kwargs and step is _SGD_STEP and _is_plain_sgd(self):
            for group in self.param_groups:
                lr = group["lr"]
                for p in group["params"]:
                    if p.grad is not None:
                        p.add_(p.grad, alpha=-lr)
            return None
        return step(self, closure, **kwargs)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (``torch.optim.Optimizer.zero_grad``); with
        ``set_to_none`` and no profiler recording, without torch's profiler range (about 6 us
        a call)."""
        if not set_to_none or _profiling is None or _profiling():
            super().zero_grad(set_to_none)
            return
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None


def _is_plain_sgd(opt) -> bool:
    """Whether torch's SGD step on ``opt`` makes every group's update ``p -= lr * grad`` for
    every parameter with a gradient."""
    if getattr(opt, "grad_scale", None) is not None or getattr(opt, "found_inf", None) is not None:
        return False
    for group in opt.param_groups:
        if (group.get("momentum", 0) != 0 or group.get("weight_decay", 0) != 0
                or group.get("maximize", False) or group.get("foreach") or group.get("fused")
                or group.get("differentiable", False)
                or not isinstance(group["lr"], (int, float))):
            return False
    return True


def _analog_only(group: dict) -> bool:
    params = group["params"]
    return len(params) == 1 and type(params[0]) is AnalogContext


class AnalogOptimizer(AnalogOptimizerMixin, torch.optim.Optimizer):
    """Any torch optimizer made analog: ``AnalogOptimizer(torch.optim.Adam, params, lr=...)``
    is an instance of a subclass of both (see :class:`AnalogOptimizerMixin`)."""

    SUBCLASSES: dict = {}

    def __new__(cls, optimizer_cls: type, *_args, **_kwargs):
        if not (isinstance(optimizer_cls, type)
                and issubclass(optimizer_cls, torch.optim.Optimizer)):
            raise TypeError(f"optimizer_cls must be a torch.optim.Optimizer class, got "
                            f"{optimizer_cls!r}")
        if optimizer_cls not in cls.SUBCLASSES:
            cls.SUBCLASSES[optimizer_cls] = new_class(
                f"{cls.__name__}{optimizer_cls.__name__}", (cls, optimizer_cls), {})
        return super().__new__(cls.SUBCLASSES[optimizer_cls])

    def __init__(self, optimizer_cls: type, *args, **kwargs):
        super().__init__(*args, **kwargs)


class AnalogSGD(AnalogOptimizerMixin, torch.optim.SGD):
    """``torch.optim.SGD`` for the digital parameters, pulsed updates for the analog layers
    (aihwkit's ``AnalogSGD``; see :class:`AnalogOptimizerMixin`)."""


class AnalogAdam(AnalogOptimizerMixin, torch.optim.Adam):
    """``torch.optim.Adam`` for the digital parameters, pulsed SGD updates for the analog
    layers (aihwkit's ``AnalogAdam``; see :class:`AnalogOptimizerMixin`)."""
