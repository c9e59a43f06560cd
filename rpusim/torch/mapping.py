"""A layer's weight matrix on a grid of tiles: splits, weight scaling, learned output scales.

aihwkit 1.2.0 semantics (spec/layers.md §1-2): a matrix with more inputs than
``mapping.max_input_size`` or more outputs than ``mapping.max_output_size`` is cut into balanced
pieces, one tile per (input piece, output piece); output pieces are concatenated and input
pieces summed digitally. Each tile has its own periphery: a weight-scaling factor ``alpha``
(``weight_scaling_omega``), an optional learned output scale, the learning-rate compensation,
and with ``pre_post.input_range.enable`` an input range ``r`` (inputs clipped to ``[-r, r]`` and
divided by ``r``, outputs multiplied by ``r``; ``r`` initialised from the data of the first
training batches and learned with aihwkit's periphery gradient, clip term plus decay).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch
from torch import nn
from torch.nn.modules import module as _module

from rpusim.configs.enums import WeightRemapType
from rpusim.configs.inference import TorchInferenceRPUConfig
from rpusim.configs.rpu import RPUConfig
from rpusim.devices import IdealDevice
from rpusim.hwa import is_hardware_aware
from rpusim.kernels.checks import all_finite, at_bound_or_add
from rpusim.kernels.input_range import range_gradient_terms
from rpusim.tile import AnalogTile, _require_finite
from rpusim.torch.tile import LayerTile
from rpusim.torch.base import AnalogContext

__all__ = ["split_sizes", "TileGrid"]


def split_sizes(size: int, max_size: int) -> list[int]:
    """Balanced pieces of ``size`` no larger than ``max_size`` (0: no limit), as aihwkit.

    ``n = ceil(size / max_size)`` pieces; the first ``size % n`` get one element more.

    Examples
    --------
    >>> split_sizes(13, 8), split_sizes(20, 6), split_sizes(7, 4)
    ([7, 6], [5, 5, 5, 5], [4, 3])
    """
    if max_size <= 0 or size <= max_size:
        return [size]
    n = -(-size // max_size)
    base, extra = divmod(size, n)
    return [base + (i < extra) for i in range(n)]


def tile_seeds(seed: int | None, count: int) -> list[int]:
    """Independent tile seeds of a layer.

    From the layer's ``seed`` if given, else from the current state of torch's global generator
    without advancing it, so that ``torch.manual_seed`` makes a script reproducible and the
    layers' initial weights equal those torch's own layers would draw.
    """
    if seed is None:
        digest = hashlib.blake2b(torch.random.get_rng_state().numpy().tobytes(),
                                 digest_size=8).digest()
        seed = int.from_bytes(digest, "little")
    states = np.random.SeedSequence(seed).spawn(count)
    return [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in states]


# torch's C entry point of autograd functions (None if a torch version lays it out otherwise)
_C_APPLY = getattr(getattr(torch._C, "_FunctionBase", None), "__dict__", {}).get("apply")
_functorch_active = getattr(torch._C, "_are_functorch_transforms_active", None)


def apply_function(function: type, *args):
    """``function.apply(*args)`` for a ``torch.autograd.Function`` without default arguments
    or ``setup_context``: the C entry point directly, skipping the Python wrapper's argument
    binding and functorch checks (a few microseconds a call) unless functorch is active."""
    if _C_APPLY is None or _functorch_active is None or _functorch_active():
        return function.apply(*args)
    return _C_APPLY.__get__(None, function)(*args)


def context_input(analog_ctx, bias, weight):
    """A layer's analog context as an input of its autograd function, or None in its place
    where the layer's bias or weight parameter (each may be None) needs a gradient.

    The context is an input so that the layer's backward runs when nothing else of it needs
    a gradient (:class:`~rpusim.torch.base.AnalogContext`); where something else does, the
    backward runs all the same, and the context's edge in the graph cost autograd about 2 us
    a layer and step for nothing (it never gets a gradient)."""
    if ((bias is not None and bias.requires_grad)
            or (weight is not None and weight.requires_grad)):
        return None
    return analog_ctx


def _has_hooks(module: nn.Module) -> bool:
    """Whether calling ``module`` would run a hook (its own or a global one)."""
    return bool(module._forward_hooks or module._forward_pre_hooks or module._backward_hooks
                or module._backward_pre_hooks or _module._global_forward_hooks
                or _module._global_forward_pre_hooks or _module._global_backward_hooks
                or _module._global_backward_pre_hooks)


def _entries(plist: nn.ParameterList) -> tuple:
    """The entries of ``plist`` in order, read from its parameter dict: ``tuple(plist)``
    without nn.Module's attribute lookup per entry (microseconds each, several times a step
    on the ranged path). Its entries are parameters (the list wraps any tensor it is given)
    under the keys "0", "1", ... in insertion order, which replacing one keeps."""
    found = plist._parameters
    return tuple(found.values()) if len(found) == len(plist) else tuple(plist)


def _to_numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


# An undefined output gradient (None) reaches a layer's autograd function only from a layer
# after it whose output did not depend on its input: aihwkit's torch-based tile returns new
# zeros for inputs whose noise management values are all 0 (TorchMVMSaved.detached), which
# cuts aihwkit's graph there, so no layer before it runs a backward pass. torch would turn the
# None into zeros for a Python function (and into a zero gradient, which weight decay and
# momentum act on); the layers' functions therefore keep it None (``set_materialize_grads
# (False)``) and pass it on: no backward pass, no update pair, no gradient.


class _GridFunction(torch.autograd.Function):
    """Forward/backward through the grid; backward records (x, d) per tile for the update."""

    @staticmethod
    def forward(ctx, analog_ctx, x, grid, counts, bias, *params):
        # params: the learned output scales, the learned input ranges, and the tiles' weight
        # parameters of a torch-updated grid (see TileGrid.shared_weights); counts: how
        # many of the first two kinds; bias: a digital bias in the grid's dtype, as x, to add
        # (TileGrid.run), or None
        x_np = x.detach().numpy()
        n_scales, n_ranges = counts
        y, saved = grid.forward_numpy(x_np, [s.detach().numpy() for s in params[:n_scales]])
        if bias is not None:
            # a new array: a torch-based tile's saved forward may hold y; the same float
            # additions as torch's broadcast add of the layer
            y = y + bias.detach().numpy()
        ctx.grid = grid
        ctx.saved = saved
        ctx.params = params
        ctx.n_scales = n_scales
        ctx.n_ranges = n_ranges
        ctx.in_dtype = x.dtype
        ctx.set_materialize_grads(False)  # see the note above _GridFunction
        out = torch.from_numpy(y)
        return out if out.dtype == x.dtype else out.to(x.dtype)

    @staticmethod
    def backward(ctx, grad_y):
        if grad_y is None:
            ctx.saved = None
            return (None, None, None, None, None, *(None for _ in ctx.params))
        # the bias gradient as torch's broadcast add would sum it (same order, same bits)
        grad_bias = grad_y.sum(0) if ctx.needs_input_grad[4] else None
        grid = ctx.grid
        scales = [s.detach().numpy() for s in ctx.params[:ctx.n_scales]]
        grad_x, grad_scales = grid.backward_numpy(grad_y.detach().numpy(), ctx.saved, scales,
                                                  ctx.needs_input_grad[1])
        grad_ranges = ctx.saved[6] if ctx.n_ranges else []
        ctx.saved = None
        gx = None if grad_x is None else torch.from_numpy(grad_x)
        if gx is not None and gx.dtype != ctx.in_dtype:
            gx = gx.to(ctx.in_dtype)
        grads = [*grad_scales, *grad_ranges, *grid.take_weight_gradients()]
        return (None, gx, None, None, grad_bias,
                *(_as_gradient(g, p) for g, p in zip(grads, ctx.params)))


def _as_gradient(g, p: torch.Tensor) -> torch.Tensor | None:
    """``g`` (an array, a float or a tensor; None for no gradient) as the gradient of ``p``:
    its shape and dtype."""
    if g is None:
        return None
    kind = type(g)
    if kind is torch.Tensor:
        if g.dtype == p.dtype and g.shape == p.shape:
            return g
    elif kind is np.ndarray:
        if g.flags.c_contiguous and g.dtype.char in "fd":
            t = torch.from_numpy(g)  # shares the data, as torch.as_tensor would
            if t.dtype == p.dtype and t.shape == p.shape:
                return t
    elif (kind is float or kind is np.float64) and p.numel() == 1:
        # an input range's gradient (float64): rounded to the parameter's dtype as
        # torch.as_tensor rounds it
        return torch.full(p.shape, g, dtype=p.dtype)
    return torch.as_tensor(np.asarray(g).reshape(p.shape), dtype=p.dtype)


class _TileFunction(torch.autograd.Function):
    """Forward/backward of a layer held by one plain tile (no weight scaling, learned output
    scale or input range, inputs in the tile dtype): the common case, with the least work per
    call. Equal to :class:`_GridFunction` followed by ``y + bias``; the digital ``bias`` (or
    ``None``) is added to the outputs here (:meth:`TileGrid.short_forward`)."""

    @staticmethod
    def forward(ctx, analog_ctx, x, grid, bias, weight):
        # weight: the tile's weight parameter of a torch-updated grid, else None
        y, ctx.saved = grid.short_forward(x, bias)
        ctx.grid = grid
        ctx.set_materialize_grads(False)  # see the note above _GridFunction
        return y

    @staticmethod
    def backward(ctx, grad_y):
        saved, ctx.saved = ctx.saved, None
        if grad_y is None:
            return None, None, None, None, None
        needs = ctx.needs_input_grad
        grad_x, grad_bias, grad_weight = ctx.grid.short_backward(saved, grad_y, needs[1],
                                                                 needs[3], needs[4])
        return None, grad_x, None, grad_bias, grad_weight


class TileGrid(nn.Module):
    """The tiles of one layer's ``out_size x in_size`` weight matrix (aihwkit's tile module
    or ``TileModuleArray``; the layer's ``analog_module``).

    Parameters
    ----------
    out_size, in_size : int
        The layer's weight matrix (without an analog-bias column).
    rpu_config : RPUConfig
        Configuration of every tile; ``rpu_config.mapping`` sets the split and the scaling.
    bias : bool
        The layer has a bias. It is an extra tile column (input 1) if
        ``mapping.digital_bias`` is False and the layer fits one tile; otherwise the layer
        keeps it as a digital parameter.
    seed : int, optional
        Seed of the tiles (see :func:`tile_seeds`).
    dtype : {numpy.float32, numpy.float64}
        Tile precision.

    Attributes
    ----------
    tiles : list of list of AnalogTile
        ``tiles[i][j]`` holds input piece ``i`` and output piece ``j``.
    in_sizes, out_sizes : list of int
        The pieces.
    analog_bias : bool
        The bias is the last column of the (single) tile.
    analog_ctx : AnalogContext
        The optimizer's handle.
    out_scaling_alpha : torch.nn.ParameterList or None
        Learned output scales, one parameter per tile (``learn_out_scaling``).
    input_range : torch.nn.ParameterList or None
        The input range ``r`` of each tile (``pre_post.input_range.enable``): inputs are
        clipped to ``[-r, r]`` and divided by ``r``, outputs multiplied by ``r``. Learned
        (gradient of aihwkit's periphery) with ``learn_input_range``, fixed otherwise.
    input_range_update_idx : torch.Tensor or None
        Per tile, how many training batches have initialised ``r`` from data so far.
    """

    # grids pickled before the short path existed lack these: they take the general path
    _one_tile = False
    _torch_dtype = None
    # rows of the tile's batch per sample: a convolution sets its positions before each call
    # (the default here spares the per-call lookups nn.Module's failing attribute search)
    rows_per_sample = 1

    def __init__(self, out_size: int, in_size: int, rpu_config: RPUConfig | None = None,
                 bias: bool = False, *, seed: int | None = None, dtype=np.float32):
        super().__init__()
        if rpu_config is None:
            rpu_config = RPUConfig()
        if not isinstance(rpu_config, RPUConfig):
            raise TypeError(f"rpu_config must be an RPUConfig, got {type(rpu_config).__name__}")
        rpu_config.validate()
        mapping = rpu_config.mapping
        self.out_size = int(out_size)
        self.in_size = int(in_size)
        self.in_sizes = split_sizes(self.in_size, mapping.max_input_size)
        self.out_sizes = split_sizes(self.out_size, mapping.max_output_size)
        count = len(self.in_sizes) * len(self.out_sizes)
        self.analog_bias = bool(bias) and not mapping.digital_bias and count == 1
        extra = int(self.analog_bias)
        seeds = iter(tile_seeds(seed, count))
        self.tiles = [[LayerTile(o, i + extra, rpu_config, seed=next(seeds), dtype=dtype)
                       for o in self.out_sizes] for i in self.in_sizes]
        self._flat = [t for row in self.tiles for t in row]
        self._in_bounds = _bounds(self.in_sizes)
        self._out_bounds = _bounds(self.out_sizes)
        self.dtype = self._flat[0].dtype
        self._torch_dtype = _torch_dtype(self.dtype)
        self._one_tile = len(self._flat) == 1
        self._alpha: list[np.ndarray | None] = [None] * count
        self._lr_scale = [1.0] * count
        self._pending: list[list] = [[] for _ in range(count)]
        self.analog_ctx = AnalogContext(self)
        self._init_shared_weights(rpu_config)
        if mapping.learn_out_scaling:
            self.out_scaling_alpha = nn.ParameterList(
                nn.Parameter(torch.ones(o if mapping.out_scaling_columnwise else 1,
                                        dtype=_torch_dtype(self.dtype)))
                for _ in self.in_sizes for o in self.out_sizes)
        else:
            self.out_scaling_alpha = None
        self._init_input_range(rpu_config, count)

    def _init_shared_weights(self, rpu_config: RPUConfig) -> None:
        """Weight parameters of hardware-aware tiles (``InferenceRPUConfig``), or ``None``.

        aihwkit 1.2.0 keeps the weights of its inference tiles in a torch parameter
        (``shared_weights``) and lets torch's optimizer update it: the backward writes the
        gradient ``d'^T x`` of the tile's weights (``d'`` the errors the tile's update would
        take, :meth:`take_weight_gradients`), and the optimizer's own rule (momentum, weight
        decay, Adam, ...) changes the analog weights, at the optimizer's learning rate (the
        learning-rate compensation of weight scaling divides ``d'`` only). One parameter per
        tile here, sharing the tile's weight array; they are in ``parameters()`` as
        aihwkit's, and left out of ``state_dict()`` (the tiles' states hold the weights).
        Other tiles get pulsed (or floating-point) updates from :class:`AnalogSGD`.
        """
        self._torch_update = (is_hardware_aware(rpu_config)
                              and isinstance(rpu_config.device, IdealDevice))
        # aihwkit keeps one set of output scales per tile (mapping scales) that remapping
        # rewrites (see post_update_step)
        self._remapped = (is_hardware_aware(rpu_config)
                          and rpu_config.remap.type != WeightRemapType.NONE)
        # aihwkit's torch tile takes the gradient without the learning-rate compensation
        self._compensated_gradient = not isinstance(rpu_config, TorchInferenceRPUConfig)
        if not self._torch_update:
            self.shared_weights = None
            return
        self._bound_arrays = [tile.update_target() for tile in self._flat]
        self.shared_weights = nn.ParameterList(
            nn.Parameter(torch.from_numpy(w)) for w in self._bound_arrays)
        self._register_state_dict_hook(_drop_shared_weights)
        self.register_load_state_dict_post_hook(_shared_weights_not_missing)

    def weight_parameter_count(self) -> int:
        """Number of tile weight parameters of a torch-updated grid (0 for other grids)."""
        return 0 if self.shared_weights is None else len(self.shared_weights)

    def bind_shared_weights(self) -> None:
        """Point every weight parameter at its tile's weight array again where a load, copy
        or unpickling gave the tile new arrays (the parameter objects, and with them the
        optimizer's state, stay); nothing to do when they are bound."""
        if self.shared_weights is None:
            return
        for k, tile in enumerate(self._flat):
            w = tile.update_target()
            # an array never moves its data: the same object is still bound (a copy or an
            # unpickled grid holds copies of the arrays here, not the tiles' new ones)
            if w is not self._bound_arrays[k]:
                self.shared_weights[k].data = torch.from_numpy(w)
                self._bound_arrays[k] = w

    def take_weight_gradients(self) -> list[torch.Tensor | None]:
        """The gradients of the weight parameters (a torch-updated grid; ``[]`` otherwise) from
        the (x, d) pairs the backward just stored, which it takes: per tile
        ``d'^T x`` with ``d' = d / (alpha * s_lr)`` (weight scale and, except for the torch
        tile, the learning-rate compensation) divided by the tile's remapping scales
        (:meth:`AnalogTile.update_gradient`). None for a tile whose every pair is None (its
        outputs did not depend on its weights: :meth:`AnalogTile.weight_gradient_pair`), as
        aihwkit's torch tile then leaves the weight without a gradient."""
        if self._modules.get("shared_weights") is None:
            return []
        grads = []
        for k, tile in enumerate(self._flat):
            stored = self._pending[k]
            self._pending[k] = []
            pending = [pair for pair in stored if pair is not None]
            if not pending:
                grads.append(None if stored else torch.zeros(tile.out_size, tile.in_size,
                                                              dtype=self._torch_dtype))
                continue
            x = pending[0][0] if len(pending) == 1 else np.concatenate([p[0] for p in pending])
            d = pending[0][1] if len(pending) == 1 else np.concatenate([p[1] for p in pending])
            lr_scale = self._lr_scale[k] if self._compensated_gradient else 1.0
            if self._alpha[k] is not None:
                d = d / (self._alpha[k] * lr_scale)
            elif lr_scale != 1.0:
                d = d / self.dtype.type(lr_scale)
            fits = (x.dtype == d.dtype == tile.dtype and x.ndim == d.ndim == 2
                    and x.shape == (d.shape[0], tile.in_size) and d.shape[1] == tile.out_size)
            grads.append(torch.from_numpy(tile._update_gradient_rows(x, d) if fits
                                          else tile.update_gradient(x, d)))
        return grads

    def _init_input_range(self, rpu_config: RPUConfig, count: int) -> None:
        """Create the per-tile input ranges of ``pre_post.input_range`` (or ``None``)."""
        params = rpu_config.pre_post.input_range
        self.input_range = None
        if not params.enable:
            self.register_buffer("input_range_update_idx", None)
            return
        if params.manage_output_clipping and not params.supports_manage_output_clipping(
                rpu_config):
            raise ValueError("pre_post.input_range.manage_output_clipping needs a non-perfect "
                             "forward with noise and bound management NONE")
        learn = params.learn_input_range
        self.input_range = nn.ParameterList(
            nn.Parameter(torch.full((1,), params.init_value, dtype=_torch_dtype(self.dtype)),
                         requires_grad=learn) for _ in range(count))
        self.register_buffer("input_range_update_idx", torch.zeros(count, dtype=torch.int64))

    def set_input_range(self, value, tile: int | None = None) -> None:
        """Set the input range ``|value|`` of every tile, or of flat tile index ``tile``
        (aihwkit's ``set_input_range``; a tensor gives its first element).

        Raises
        ------
        ValueError
            If the input range is not enabled (``pre_post.input_range.enable``).
        """
        if self.input_range is None:
            raise ValueError("the input range is not enabled (pre_post.input_range.enable)")
        value = abs(float(value.reshape(-1)[0]) if isinstance(value, torch.Tensor)
                    else float(value))
        targets = self.input_range if tile is None else [self.input_range[tile]]
        with torch.no_grad():
            for r in targets:
                r.fill_(value)

    def learned_range_count(self) -> int:
        """Number of input ranges that receive a gradient (0 unless learned)."""
        if self.input_range is None or not self.rpu_config.pre_post.input_range.learn_input_range:
            return 0
        return len(self.input_range)

    @property
    def rpu_config(self) -> RPUConfig:
        """The configuration of the first tile (all tiles share it at construction)."""
        return self._flat[0].rpu_config

    @property
    def tile(self) -> AnalogTile:
        """The grid's only tile (aihwkit scripts reach it as ``layer.analog_module.tile``);
        a split layer has several: use ``tiles``."""
        if len(self._flat) != 1:
            # not AttributeError: nn.Module.__getattr__ would replace the message
            raise ValueError(f"this layer is split over {len(self._flat)} tiles: use "
                             "tiles or the layer's analog_tiles()")
        return self._flat[0]

    def named_tiles(self, prefix: str = ""):
        """Yield ``(name, tile)`` input-major."""
        if len(self._flat) == 1:
            yield prefix, self._flat[0]
            return
        dot = f"{prefix}." if prefix else ""
        for i, row in enumerate(self.tiles):
            for j, tile in enumerate(row):
                yield f"{dot}array.{i}.{j}", tile

    # -- the torch entry point -----------------------------------------------------------------
    def run(self, x: torch.Tensor, bias: torch.Tensor | None) -> tuple[torch.Tensor, bool]:
        """The layer's call: ``self(x)``, plus ``bias`` (a digital bias parameter or ``None``)
        when that can be done in the same step; returns the output and whether the bias was
        added. A layer on one plain tile (the common case) takes a shorter path, with the same
        results (:class:`_TileFunction`); forward hooks on this module take the long one."""
        if self.is_plain(x, bias):
            weight = self.plain_weight()
            return apply_function(_TileFunction, context_input(self.analog_ctx, bias, weight),
                                  x, self, bias, weight), True
        if (bias is not None and x.dtype is self._torch_dtype
                and bias.dtype is self._torch_dtype and not _has_hooks(self)):
            # what self(x) + bias gives, in one autograd node
            return self._grid_function(x, bias), True
        return self(x), False

    def plain_weight(self):
        """The weight parameter of a one-tile torch-updated grid, bound to the tile's array
        (an input of the short paths' autograd functions, so that it gets its gradient), or
        ``None`` for other grids."""
        bound = self.__dict__.get("_bound_arrays")
        if bound is None or self.shared_weights is None:
            return None
        if self._flat[0].update_target() is not bound[0]:
            self.bind_shared_weights()
        # the list's own entry, without nn.Module's attribute lookups (about 3 us a call)
        return self._modules["shared_weights"]._parameters["0"]

    def is_plain(self, x: torch.Tensor, bias: torch.Tensor | None) -> bool:
        """Whether a call with input ``x`` and ``bias`` may take the short path: one tile, no
        weight scaling, learned output scales or input range, ``x`` and ``bias`` in the tile
        dtype, and no hooks on this module."""
        return self.is_plain_for(x.dtype, bias)

    def is_plain_for(self, dtype: torch.dtype, bias: torch.Tensor | None) -> bool:
        """:meth:`is_plain` for an input of ``dtype``."""
        return (self._one_tile and self._alpha[0] is None and self.out_scaling_alpha is None
                and self.input_range is None and dtype is self._torch_dtype
                and (bias is None or bias.dtype is self._torch_dtype)
                and not _has_hooks(self))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = W x`` for a 2-d ``x`` of shape (batch, in_size) on the CPU."""
        return self._grid_function(x, None)

    def _grid_function(self, x: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``W x`` (plus ``bias``, see :meth:`run`) through :class:`_GridFunction`."""
        modules = self._modules
        found = modules.get("out_scaling_alpha")
        scales = () if found is None else _entries(found)
        n_scales = len(scales)
        n_ranges = self.learned_range_count()
        if n_ranges:
            scales = (*scales, *_entries(modules["input_range"]))
        found = modules.get("shared_weights")
        if found is not None:
            self.bind_shared_weights()
            scales = (*scales, *_entries(found))
        return apply_function(_GridFunction, self._parameters["analog_ctx"], x, self,
                              (n_scales, n_ranges), bias, *scales)

    # -- NumPy passes --------------------------------------------------------------------------
    def short_forward(self, x: torch.Tensor, bias: torch.Tensor | None, shape=None
                      ) -> tuple[torch.Tensor, tuple]:
        """The short path's forward (see :meth:`is_plain`): ``(W x + bias, what
        :meth:`short_backward` reads)`` for a 2-d ``x`` in the tile dtype, no autograd; with
        ``shape`` (2-d), of ``x``'s array reshaped to it (a chain's deferred Flatten)."""
        # (inside the chain's forward only the first input may require a gradient)
        x_np = (x.detach() if x.requires_grad else x).numpy()
        if shape is not None:
            x_np = x_np.reshape(shape)
        y, x_t, mask = self.plain_forward(x_np,
                                          None if bias is None else self._bias_array(bias))
        return torch.from_numpy(y), (x_t, mask)

    def _bias_array(self, bias: torch.Tensor) -> np.ndarray:
        """``bias.detach().numpy()``, kept while ``bias`` keeps its storage (the optimizer
        updates it in place; a new ``bias.data`` has another address, as the kept view holds
        the old storage): a new tensor and array per step cost about 1 us."""
        memo = self.__dict__.get("_bias_view")
        address = bias.data_ptr()
        if memo is None or memo[0] is not bias or memo[1] != address:
            memo = self._bias_view = (bias, address, bias.detach().numpy())
        return memo[2]

    def short_backward(self, saved: tuple, grad_y: torch.Tensor, input_gradient: bool,
                       bias_gradient: bool, weight_gradient: bool) -> tuple:
        """The short path's backward: stores the update's pair and returns the gradients of
        the input, the digital bias and the weight parameter (each None where not asked
        for, see :meth:`plain_backward`)."""
        x_t, mask = saved
        d = (grad_y.detach() if grad_y.requires_grad else grad_y).numpy()
        if d.dtype != self.dtype or not d.flags.c_contiguous:
            d = np.ascontiguousarray(d, dtype=self.dtype)
        z = self.plain_backward(x_t, d, mask, input_gradient)
        grad_x = None if z is None else torch.from_numpy(z)
        # the bias gradient as torch's broadcast add would sum it (same order, same bits)
        grad_bias = grad_y.sum(0) if bias_gradient else None
        return grad_x, grad_bias, _weight_gradient(self, weight_gradient)

    def plain_forward(self, x: np.ndarray, bias: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray, object]:
        """Forward of a one-tile grid without scales (see :meth:`run`): ``(y, the tile's
        input, saturation mask or None)``; ``bias`` (a digital bias in the tile dtype, or
        None) is added to ``y``, after the saturation test."""
        if not x.flags.c_contiguous:
            x = np.ascontiguousarray(x)
        if self.analog_bias:
            x = self._input(x)
        tile = self._flat[0]
        is_test = not self.training
        if tile.torch_autograd:
            y, saved = tile.forward_saving(x, is_test, samples=self._samples(x))
            if bias is not None:
                y += bias
            return y, x, saved
        y = tile._forward_rows(x, is_test)
        return y, x, _saturation_mask(tile, y, is_test, bias)

    def plain_backward(self, x: np.ndarray, d: np.ndarray, mask,
                       input_gradient: bool = True) -> np.ndarray | None:
        """Backward of :meth:`plain_forward` (``d`` C-contiguous in the tile dtype): stores
        the pair of the update (``(x, d)``; for a torch-based tile the pair of its weight
        gradient) and returns the input gradient.

        Without ``input_gradient`` (the layer's input needs none) it returns None and leaves
        the backward pass out where that changes nothing but the tile's random stream (see
        :attr:`AnalogTile.backward_changes_state`); ``d`` is still tested as the pass would
        test it."""
        tile = self._flat[0]
        if _backward_left_out(tile, input_gradient):
            if not all_finite(d):
                raise ValueError("d must be finite, got NaN or inf")
            z = None
        elif tile.torch_autograd:
            z = tile.input_gradient(d, mask)
        else:
            z = tile._backward_rows(d if mask is None else
                                    np.where(mask, 0.0, d).astype(self.dtype, copy=False))
        # stored after the pass, which refuses non-finite errors
        self._pending[0].append(tile.weight_gradient_pair(d, mask) if tile.torch_autograd
                                else (x, d))
        if z is None:
            return None
        return z[:, :-1] if self.analog_bias else z

    def _samples(self, x: np.ndarray) -> int | None:
        """How many samples the rows of ``x`` belong to (``None``: one row each): a
        convolution sets :attr:`rows_per_sample` to its positions before each call, so that a
        torch-based inference tile's ``per_batch_sample`` modifier draws once per image, as
        aihwkit's (whose torch tile reads the patches of an image as one sample)."""
        rows = getattr(self, "rows_per_sample", 1)
        if rows <= 1 or x.shape[0] % rows:
            return None
        return x.shape[0] // rows

    def _input(self, x: np.ndarray) -> np.ndarray:
        if not self.analog_bias:
            return x
        ext = np.empty((x.shape[0], x.shape[1] + 1), self.dtype)
        ext[:, :-1] = x
        ext[:, -1] = 1.0
        return ext

    def forward_numpy(self, x: np.ndarray, scales: list) -> tuple[np.ndarray, tuple]:
        """The tiles' forward pass; returns ``y`` and what backward needs."""
        if self._modules.get("input_range") is not None:
            return self._forward_ranged(x, scales)
        x = self._input(x)
        is_test = not self.training
        if len(self._flat) == 1 and self._alpha[0] is None and not scales:
            y, mask = _tile_forward(self._flat[0], x, is_test, self._samples(x))
            return y, (x, [mask], None)
        y = np.empty((x.shape[0], self.out_size), self.dtype)
        masks, scaled = [], []
        k = 0
        for (a, b), row in zip(self._in_bounds, self.tiles):
            xi = x if len(self.tiles) == 1 else x[:, a:b]
            for (c, e), tile in zip(self._out_bounds, row):
                yt, mask = _tile_forward(tile, xi, is_test, self._samples(xi))
                masks.append(mask)
                if self._alpha[k] is not None:
                    yt = yt * self._alpha[k]
                if scales:
                    scaled.append(yt)
                    yt = yt * scales[k]
                if a == 0:
                    y[:, c:e] = yt
                else:
                    y[:, c:e] += yt
                k += 1
        return y, (x, masks, scaled)

    # -- input ranges (aihwkit's periphery: pre_forward, post_forward, post_backward) ----------
    # a convolution whose input range reads its image sets this before its call (conv.py)
    range_image = None

    def _range_input(self, x: np.ndarray, a: int, b: int) -> torch.Tensor:
        """Inputs ``a:b`` of the rows ``x`` laid out in memory as aihwkit's periphery receives
        them: a view of the layer's input (a split layer's piece is a strided view), and for a
        convolution (``rows_per_sample`` > 1) the transposed unfold ``(N, L, C k)``. torch's
        reductions sum in an order that depends on the layout: the standard deviation of six
        equal inputs is 0 as a strided view and 3e-8 contiguous, which then initialises the
        range to almost 0 instead of leaving it."""
        t = torch.from_numpy(x)
        rows = getattr(self, "rows_per_sample", 1)
        if rows > 1 and x.shape[0] % rows == 0:
            t = t.reshape(x.shape[0] // rows, rows, x.shape[1]).transpose(1, 2).contiguous()
            t = t.transpose(1, 2)
        return t[..., a:b]

    def _range_init_count(self, k: int) -> int | None:
        """How many batches initialised input range ``k`` so far, or None once the first
        ``init_from_data`` training batches have (then :meth:`_init_range_from_data` has
        nothing to do)."""
        idx = int(self._buffers["input_range_update_idx"].numpy()[k])
        return None if idx >= self.rpu_config.pre_post.input_range.init_from_data else idx

    def _init_range_from_data(self, k: int, xi, idx: int) -> None:
        """Running mean of ``init_std_alpha * std(x)`` over the first ``init_from_data``
        training batches (sample std, torch's ``Tensor.std``), rounded in the range's dtype
        as aihwkit's torch operations round it, on ``xi`` laid out as there
        (:meth:`_range_input`): a range one ulp apart moves inputs across the DAC's rounding
        ties. ``idx``: :meth:`_range_init_count`."""
        params = self.rpu_config.pre_post.input_range
        r = _entries(self._modules["input_range"])[k]
        if isinstance(xi, np.ndarray):
            xi = torch.from_numpy(xi)
        # torch's std (its summation order); the running mean in NumPy scalars of the range's
        # dtype: torch's ``(r * count + alpha * std) / (count + 1)`` on one-element float
        # tensors rounds each operation to that dtype, the Python float alpha included, as
        # these do (the same values over 220,000 random cases); then ``abs``
        std = xi.detach().to(r.dtype).std().item() if xi.numel() > 1 else float("nan")
        t = np.float32 if r.dtype == torch.float32 else np.float64
        value = t(r.item())
        if std > 0.0:
            count = t(idx)
            with np.errstate(over="ignore", invalid="ignore"):
                value = (value * count + t(params.init_std_alpha) * t(std)) / (count + t(1))
            self._buffers["input_range_update_idx"].numpy()[k] += 1
        r.detach().fill_(float(abs(value)))

    def _scaled_input(self, xi: np.ndarray, r: float) -> np.ndarray:
        """``clip(x, -|r|, |r|) / r``, with the analog-bias column (input 1) appended.

        A learned range can turn negative; aihwkit then clips to ``|r|`` and divides (and
        scales the outputs) by ``r`` itself, which flips the tile's inputs: replicated."""
        a = abs(r)
        return self._input((np.clip(xi, -a, a) / r).astype(self.dtype, copy=False))

    def _forward_ranged(self, x: np.ndarray, scales: list) -> tuple[np.ndarray, tuple]:
        """Forward pass with an input range per tile."""
        is_test = not self.training
        # set by a convolution for this call only (conv.py); the class attribute is None
        image = self.__dict__.pop("range_image", None)
        y = np.zeros((x.shape[0], self.out_size), self.dtype)
        masks, scaled, ranges, inputs = [], [], [], []
        entries = _entries(self._modules["input_range"])
        k = 0
        for (a, b), row in zip(self._in_bounds, self.tiles):
            xi = x[:, a:b]
            for (c, e), tile in zip(self._out_bounds, row):
                if not is_test:
                    idx = self._range_init_count(k)
                    if idx is not None:
                        self._init_range_from_data(
                            k, self._range_input(x, a, b) if image is None else image.image,
                            idx)
                r = entries[k].item()  # signed (see _scaled_input)
                ranges.append(r)
                scaled_input = self._scaled_input(xi, r)
                inputs.append(scaled_input)  # a torch-updated tile's gradient reads them
                yt, mask = _tile_forward(tile, scaled_input, is_test, self._samples(xi))
                masks.append(mask)
                yt = yt * r if self._alpha[k] is None else yt * (r * self._alpha[k])
                if tile.torch_autograd:
                    mask.piece = yt  # the range's autograd term reads it
                if scales:
                    scaled.append(yt)
                    yt = yt * scales[k]
                y[:, c:e] += yt
                k += 1
        return y, [x, masks, scaled, ranges, image, inputs]

    def _range_gradient(self, k: int, xi: np.ndarray, z: np.ndarray, mask, r: float,
                        image=None) -> float:
        """aihwkit's gradient of tile ``k``'s input range (``post_backward``): from the tile's
        inputs ``xi`` and their gradients ``z``, or for a convolution whose range reads its
        image (``image``, see ``rpusim.torch.conv``) from the image and its gradient."""
        params = self.rpu_config.pre_post.input_range
        z = z[:, :xi.shape[1]]
        if image is not None:
            xi, z = image.image, image.fold(z)
        terms = _range_terms(xi, z, r)
        if terms is None:
            below = np.minimum(np.where(xi >= r, z, 0.0), 0.0).sum(dtype=np.float64)
            above = np.maximum(np.where(xi <= -r, z, 0.0), 0.0).sum(dtype=np.float64)
            count = np.count_nonzero(np.abs(xi) < r) if params.decay > 0 else 0
        else:
            below, above, count = terms
        grad = below - above
        if params.gradient_relative:
            grad *= r * params.gradient_scale
        if params.manage_output_clipping and mask is not None:
            kept = 1.0 - np.count_nonzero(mask) / z.size
            grad -= (1.0 - kept) * r * (kept < params.output_min_percentage)
        if params.decay > 0:
            # np.mean's value: a float64 count over the size, correctly rounded
            inside = count / xi.size
            grad += params.decay * r * (inside > params.input_min_percentage)
        return grad

    def _backward_ranged(self, d: np.ndarray, saved: tuple, scales: list
                         ) -> tuple[np.ndarray, list]:
        """Backward pass with input ranges; appends the ranges' gradients to ``saved``."""
        x, masks, scaled, ranges, image, inputs = saved
        grad_x = np.zeros(x.shape, self.dtype)
        cut = 0  # torch-based tiles whose forward read nothing: no input gradient
        grad_scales, grad_ranges = [], []
        k = 0
        for (a, b), row in zip(self._in_bounds, self.tiles):
            xi = x[:, a:b]
            for (c, e), tile in zip(self._out_bounds, row):
                dt = d[:, c:e]
                if scales:
                    grad = (dt * scaled[k]).sum(axis=0)
                    grad_scales.append(grad if scales[k].size > 1 else grad.sum(keepdims=True))
                    dt = dt * scales[k]
                db = dt if self._alpha[k] is None else dt * self._alpha[k]
                r = ranges[k]
                if tile.torch_autograd:
                    z = self._backward_ranged_torch(k, tile, xi, dt, db, r, masks[k],
                                                    grad_ranges)
                    if z is None:
                        cut += 1
                    else:
                        grad_x[:, a:b] += z
                    k += 1
                    continue
                # a pulsed (or floating-point) update scales its inputs when the optimizer
                # runs it, with the range of that moment (aihwkit's pre_update, after the
                # digital step has moved the range); a torch-updated grid's gradient is
                # taken now
                deferred = self._modules.get("shared_weights") is None
                z = _tile_backward(tile, self._pending[k], xi if deferred else inputs[k], dt,
                                   db, masks[k])
                grad_x[:, a:b] += z[:, :b - a]
                grad_ranges.append(self._range_gradient(k, xi, z, masks[k], r, image))
                k += 1
        saved.append(grad_ranges)
        return (None if cut == len(self._flat) else grad_x), grad_scales

    def _backward_ranged_torch(self, k: int, tile: AnalogTile, xi: np.ndarray,
                               dt: np.ndarray, db: np.ndarray, r: float, saved,
                               grad_ranges: list) -> np.ndarray:
        """Backward of a torch-based tile behind input range ``r``: aihwkit differentiates
        ``y = r * tile(clamp(x, -r, r) / r)`` with autograd, so the inputs beyond the range
        get no gradient, the weight gradient takes the tile's errors ``r * d``, and the
        range's gradient is the periphery's rule plus the autograd terms of the division
        and the output scaling, ``(sum d y_piece - sum z clamp(x)) / r``, which cancel only
        when the tile's output is linear in its input (``z`` the gradient of the clamped
        inputs). Returns the input gradient; appends the range's.

        A forward that read nothing (:attr:`TorchMVMSaved.detached
        <rpusim.io_torch.TorchMVMSaved>`) cut aihwkit's graph before the range: the input
        gradient is None, and the range's gradient only the output scaling's term."""
        self._pending[k].append(tile.weight_gradient_pair(
            np.ascontiguousarray(dt * tile.dtype.type(r), dtype=tile.dtype), saved))
        z = tile.input_gradient(np.ascontiguousarray(db, dtype=tile.dtype), saved)
        if z is None:
            grad_ranges.append(np.sum(dt * saved.piece, dtype=np.float64) / r)
            return None
        n = xi.shape[1]
        a = abs(r)
        clamped = np.clip(xi, -a, a)
        # aihwkit's torch tile compares the clipped inputs with the (signed) range
        rule = self._range_gradient(k, clamped, z, saved.clipped, r)
        through = (np.sum(dt * saved.piece, dtype=np.float64)
                   - np.sum(z[:, :n] * clamped, dtype=np.float64)) / r
        grad_ranges.append(rule + through)
        return np.where(np.abs(xi) <= a, z[:, :n], 0.0).astype(self.dtype, copy=False)

    def backward_numpy(self, d: np.ndarray, saved: tuple, scales: list,
                       input_gradient: bool = True) -> tuple[np.ndarray | None, list]:
        """The tiles' backward pass: records each tile's (x, d) for the update and returns
        the input gradient (and the learned scales' gradients). Without ``input_gradient``
        the input gradient is None and the tiles' backward passes are left out where
        :meth:`plain_backward` leaves them out (an input range's gradient reads them)."""
        _require_finite(d, "d")  # before any tile's pass or pair
        if self._modules.get("input_range") is not None:
            return self._backward_ranged(d, saved, scales)
        x, masks, scaled = saved
        n_in = x.shape[1] - int(self.analog_bias)
        grad_x = None
        grad_scales = []
        k = 0
        for (a, b), row in zip(self._in_bounds, self.tiles):
            xi = x if len(self.tiles) == 1 else x[:, a:b]
            for (c, e), tile in zip(self._out_bounds, row):
                dt = d if len(row) == 1 else d[:, c:e]
                if scales:
                    grad = (dt * scaled[k]).sum(axis=0)
                    grad_scales.append(grad if scales[k].size > 1 else grad.sum(keepdims=True))
                    dt = dt * scales[k]
                db = dt if self._alpha[k] is None else dt * self._alpha[k]
                z = _tile_backward(tile, self._pending[k], xi, dt, db, masks[k], input_gradient)
                if z is not None and len(self._flat) == 1:
                    grad_x = z
                elif z is not None:
                    if grad_x is None:
                        grad_x = np.zeros((x.shape[0], n_in), self.dtype)
                    grad_x[:, a:b] += z
                k += 1
        if self.analog_bias and grad_x is not None:
            grad_x = grad_x[:, :n_in]
        return grad_x, grad_scales

    # -- optimizer side ------------------------------------------------------------------------
    def has_pending(self) -> bool:
        """Whether a backward pass stored (x, d) pairs since the last update."""
        return any(self._pending)

    def drop_pending(self) -> None:
        """Forget the stored (x, d) pairs (learning rate 0)."""
        for pending in self._pending:
            pending.clear()

    def update(self, lr: float) -> None:
        """One pulsed update per tile with all (x, d) pairs stored since the last one, in the
        order backward stored them; ``d`` is divided by the tile's weight scale."""
        for k, tile in enumerate(self._flat):
            pending = self._pending[k]
            if not pending:
                continue
            self._pending[k] = []
            if None in pending:  # forwards whose outputs did not read the weights
                pending = [pair for pair in pending if pair is not None]
                if not pending:
                    continue
            if len(pending) == 1:
                x, d = pending[0]
            else:
                x = np.concatenate([p[0] for p in pending])
                d = np.concatenate([p[1] for p in pending])
            if self.input_range is not None and not tile.torch_autograd:
                # the stored inputs are the layer's (see _backward_ranged)
                x = self._scaled_input(x, _entries(self._modules["input_range"])[k].item())
            if self._alpha[k] is not None:
                d = d / (self._alpha[k] * self._lr_scale[k])
            # the tile keeps the rate it was last updated with, as aihwkit's tiles do (set,
            # with its checks, only when it changes: a few microseconds a step)
            rate = lr * self._lr_scale[k]
            if rate != tile._learning_rate or type(rate) is not float:
                tile.learning_rate = rate
            # a split grid stores views of the layer's input and errors: copied here, the
            # tile takes its short path (which still tests them), not its conversion of any
            # array-like (a copy and a finiteness pass of its own)
            tile.update(x if x.flags.c_contiguous else np.ascontiguousarray(x),
                        d if d.flags.c_contiguous else np.ascontiguousarray(d))

    def post_update_step(self) -> None:
        """Every tile's post-update step (diffusion and decay; hardware-aware tiles: clip,
        remap, modifier draw), after each optimizer step.

        With remapping, aihwkit's tile remaps with all its output scales (weight scale times
        learned scale), keeps the result as its weight scale and sets the learned scale back
        to 1 (``set_scales``); its learning-rate compensation then follows the new scales. The
        tiles here keep the remapping scales, so the weight scale and the learned scale are
        folded into them first."""
        for k, tile in enumerate(self._flat):
            if self._remapped:
                self._fold_scales(k, tile)
            tile.post_update_step()
            if self._remapped and self.rpu_config.mapping.weight_scaling_lr_compensation:
                # torch's float32 mean, as aihwkit's set_scales
                mean = torch.from_numpy(np.ascontiguousarray(
                    tile._output_scales(False), dtype=self.dtype).reshape(-1)).mean().item()
                self._lr_scale[k] = 1.0 / mean if mean != 0 else 1.0

    def _fold_scales(self, k: int, tile: AnalogTile) -> None:
        """Fold tile ``k``'s weight scale and learned output scale into its remapping scales
        (logical weights, outputs and gradients unchanged; the learned scale restarts at 1)."""
        factor = self._alpha[k]
        learned = None
        found = self._modules.get("out_scaling_alpha")
        if found is not None:
            param = _entries(found)[k]
            learned = param.detach().numpy().astype(self.dtype)
            factor = learned if factor is None else factor * learned
        if factor is None:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            scales = tile._output_scales(False) * factor
        if not np.isfinite(scales).all():
            # aihwkit carries on here with NaN weights
            raise ValueError(
                f"the output scales of tile {k} (remapping scale times weight scale times "
                f"learned output scale) are not finite in {np.dtype(self.dtype).name}: the "
                "training run diverged (largest |learned output scale| "
                f"{np.abs(learned).max() if learned is not None else 'none'}); "
                "its scales are left as they were")
        tile._set_remap_scales(scales)
        if learned is not None:
            # a detached view shares the data and the version counter: as a fill under
            # torch.no_grad, without entering and leaving the mode
            param.detach().fill_(1.0)
        self._alpha[k] = None

    # -- weights -------------------------------------------------------------------------------
    def get_weights(self, apply_weight_scaling: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The logical weights ``tile * alpha * learned scale`` (only the tiles' own values
        with ``apply_weight_scaling=False``) and the analog bias (``None`` when the bias is
        digital or absent; the layer adds its digital bias)."""
        w = np.empty((self.out_size, self.in_size + int(self.analog_bias)), self.dtype)
        k = 0
        for (a, b), row in zip(self._in_bounds, self.tiles):
            for (c, e), tile in zip(self._out_bounds, row):
                wt = tile.get_weights()
                scale = self._tile_scale(k) if apply_weight_scaling else None
                if scale is not None:
                    wt = wt * scale.reshape(-1, 1)
                w[c:e, a:a + wt.shape[1]] = wt
                k += 1
        weight = torch.from_numpy(w)
        if self.analog_bias:
            return weight[:, :-1].clone(), weight[:, -1].clone()
        return weight, None

    def _tile_scale(self, k: int) -> np.ndarray | None:
        scale = self._alpha[k]
        if self.out_scaling_alpha is not None:
            learned = self.out_scaling_alpha[k].detach().cpu().numpy().astype(self.dtype)
            scale = learned if scale is None else scale * learned
        return scale

    def set_weights(self, weight, bias=None, apply_weight_scaling: bool = True,
                    weight_scaling_omega: float | None = None) -> None:
        """Write ``weight`` (out, in) and, with an analog bias, ``bias`` (out,) to the tiles.

        With ``weight_scaling_omega > 0`` (given here or in the mapping) every tile stores
        ``W / alpha`` with ``alpha = max|W| / omega`` over the tile (per row if columnwise),
        and learned output scales restart at 1. ``apply_weight_scaling=False`` writes the
        values as they are and keeps the scales.
        """
        w = _to_numpy(weight)
        if w.shape != (self.out_size, self.in_size):
            raise ValueError(f"weight must have shape ({self.out_size}, {self.in_size}), "
                             f"got {tuple(w.shape)}")
        if self.analog_bias:
            b = np.zeros(self.out_size) if bias is None else _to_numpy(bias)
            if b.shape != (self.out_size,):
                raise ValueError(f"bias must have shape ({self.out_size},), got {b.shape}")
            w = np.concatenate([w, b.reshape(-1, 1)], axis=1)
        omega = self._omega(weight_scaling_omega)
        extra = int(self.analog_bias)
        pieces = [np.asarray(w[c:e, a:b + extra], dtype=np.float64)
                  for a, b in self._in_bounds for c, e in self._out_bounds]
        if not all(np.isfinite(p).all() for p in pieces):
            raise ValueError("weight must be finite, got NaN or inf")
        for k, piece in enumerate(pieces):
            self._write(k, piece, omega, apply_weight_scaling)

    def _omega(self, weight_scaling_omega: float | None) -> float:
        if weight_scaling_omega is None:
            return self.rpu_config.mapping.weight_scaling_omega
        return float(weight_scaling_omega)

    def _write(self, k: int, piece: np.ndarray, omega: float, apply_weight_scaling: bool
               ) -> None:
        """Write one tile's piece with its own periphery (aihwkit's per-tile set_weights)."""
        mapping = self.rpu_config.mapping
        if not apply_weight_scaling:
            self._flat[k].set_weights(piece)
            return
        # in the tile dtype, as aihwkit scales its layers' weight tensors: the same roundings
        piece = np.asarray(piece, dtype=self.dtype)
        alpha = _weight_scale(piece, omega, mapping.weight_scaling_columnwise)
        self._flat[k].set_weights(piece if alpha is None else piece / alpha.reshape(-1, 1))
        if alpha is not None and self._remapped:
            # aihwkit's set_scales(alpha): the weight scale replaces all the tile's scales
            self._flat[k]._set_remap_scales(1.0)
        self._alpha[k] = None if alpha is None else alpha.astype(self.dtype)
        # aihwkit: 1 / mapping_scales.mean().item() (torch's float32 mean)
        self._lr_scale[k] = (1.0 / torch.from_numpy(alpha).mean().item() if alpha is not None
                             and mapping.weight_scaling_lr_compensation else 1.0)
        if self.out_scaling_alpha is not None:
            with torch.no_grad():
                self.out_scaling_alpha[k].fill_(1.0)

    def get_tile_weights(self, i: int, j: int) -> torch.Tensor:
        """The logical weights of tile ``tiles[i][j]`` (its values times its scales)."""
        k = self._index(i, j)
        w = self._flat[k].get_weights()
        scale = self._tile_scale(k)
        return torch.from_numpy(w if scale is None else w * scale.reshape(-1, 1))

    def set_tile_weights(self, i: int, j: int, weight, apply_weight_scaling: bool = True,
                         weight_scaling_omega: float | None = None) -> None:
        """Write the logical weights of tile ``tiles[i][j]`` alone (its own weight scale)."""
        k = self._index(i, j)
        tile = self._flat[k]
        w = np.asarray(_to_numpy(weight), dtype=np.float64)
        if w.shape != (tile.out_size, tile.in_size):
            raise ValueError(f"weight of tile ({i}, {j}) must have shape "
                             f"({tile.out_size}, {tile.in_size}), got {w.shape}")
        if not np.isfinite(w).all():
            raise ValueError("weight must be finite, got NaN or inf")
        self._write(k, w, self._omega(weight_scaling_omega), apply_weight_scaling)

    def _index(self, i: int, j: int) -> int:
        if not (0 <= i < len(self.in_sizes) and 0 <= j < len(self.out_sizes)):
            raise IndexError(f"tile ({i}, {j}) outside the {len(self.in_sizes)} x "
                             f"{len(self.out_sizes)} grid")
        return i * len(self.out_sizes) + j

    def remap(self, weight_scaling_omega: float | None = 1.0) -> None:
        """Rewrite the current logical weights with fresh weight scales (see
        :meth:`set_weights`)."""
        weight, bias = self.get_weights()
        omega = self.rpu_config.mapping.weight_scaling_omega if weight_scaling_omega is None \
            else weight_scaling_omega
        self.set_weights(weight, bias, weight_scaling_omega=omega)

    def get_scales(self) -> list[np.ndarray | None]:
        """The weight-scaling factors ``alpha`` of the tiles (``None``: unscaled)."""
        return [None if a is None else a.copy() for a in self._alpha]

    # -- state ---------------------------------------------------------------------------------
    def get_extra_state(self) -> dict:
        """Every tile's full state and the periphery, as tensors and strings (loadable with
        ``torch.load(..., weights_only=True)``)."""
        return {"tiles": [_state_to_torch(t.state_dict()) for t in self._flat],
                "alpha": [None if a is None else torch.from_numpy(a.copy()) for a in self._alpha],
                "lr_scale": list(self._lr_scale)}

    def set_extra_state(self, state) -> None:
        """Restore :meth:`get_extra_state` output (tile configs included); atomic."""
        if not isinstance(state, dict) or set(state) != {"tiles", "alpha", "lr_scale"}:
            raise ValueError("not the extra state of an rpusim tile grid")
        if not (len(state["tiles"]) == len(state["alpha"]) == len(state["lr_scale"])
                == len(self._flat)):
            raise ValueError(f"the state holds {len(state['tiles'])} tiles, this layer has "
                             f"{len(self._flat)}")
        states = [_state_to_numpy(s) for s in state["tiles"]]
        strict_check = getattr(self, "_keep_config", None)
        if strict_check is not None:
            states = [_with_config(s, tile, strict_check) for s, tile in zip(states, self._flat)]
        for tile, tile_state in zip(self._flat, states):
            restored = LayerTile.from_state_dict(tile_state)  # validates before anything changes
            if (restored.out_size, restored.in_size) != (tile.out_size, tile.in_size):
                raise ValueError(f"a {restored.out_size} x {restored.in_size} tile state does "
                                 f"not fit a {tile.out_size} x {tile.in_size} tile")
        for tile, tile_state in zip(self._flat, states):
            tile.load_state_dict(tile_state)
        self._alpha = [None if a is None else a.numpy().astype(self.dtype).copy()
                       for a in state["alpha"]]
        self._lr_scale = [float(v) for v in state["lr_scale"]]
        self.dtype = self._flat[0].dtype
        self._torch_dtype = _torch_dtype(self.dtype)
        self.drop_pending()
        self.bind_shared_weights()

    def __getattr__(self, name: str):
        # nn.Module's lookup of parameters, buffers and submodules first, written out: the
        # ranged path reads its input ranges, output scales and weight parameters this way,
        # dozens of times a step, and super().__getattr__ inside a try cost 1.5 us a read
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            found = d.get(store)
            if found is not None and name in found:
                return found[name]
        try:
            return super().__getattr__(name)
        except AttributeError:
            # aihwkit's ``layer.analog_module`` is the tile itself when a layer has one tile:
            # scripts read tile attributes through it (e.g. ``drift_noise_parameters``)
            flat = self.__dict__.get("_flat")
            if flat is not None and len(flat) == 1 and not name.startswith("_"):
                return getattr(flat[0], name)
            raise

    def __getstate__(self):
        # tiles travel as their state dicts (plain arrays) through pickle and deepcopy
        state = self.__dict__.copy()
        state["tiles"] = [[t.state_dict() for t in row] for row in self.tiles]
        del state["_flat"]
        state.pop("_bias_view", None)  # (a view of a parameter's storage: made again)
        if "_bound_arrays" in state:  # the weight parameters are bound again on arrival
            state["_bound_arrays"] = [None] * len(state["_bound_arrays"])
        return state

    def __setstate__(self, state):
        state = dict(state)
        state["tiles"] = [[LayerTile.from_state_dict(s) for s in row] for row in state["tiles"]]
        state["_flat"] = [t for row in state["tiles"] for t in row]
        super().__setstate__(state)
        if "_torch_update" not in state:  # pickled before the weight parameters existed
            self._torch_update, self._compensated_gradient = False, True
            self._remapped = False
            self.shared_weights = None
        self.bind_shared_weights()

    def extra_repr(self) -> str:
        grid = f"{len(self.in_sizes)}x{len(self.out_sizes)} tiles, " if len(self._flat) > 1 \
            else ""
        return (f"out_size={self.out_size}, in_size={self.in_size}, {grid}"
                f"analog_bias={self.analog_bias}, "
                f"device={type(self.rpu_config.device).__name__}")


def _weight_gradient(grid: "TileGrid", needed: bool):
    """The weight parameter's gradient of a one-tile torch-updated grid (None if not needed
    or not such a grid). The backward's (x, d) pairs are taken either way: a frozen weight
    parameter must not send them to the optimizer's pulsed update."""
    grads = grid.take_weight_gradients()
    return grads[0] if grads and needed else None


