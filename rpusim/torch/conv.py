"""Convolutions on analog tiles: ``AnalogConv1d``, ``AnalogConv2d``, ``AnalogConv3d``.

As aihwkit 1.2.0 (spec/layers.md §3): the input is unfolded into patches (columns in
``weight.reshape(out, -1)`` order: input channel, then kernel positions row-major), and the
patches of all images are the tiles' batch, image-major and then output positions row-major,
for forward, backward and the pulsed update alike. Unlike aihwkit, every dimension may be split
over tiles and may use dilation, and the non-zero padding modes work.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.conv import _ConvNd

from rpusim.kernels.patches import channels_to_rows, col2im, im2col, rows_to_channels
from rpusim.torch.base import AnalogLayerBase
from rpusim.torch.chain import AnalogStep
from rpusim.torch.mapping import _weight_gradient, apply_function
from rpusim.torch.linear import (_check_positive, attach_tile_grid, check_cpu_float,
                                 init_generator, torch_initial_weights)

__all__ = ["AnalogConv1d", "AnalogConv2d", "AnalogConv3d", "AnalogConv1dMapped",
           "AnalogConv2dMapped", "AnalogConv3dMapped"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(name: str, value, n: int, lo: int) -> tuple[int, ...]:
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * n
    if len(values) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} must hold ints >= {lo}, got {value!r}")
    return tuple(int(v) for v in values)


class _ConvFunction(torch.autograd.Function):
    """The convolution of a layer on one plain tile (see ``TileGrid.is_plain``) in one
    autograd step: patches, tile forward and digital bias, and in backward the tile backward
    and the fold of its result; equal to the unfold-tile-fold path with its torch ops
    (:meth:`_AnalogConvNd.short_forward`)."""

    @staticmethod
    def forward(ctx, analog_ctx, x, layer, bias, weight):
        # weight: the tile's weight parameter of a torch-updated grid, else None
        y, ctx.saved = layer.short_forward(x, bias)
        ctx.layer = layer
        ctx.set_materialize_grads(False)  # see the note above mapping._GridFunction
        return y

    @staticmethod
    def backward(ctx, grad_y):
        saved, ctx.saved = ctx.saved, None
        if grad_y is None:
            return None, None, None, None, None
        needs = ctx.needs_input_grad
        grad_x, grad_bias, grad_weight = ctx.layer.short_backward(saved, grad_y, needs[1],
                                                                  needs[3], needs[4])
        return None, grad_x, None, grad_bias, grad_weight


class _ImageRange:
    """The unpadded input image of a convolution's call, for an input range that reads the
    image (see ``_AnalogConvNd._indexed_range``), and the fold of patch gradients onto it."""

    __slots__ = ("image", "layer", "padded_shape")

    def __init__(self, layer, image: np.ndarray, padded_shape: tuple):
        self.layer, self.image, self.padded_shape = layer, image, padded_shape

    def fold(self, z: np.ndarray) -> np.ndarray:
        """The gradient of the image from ``z``, the gradients of its patches (the tile's
        inputs, tile order), summed over the patches that read each element."""
        layer = self.layer
        batch, channels, spatial = self.padded_shape[0], self.padded_shape[1], \
            self.padded_shape[2:]
        kernel, stride, dilation, out = layer._geometry(spatial)
        shape5 = (batch, channels, *((1,) * (3 - layer._ndim)), *spatial)
        grad = np.zeros(shape5, z.dtype)
        col2im(np.ascontiguousarray(z), kernel, stride, dilation, out, grad)
        grad = grad.reshape(self.padded_shape)
        crop = tuple(slice(a, a + n) for (a, _), n in zip(layer._pad, self.image.shape[2:]))
        return grad[(slice(None), slice(None), *crop)]


class _AnalogConvNd(AnalogLayerBase, _ConvNd):
    """Shared body of the analog convolutions (see the module docstring)."""

    _ndim = 0

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 rpu_config=None, tile_module_class=None, use_indexed: bool | None = None, *,
                 digital_bias: bool | None = None, seed: int | None = None, dtype=np.float32):
        nn.Module.__init__(self)
        self.use_indexed = False  # aihwkit's CUDA-only indexed path: the CPU unfolds
        n = self._ndim
        self.in_channels = _check_positive("in_channels", in_channels)
        self.out_channels = _check_positive("out_channels", out_channels)
        self.kernel_size = _tuple("kernel_size", kernel_size, n, 1)
        self.stride = _tuple("stride", stride, n, 1)
        self.dilation = _tuple("dilation", dilation, n, 1)
        if groups != 1:
            raise ValueError(f"analog convolutions support groups=1 only (as aihwkit), got "
                             f"{groups!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        self.groups = 1
        self.padding_mode = padding_mode
        self.transposed = False
        self.output_padding = (0,) * n
        self.padding = self._check_padding(padding)
        self.in_size = self.in_channels * math.prod(self.kernel_size)
        self.in_features, self.out_features = self.in_size, self.out_channels
        attach_tile_grid(self, self.out_channels, self.in_size, bias, rpu_config,
                         tile_module_class, digital_bias, seed, dtype)
        self.reset_parameters()

    def _check_padding(self, padding):
        n = self._ndim
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"padding must be 'same', 'valid', an int or a tuple, got "
                                 f"{padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' needs stride 1 (as torch)")
            totals = [d * (k - 1) if padding == "same" else 0
                      for k, d in zip(self.kernel_size, self.dilation)]
            self._pad = [(t // 2, t - t // 2) for t in totals]
            return padding
        values = _tuple("padding", padding, n, 0)
        self._pad = [(p, p) for p in values]
        return values

    def reset_parameters(self) -> None:
        """Draw fresh initial weights as torch's ``Conv`` does and write them to the tiles."""
        if not hasattr(self, "analog_module"):
            return
        weight, bias = torch_initial_weights(
            (self.out_channels, self.in_channels, *self.kernel_size), self._has_bias,
            init_generator(self._seed))
        self.set_weights(weight, bias)

    @property
    def analog_tile(self):
        """The layer's tile (see :attr:`AnalogLinear.analog_tile`)."""
        return self.analog_module.tile

    # -- forward -------------------------------------------------------------------------------
    def unfold(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Patches of a padded (N, C, *spatial) input: ``(N * L, C * prod(kernel))`` in tile
        order, and the output's spatial shape."""
        n = self._ndim
        u = x
        for i, (k, s, d) in enumerate(zip(self.kernel_size, self.stride, self.dilation)):
            u = u.unfold(2 + i, d * (k - 1) + 1, s)
            if d > 1:
                u = u[..., ::d]
        out_spatial = tuple(u.shape[2:2 + n])
        u = u.permute(0, *range(2, 2 + n), 1, *range(2 + n, 2 + 2 * n))
        return u.reshape(-1, self.in_size), out_spatial

    def _padded(self, x: torch.Tensor) -> torch.Tensor:
        if not any(a or b for a, b in self._pad):
            return x
        pads = [p for pair in reversed(self._pad) for p in pair]
        if self.padding_mode == "zeros":
            return F.pad(x, pads)
        return F.pad(x, pads, mode=self.padding_mode)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The convolution of a (N, C, *spatial) or unbatched (C, *spatial) input."""
        name = type(self).__name__
        check_cpu_float(x, name)
        n = self._ndim
        if x.dim() not in (n + 1, n + 2) or x.shape[-n - 1] != self.in_channels:
            raise ValueError(f"{name} expects (N, {self.in_channels}, *{n} spatial dims) or "
                             f"({self.in_channels}, *{n} spatial dims), got {tuple(x.shape)}")
        unbatched = x.dim() == n + 1
        if unbatched:
            x = x.unsqueeze(0)
        image = x
        x = self._padded(x)
        too_small = [i for i in range(n) if x.shape[2 + i] <
                     self.dilation[i] * (self.kernel_size[i] - 1) + 1]
        if too_small:
            raise ValueError(f"{name}: the padded input {tuple(x.shape)} is smaller than the "
                             f"dilated kernel {self.kernel_size} (dilation {self.dilation})")
        grid = self.analog_module
        if grid.is_plain(x, self.bias):
            y = apply_function(_ConvFunction, grid.analog_ctx, x, self, self.bias,
                               grid.plain_weight())
            return y[0] if unbatched else y
        patches, out_spatial = self.unfold(x)
        grid.rows_per_sample = math.prod(out_spatial)
        if self._indexed_range():
            grid.range_image = _ImageRange(self, image.detach().numpy(), tuple(x.shape))
        y = self.analog_module(patches)
        batch = x.shape[0]
        y = y.view(batch, math.prod(out_spatial), self.out_channels).transpose(1, 2).reshape(
            batch, self.out_channels, *out_spatial)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, *([1] * n))
        return y[0] if unbatched else y

    def short_forward(self, x: torch.Tensor, bias: torch.Tensor | None
                      ) -> tuple[torch.Tensor, tuple]:
        """The short path's forward of a batched, padded input ``x`` (see
        ``TileGrid.is_plain``): ``(convolution + bias, what :meth:`short_backward` reads)``,
        no autograd."""
        grid = self.analog_module
        # (inside the chain's forward only the first input may require a gradient)
        x_np = np.ascontiguousarray((x.detach() if x.requires_grad else x).numpy())
        batch, spatial = x_np.shape[0], x_np.shape[2:]
        kernel, stride, dilation, out = self._geometry(spatial)
        x5 = x_np.reshape(batch, x_np.shape[1], *((1,) * (3 - self._ndim)), *spatial)
        positions = out[0] * out[1] * out[2]
        if grid.rows_per_sample != positions:  # (nn.Module's attribute setting: microseconds)
            grid.rows_per_sample = positions
        patches = np.empty((batch * positions, self.in_size), grid.dtype)
        im2col(x5, kernel, stride, dilation, out, patches)
        y, x_t, mask = grid.plain_forward(patches)
        result = np.empty((batch, y.shape[1], positions), grid.dtype)
        rows_to_channels(y, y.reshape(-1)[:0] if bias is None else bias.detach().numpy(),
                         bias is not None, result)
        saved = (x_t, mask, (x5.shape, kernel, stride, dilation, out), x_np.shape)
        return torch.from_numpy(result.reshape(batch, y.shape[1], *out[3 - self._ndim:])), saved

    def short_backward(self, saved: tuple, grad_y: torch.Tensor, input_gradient: bool,
                       bias_gradient: bool, weight_gradient: bool) -> tuple:
        """The short path's backward: stores the update's pair and returns the gradients of
        the (padded) input, the digital bias and the weight parameter (None where not asked
        for)."""
        grid = self.analog_module
        x_t, mask, geometry, x_shape = saved
        g = np.ascontiguousarray((grad_y.detach() if grad_y.requires_grad else grad_y).numpy(),
                                 dtype=grid.dtype)
        batch, channels = g.shape[0], g.shape[1]
        g = g.reshape(batch, channels, math.prod(g.shape[2:]))
        d = np.empty((batch * g.shape[2], channels), grid.dtype)
        channels_to_rows(g, d)
        z = grid.plain_backward(x_t, d, mask, input_gradient)
        grad_x = None
        if z is not None:
            shape5, kernel, stride, dilation, out = geometry
            grad = np.zeros(shape5, grid.dtype)
            col2im(np.ascontiguousarray(z), kernel, stride, dilation, out, grad)
            grad_x = torch.from_numpy(grad.reshape(x_shape))
        grad_bias = grad_y.sum([0, *range(2, grad_y.dim())]) if bias_gradient else None
        return grad_x, grad_bias, _weight_gradient(grid, weight_gradient)

    def chain_step(self, shape: tuple, dtype: torch.dtype):
        """This layer as a step of an ``AnalogSequential``'s chain (:mod:`rpusim.torch.chain`)
        for a batched input of ``shape`` and ``dtype``: ``(step, output shape)``, or None
        where the layer's own call is needed (another input, a split or scaled grid, a
        non-zero padding mode, an override of :meth:`forward`)."""
        n = self._ndim
        grid = self._modules["analog_module"]
        bias = self.bias
        if (type(self).forward is not _AnalogConvNd.forward or len(shape) != n + 2
                or shape[1] != self.in_channels or not grid.is_plain_for(dtype, bias)):
            return None
        # (asked once per input shape: the container keeps the run, chain_step_current
        # compares the settings)
        found = self._chain_shape(shape)
        if found is None:
            return None
        out, pad, unpad = found
        step = AnalogStep(self, (grid._parameters["analog_ctx"], bias, grid.plain_weight()),
                          pad, unpad, self._chain_settings())
        return step, (shape[0], self.out_channels, *out)

    def _chain_settings(self) -> tuple:
        """What a chain step's geometry depends on besides the input shape."""
        return (tuple(self._pad), self.kernel_size, self.stride, self.dilation,
                self.padding_mode)

    def chain_step_current(self, step: AnalogStep, dtype: torch.dtype) -> bool:
        """Whether :meth:`chain_step` would still make ``step`` (for the same input shape and
        ``dtype``; the caller has tested that this is the same module with the same type and
        no hooks): the same parameters, weight binding and geometry, the grid still plain."""
        return (step.holds(self, self._modules.get("analog_module"), dtype)
                and self._chain_settings() == step.token)

    def _chain_shape(self, shape: tuple):
        """``(output spatial shape, F.pad's argument, the slices that undo it)`` of a chain
        step for inputs of ``shape`` (no padding: None, None), or None where the layer's own
        call is needed (an input smaller than the kernel, a non-zero padding mode)."""
        spatial = [s + a + b for s, (a, b) in zip(shape[2:], self._pad)]
        if any(s < d * (k - 1) + 1 for s, k, d in zip(spatial, self.kernel_size,
                                                      self.dilation)):
            return None
        pad = unpad = None
        if any(a or b for a, b in self._pad):
            if self.padding_mode != "zeros":
                return None
            pad = [p for pair in reversed(self._pad) for p in pair]
            unpad = (slice(None), slice(None),
                     *(slice(a, a + s) for s, (a, _) in zip(shape[2:], self._pad)))
        return self._geometry(tuple(spatial))[3][3 - self._ndim:], pad, unpad

    def _indexed_range(self) -> bool:
        """Whether this layer's input range sees the image, not the patches: aihwkit runs
        Conv1d and Conv3d on its C++ tiles as indexed convolutions, whose ``pre_forward``
        (the range's initialisation from data) and ``post_backward`` (its gradient) read the
        unpadded input image and its gradient. One tile only: aihwkit does not split those
        layers; rpusim's split ones, and its torch-based tiles (which aihwkit refuses for
        them), keep the patches."""
        grid = self.analog_module
        return (self._ndim != 2 and grid.input_range is not None and len(grid._flat) == 1
                and not grid._flat[0].torch_autograd)

    def _geometry(self, spatial: tuple[int, ...]) -> tuple[tuple[int, int, int], ...]:
        """Kernel, stride, dilation and output size as three spatial dimensions each (the
        missing leading ones 1), for :mod:`rpusim.kernels.patches`."""
        # every call asks: the last answer is kept (the layer's settings are in the key)
        key = (spatial, self.kernel_size, self.stride, self.dilation)
        memo = self.__dict__.get("_geometry_memo")
        if memo is not None and memo[0] == key:
            return memo[1]
        pad = (1,) * (3 - self._ndim)
        out = tuple((s - d * (k - 1) - 1) // st + 1 for s, k, st, d in
                    zip(spatial, self.kernel_size, self.stride, self.dilation))
        geometry = (pad + self.kernel_size, pad + self.stride, pad + self.dilation, pad + out)
        self.__dict__["_geometry_memo"] = (key, geometry)
        return geometry

    # -- weights -------------------------------------------------------------------------------
    def get_weights(self, apply_weight_scaling: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(weight, bias)`` with ``weight`` in the tile layout
        ``(out_channels, in_channels * prod(kernel_size))``, as aihwkit."""
        weight, bias = self.analog_module.get_weights(apply_weight_scaling)
        if self.bias is not None:
            bias = self.bias.detach().clone()
        return weight, bias

    def set_weights(self, weight, bias=None, apply_weight_scaling: bool = True,
                    weight_scaling_omega: float | None = None) -> None:
        """Program ``weight``, in torch's layout ``(out, in, *kernel)`` or the tile layout,
        and the bias.

        ``apply_weight_scaling`` and ``weight_scaling_omega`` act as in
        :meth:`TileGrid.set_weights <rpusim.torch.mapping.TileGrid.set_weights>`.
        """
        w = weight.detach().cpu() if isinstance(weight, torch.Tensor) else torch.as_tensor(
            np.asarray(weight))
        if w.numel() != self.out_channels * self.in_size:
            raise ValueError(f"weight must have shape ({self.out_channels}, "
                             f"{self.in_channels}, *{self.kernel_size}) or "
                             f"({self.out_channels}, {self.in_size}), got {tuple(w.shape)}")
        self.analog_module.set_weights(w.reshape(self.out_channels, self.in_size), bias,
                                       apply_weight_scaling, weight_scaling_omega)
        if bias is not None and self.bias is not None:
            with torch.no_grad():
                self.bias.copy_(torch.as_tensor(np.asarray(
                    bias.detach().cpu() if isinstance(bias, torch.Tensor) else bias)))

    @classmethod
    def from_digital(cls, module: _ConvNd, rpu_config=None, tile_module_class=None):
        """An analog convolution with the settings and weights of a torch convolution."""
        layer = cls(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                    module.padding, module.dilation, module.groups, module.bias is not None,
                    module.padding_mode, rpu_config, tile_module_class)
        layer.set_weights(module.weight, module.bias)
        return layer

    @classmethod
    def to_digital(cls, module: "_AnalogConvNd", realistic: bool = False) -> _ConvNd:
        """The torch convolution with the weights of ``module`` (exact copies)."""
        weight, bias = module.get_weights()
        digital = cls._digital(module.in_channels, module.out_channels, module.kernel_size,
                               module.stride, module.padding, module.dilation, 1,
                               bias is not None, module.padding_mode, dtype=weight.dtype)
        with torch.no_grad():
            digital.weight.copy_(weight.reshape(digital.weight.shape))
            if bias is not None:
                digital.bias.copy_(bias)
        return digital

    def extra_repr(self) -> str:
        bias = "analog" if self.analog_module.analog_bias else self.bias is not None
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding not in ((0,) * self._ndim, "valid"):
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._ndim:
            text += f", dilation={self.dilation}"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text + f", bias={bias}"


class AnalogConv1d(_AnalogConvNd):
    """A 1-d convolution on analog tiles (aihwkit's ``AnalogConv1d``; arguments as
    ``torch.nn.Conv1d`` plus ``rpu_config``, and rpusim's ``digital_bias``, ``seed``,
    ``dtype`` as :class:`~rpusim.torch.AnalogLinear`)."""

    _ndim = 1
    _digital = nn.Conv1d


class AnalogConv2d(_AnalogConvNd):
    """A 2-d convolution on analog tiles (aihwkit's ``AnalogConv2d``; arguments as
    ``torch.nn.Conv2d`` plus ``rpu_config``, and rpusim's ``digital_bias``, ``seed``,
    ``dtype`` as :class:`~rpusim.torch.AnalogLinear`)."""

    _ndim = 2
    _digital = nn.Conv2d


class AnalogConv3d(_AnalogConvNd):
    """A 3-d convolution on analog tiles (aihwkit's ``AnalogConv3d``; arguments as
    ``torch.nn.Conv3d`` plus ``rpu_config``, and rpusim's ``digital_bias``, ``seed``,
    ``dtype`` as :class:`~rpusim.torch.AnalogLinear`)."""

    _ndim = 3
    _digital = nn.Conv3d


class AnalogConv1dMapped(AnalogConv1d):
    """aihwkit's name for a mapped ``AnalogConv1d``; every rpusim layer maps."""


class AnalogConv2dMapped(AnalogConv2d):
    """aihwkit's name for a mapped ``AnalogConv2d``; every rpusim layer maps."""


class AnalogConv3dMapped(AnalogConv3d):
    """aihwkit's name for a mapped ``AnalogConv3d``; every rpusim layer maps."""
