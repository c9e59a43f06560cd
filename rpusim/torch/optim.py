"""Analog optimizers: a torch optimizer for the digital parameters, pulsed tile updates for the
analog layers, in aihwkit's order (aihwkit's ``AnalogSGD``, ``AnalogAdam``, ``AnalogOptimizer``)."""

from __future__ import annotations

from types import new_class

import torch

from rpusim.torch.base import AnalogContext

__all__ = ["AnalogOptimizerMixin", "AnalogOptimizer", "AnalogSGD", "AnalogAdam"]


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

    @torch.no_grad()
    def step(self, closure=None, **kwargs):
        """One optimizer step (see the class description); returns the closure's loss."""
        groups = self.param_groups
        # the groups of analog contexts alone have nothing for the digital optimizer (their
        # contexts never get a gradient); it would still walk each of them
        digital = [g for g in groups if not _analog_only(g)]
        if len(digital) == len(groups):
            loss = super().step(closure, **kwargs)
        else:
            self.param_groups = digital
            try:
                loss = super().step(closure, **kwargs)
            finally:
                self.param_groups = groups
        grids = []
        for group in self.param_groups:
            lr = float(group["lr"])
            for p in group["params"]:
                if not isinstance(p, AnalogContext):
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