def _drop_shared_weights(module, state_dict, prefix, local_metadata) -> None:
    """State-dict hook: the tiles' weight parameters stay out (the tile states hold them)."""
    for key in [k for k in state_dict if k.startswith(prefix + "shared_weights.")]:
        del state_dict[key]


def _shared_weights_not_missing(module, incompatible_keys) -> None:
    """Load hook: the weight parameters are never in a state dict (see
    :func:`_drop_shared_weights`); their values come with the tiles' states."""
    missing = incompatible_keys.missing_keys
    missing[:] = [k for k in missing if ".shared_weights." not in f".{k}"]


def _bounds(sizes: list[int]) -> list[tuple[int, int]]:
    edges = np.cumsum([0, *sizes]).tolist()
    return list(zip(edges[:-1], edges[1:]))


def _torch_dtype(dtype) -> torch.dtype:
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


def _weight_scale(w: np.ndarray, omega: float, columnwise: bool) -> np.ndarray | None:
    """aihwkit's ``alpha = max|W| / omega`` (per row if columnwise), in ``w``'s dtype (torch
    divides a float32 tensor by a Python number in float32); 0 becomes 1."""
    if not omega or omega <= 0:
        return None
    t = w.dtype.type
    if columnwise:
        alpha = np.abs(w).max(axis=1) / t(omega)
    else:
        alpha = np.array([np.abs(w).max() / t(omega)], dtype=w.dtype)
    alpha[alpha == 0.0] = 1.0
    return alpha


