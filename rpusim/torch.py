"""PyTorch adapter (optional extra ``rpusim[torch]``): analog layers and their optimizer.

``AnalogLinear`` runs its forward and backward through an :class:`~rpusim.AnalogTile`; the weight
gradient is not a tensor gradient but the pair (x, d) of every forward/backward, which
``AnalogSGD.step`` hands to ``tile.update`` — as aihwkit's layers and ``AnalogSGD`` do. The
core of rpusim never imports this module.
"""

from __future__ import annotations

import weakref

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as err:  # pragma: no cover - exercised only without torch
    raise ImportError("rpusim.torch needs PyTorch: pip install 'rpusim[torch]' "
                      "(or pip install torch)") from err

from rpusim.configs.enums import AnalogMVType
from rpusim.tile import AnalogTile

__all__ = ["AnalogLinear", "AnalogSGD"]


class _AnalogFunction(torch.autograd.Function):
    """Forward/backward through the tile; records (x, d) for the analog update."""

    @staticmethod
    def forward(ctx, analog_ctx, x, layer):
        ctx.layer = layer
        x_np = x.detach().cpu().numpy()
        y_np = layer.analog_tile.forward(x_np, is_test=not layer.training)
        ctx.x_np = x_np
        ctx.mask = layer._saturation_mask(y_np)
        ctx.in_dtype = x.dtype
        return torch.from_numpy(np.ascontiguousarray(y_np)).to(dtype=x.dtype, device=x.device)

    @staticmethod
    def backward(ctx, grad_y):
        layer = ctx.layer
        d_np = grad_y.detach().cpu().numpy().astype(layer.analog_tile.dtype, copy=True)
        # the update uses the unmasked gradient; only the backward MVM sees the mask
        layer._pending.append((ctx.x_np, d_np.copy()))
        if ctx.mask is not None:
            d_np[ctx.mask] = 0
        grad_x = layer.analog_tile.backward(d_np)
        grad_ctx = torch.zeros(0, dtype=grad_y.dtype)
        return grad_ctx, torch.from_numpy(np.ascontiguousarray(grad_x)).to(
            dtype=ctx.in_dtype, device=grad_y.device), None


class AnalogLinear(nn.Module):
    """A linear layer whose weights live on an analog tile.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Add a bias. It is digital (a torch parameter) by default, as aihwkit's
        ``mapping.digital_bias``; with ``digital_bias=False`` it is an extra analog column
        whose input is the constant 1.
    rpu_config : RPUConfig, optional
        The tile configuration (default ``RPUConfig()``).
    digital_bias : bool
        Keep the bias digital (default) or analog.
    seed : int, optional
        Seed of the tile.

    Attributes
    ----------
    analog_tile : AnalogTile
    analog_ctx : torch.nn.Parameter
        Empty parameter by which ``AnalogSGD`` finds the layer.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rpu_config=None, *, digital_bias: bool = True, seed: int | None = None,
                 dtype=np.float32):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.analog_bias = bool(bias) and not digital_bias
        self.analog_tile = AnalogTile(out_features, in_features + int(self.analog_bias),
                                      rpu_config, seed=seed, dtype=dtype)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias and digital_bias else None
        self.analog_ctx = nn.Parameter(torch.zeros(0))
        self.analog_ctx.analog_layer = weakref.ref(self)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def _saturation_mask(self, y: np.ndarray):
        """Outputs at the ADC bound get no backward gradient (aihwkit's layers, io spec §9)."""
        io = self.analog_tile.rpu_config.forward
        if (io.out_bound <= 0 or io.is_perfect or io.mv_type == AnalogMVType.IDEAL
                or self.analog_tile._forward_mvm.exact):
            return None
        mask = np.abs(y) >= 0.999 * io.out_scale * io.out_bound
        return mask if mask.any() else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x2 = x.reshape(-1, shape[-1])
        if self.analog_bias:
            x2 = torch.cat([x2, torch.ones(x2.shape[0], 1, dtype=x2.dtype, device=x2.device)],
                           dim=1)
        y = _AnalogFunction.apply(self.analog_ctx, x2, self)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def get_weights(self):
        """Return ``(weight, bias)`` as tensors (bias ``None`` without bias)."""
        w = torch.from_numpy(self.analog_tile.get_weights())
        if self.analog_bias:
            return w[:, :-1].clone(), w[:, -1].clone()
        return w, (self.bias.detach().clone() if self.bias is not None else None)

    def set_weights(self, weight, bias=None) -> None:
        """Program the weights (and the bias, analog or digital)."""
        w = np.asarray(weight.detach().cpu() if isinstance(weight, torch.Tensor) else weight)
        if self.analog_bias:
            b = np.zeros(self.out_features) if bias is None else np.asarray(
                bias.detach().cpu() if isinstance(bias, torch.Tensor) else bias)
            w = np.concatenate([w, b.reshape(-1, 1)], axis=1)
        elif bias is not None and self.bias is not None:
            with torch.no_grad():
                self.bias.copy_(torch.as_tensor(np.asarray(bias)))
        self.analog_tile.set_weights(w)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'analog' if self.analog_bias else self.bias is not None}")


class AnalogSGD(torch.optim.SGD):
    """SGD that updates analog layers by pulses, as aihwkit's ``AnalogSGD``.

    Digital parameters get a plain SGD step. For each analog layer the stored (x, d) pairs of
    the step are concatenated and passed to ``tile.update`` with the group's learning rate —
    skipped entirely when it is 0 — and afterwards every analog tile runs
    ``post_update_step()`` (diffusion, decay), also at learning rate 0.
    """

    def regroup_param_groups(self, *_args) -> None:
        """Kept for aihwkit compatibility; analog layers are found through ``analog_ctx``."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        layers = []
        saved = []
        for group in self.param_groups:
            for p in group["params"]:
                ref = getattr(p, "analog_layer", None)
                if ref is None:
                    continue
                layer = ref()
                layers.append((layer, group["lr"]))
                saved.append((p, p.grad))
                p.grad = None  # keep the analog marker out of the digital SGD step
        super().step()
        for p, grad in saved:
            p.grad = grad
        for layer, lr in layers:
            pending, layer._pending = layer._pending, []
            if lr != 0 and pending:
                x = np.concatenate([a for a, _ in pending])
                d = np.concatenate([b for _, b in pending])
                layer.analog_tile.update(x, d, lr=lr)
        for layer, _ in layers:
            layer.analog_tile.post_update_step()
        return loss
