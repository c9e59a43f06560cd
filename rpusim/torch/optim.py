"""``AnalogSGD``: SGD for digital parameters, pulsed updates for analog tiles (aihwkit's order)."""

from __future__ import annotations

import torch

from rpusim.torch.base import AnalogContext

__all__ = ["AnalogSGD"]


class AnalogSGD(torch.optim.SGD):
    """SGD that trains analog layers by pulses, as aihwkit's ``AnalogSGD``.

    ``step()`` first gives the digital parameters a plain SGD step; then every tile grid found
    through its :class:`~rpusim.torch.base.AnalogContext` gets one ``update`` per tile with all
    (x, d) pairs its backward passes stored, concatenated in backward order, at the learning
    rate of the context's parameter group (pairs are dropped at learning rate 0); finally
    every grid runs ``post_update_step()`` (diffusion, decay), learning rate 0 included.
    Parameters are the usual ``torch.optim.SGD`` ones.
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
    def step(self, closure=None):
        """One optimizer step (see the class description); returns the closure's loss."""
        loss = super().step(closure)
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