def _tile_forward(tile: AnalogTile, x: np.ndarray, is_test: bool, samples: int | None):
    """One tile's forward in a layer: ``(y, what its backward reads)``, the latter the
    saturation mask (or None), or for a torch-based inference tile its saved forward
    (``samples``: see :meth:`TileGrid._samples`)."""
    if tile.torch_autograd:
        return tile.forward_saving(np.ascontiguousarray(x, dtype=tile.dtype), is_test,
                                   samples=samples)
    y = tile.forward(x, is_test)
    return y, _saturation_mask(tile, y, is_test)


def _backward_left_out(tile: AnalogTile, input_gradient: bool) -> bool:
    """Whether a layer leaves a tile's backward pass out: its input needs no gradient and
    the pass would change nothing but the tile's random stream
    (:attr:`AnalogTile.backward_changes_state`)."""
    return not input_gradient and not tile.backward_changes_state


def _tile_backward(tile: AnalogTile, pending: list, x: np.ndarray, d: np.ndarray,
                   db: np.ndarray, saved, input_gradient: bool = True) -> np.ndarray | None:
    """One tile's backward in a layer: stores the pair of its weight gradient (update) in
    ``pending`` and returns the input gradient (None, without a backward pass, where
    :func:`_backward_left_out` says so); ``d`` the errors of the tile's outputs (finite: the
    caller tests them), ``db`` those times its weight scale, ``saved`` what
    :func:`_tile_forward` returned."""
    if tile.torch_autograd:
        d = np.ascontiguousarray(d, dtype=tile.dtype)
    if _backward_left_out(tile, input_gradient):
        z = None
    elif tile.torch_autograd:
        z = tile.input_gradient(np.ascontiguousarray(db, dtype=tile.dtype), saved)
    else:
        if saved is not None:
            db = np.where(saved, 0.0, db).astype(tile.dtype, copy=False)
        z = tile.backward(db)
    pending.append(tile.weight_gradient_pair(d, saved) if tile.torch_autograd else (x, d))
    return z


def _row_major(a: np.ndarray) -> np.ndarray | None:
    """``a`` as a 2-d array whose rows, read in turn, are NumPy's order of its elements in
    a reduction (C-contiguous, or a 2-d view of whole rows' column range), else None."""
    if a.ndim >= 2 and a.flags.c_contiguous:
        return a.reshape(a.shape[0], -1)
    if (a.ndim == 2 and a.strides[1] == a.itemsize
            and a.strides[0] >= a.shape[1] * a.itemsize):
        return a
    return None


def _range_terms(x: np.ndarray, z: np.ndarray, r: float) -> tuple | None:
    """:func:`~rpusim.kernels.input_range.range_gradient_terms` of the inputs ``x`` and
    their gradients ``z`` (the same shape) where the kernel reads them in NumPy's order
    (non-empty, float, laid out row by row; :func:`_row_major`), else None (the caller
    computes them with NumPy)."""
    if (x.shape != z.shape or x.size == 0 or x.dtype.char not in "fd"
            or z.dtype.char not in "fd"):
        return None
    x2, z2 = _row_major(x), _row_major(z)
    if x2 is None or z2 is None:
        return None
    # the comparisons in the inputs' dtype, as NumPy's with a Python float
    return range_gradient_terms(x2, z2, x.dtype.type(r))


def _saturation_mask(tile: AnalogTile, y: np.ndarray, is_test: bool,
                     bias: np.ndarray | None = None):
    """Outputs at the ADC bound get no backward gradient (aihwkit's periphery, io spec §9).

    aihwkit tests the tile's raw output, before the remapping scales of hardware-aware
    training and the drift compensation, which ``y`` (the tile's forward) already carries:
    the bound is scaled alike (by their magnitudes: a learned output scale folded into them
    may have turned negative). Its C++-backed tiles test whenever ``forward.out_bound > 0``,
    also for a perfect or IDEAL forward, whose outputs are not clipped (checked on aihwkit
    1.2.0). Its torch-based tiles take the gradients of their forward instead
    (:func:`_tile_forward`). Floating-point tiles have no forward IO there.

    ``bias`` (a layer's digital bias in ``y``'s dtype, or None) is then added to ``y`` in
    place; the mask is of the values before it."""
    io = tile.rpu_config.forward
    mask = None
    if io.out_bound > 0 and not tile._forward_mvm.exact and y.size:
        bound = 0.999 * io.out_scale * io.out_bound
        scales = tile._output_scales(is_test)
        if scales is not None:
            mask = np.abs(y) >= bound * np.abs(np.asarray(scales, np.float64))
        # one call decides the common case (nothing saturates) without a temporary array,
        # and adds the bias then
        elif not at_bound_or_add(y, y.dtype.type(bound), y[0, :0] if bias is None else bias):
            return None
        else:
            mask = np.abs(y) >= bound
    if bias is not None:
        y += bias
    return mask


def _with_config(state: dict, tile: AnalogTile, strict_check: bool) -> dict:
    """``state`` with ``tile``'s current config in place of the saved one
    (``load_rpu_config=False``)."""
    current = tile.state_dict()["config"]
    saved_class = json.loads(str(state.get("config", "{}"))).get("__class__")
    current_class = json.loads(str(current))["__class__"]
    if strict_check and saved_class != current_class:
        raise ValueError(f"the saved tile config is a {saved_class}, this layer's a "
                         f"{current_class} (pass strict_rpu_config_check=False to load anyway)")
    return {**state, "config": current}


def _state_to_torch(state: dict) -> dict:
    """A tile state (str -> ndarray) as str -> tensor, strings as str."""
    out = {}
    for key, value in state.items():
        if value.dtype.kind == "U":
            out[key] = str(value)
        else:
            out[key] = torch.from_numpy(np.array(value, copy=True))
    return out


def _state_to_numpy(state: dict) -> dict:
    out = {}
    for key, value in state.items():
        if isinstance(value, str):
            out[key] = np.array(value)
        elif isinstance(value, torch.Tensor):
            out[key] = value.detach().cpu().numpy()
        else:
            raise ValueError(f"tile state entry {key!r} must be a tensor or str, got "
                             f"{type(value).__name__}")
    return out

