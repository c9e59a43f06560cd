"""``AnalogLinear``: a fully connected layer on a grid of analog tiles (aihwkit's layer)."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from rpusim.configs.rpu import RPUConfig
from rpusim.torch.base import AnalogLayerBase
from rpusim.torch.chain import AnalogStep
from rpusim.torch.mapping import TileGrid

__all__ = ["AnalogLinear", "AnalogLinearMapped"]


def layer_config(rpu_config, digital_bias: bool | None) -> RPUConfig:
    """The layer's copy of ``rpu_config`` (``RPUConfig()`` if None), with ``digital_bias``
    overriding ``mapping.digital_bias`` when given."""
    if rpu_config is None:
        rpu_config = RPUConfig()
    if not isinstance(rpu_config, RPUConfig):
        raise TypeError(f"rpu_config must be an RPUConfig, got {type(rpu_config).__name__}")
    rpu_config = copy.deepcopy(rpu_config)
    if digital_bias is not None:
        rpu_config.mapping.digital_bias = bool(digital_bias)
    return rpu_config


def init_generator(seed: int | None) -> torch.Generator | None:
    """A generator for the initial weights: seeded from ``seed``, or torch's global one."""
    return None if seed is None else torch.Generator().manual_seed(int(seed))


def torch_initial_weights(shape: tuple[int, ...], bias: bool, generator
                          ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The initial weights and bias torch's ``Linear``/``Conv`` layers draw (``reset_parameters``:
    Kaiming-uniform with ``a = sqrt(5)``, i.e. U(+-1/sqrt(fan_in)), bias U(+-1/sqrt(fan_in))),
    drawn in the same order from the same generator."""
    weight = torch.empty(shape)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if not bias:
        return weight, None
    fan_in = int(np.prod(shape[1:]))
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    b = torch.empty(shape[0])
    nn.init.uniform_(b, -bound, bound, generator=generator)
    return weight, b


def attach_tile_grid(layer: nn.Module, out_size: int, in_size: int, bias: bool, rpu_config,
                     tile_module_class, digital_bias: bool | None, seed: int | None,
                     dtype) -> None:
    """Give ``layer`` its tiles (``analog_module``), no torch ``weight``, and a digital
    ``bias`` parameter unless the bias is an analog tile column (or absent)."""
    _check_tile_module_class(tile_module_class)
    config = layer_config(rpu_config, digital_bias)
    layer.analog_module = TileGrid(out_size, in_size, config, bool(bias), seed=seed, dtype=dtype)
    layer.register_parameter("weight", None)
    if bias and not layer.analog_module.analog_bias:
        layer.bias = nn.Parameter(torch.zeros(out_size,
                                              dtype=_torch_dtype(layer.analog_module.dtype)))
    else:
        layer.register_parameter("bias", None)
    layer._has_bias = bool(bias)
    layer._seed = seed


def check_cpu_float(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} input must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_cpu:
        raise ValueError(f"{name} runs on the CPU (rpusim has no GPU build); got an input "
                         f"on {x.device}")
    if not x.is_floating_point():
        raise TypeError(f"{name} input must be a floating-point tensor, got {x.dtype}")


class AnalogLinear(AnalogLayerBase, nn.Linear):
    """A linear layer whose weights live on analog tiles (aihwkit's ``AnalogLinear``).

    Forward, backward and the pulsed update (run by :class:`~rpusim.torch.AnalogSGD`) go
    through the tiles. A layer larger than ``rpu_config.mapping.max_input_size`` x
    ``max_output_size`` is split over a grid of tiles as aihwkit splits it.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Add a bias: a digital parameter (``mapping.digital_bias``, the default, and always
        when the layer is split) or an extra analog column whose input is 1.
    rpu_config : RPUConfig, optional
        Tile configuration (copied; default ``RPUConfig()``).
    tile_module_class : None
        Accepted for aihwkit compatibility; rpusim has one tile class.
    digital_bias : bool, optional
        Overrides ``rpu_config.mapping.digital_bias`` (rpusim's addition).
    seed : int, optional
        Seeds the initial weights and every tile (rpusim's addition). ``None``: the initial
        weights come from torch's global generator as ``nn.Linear``'s do, and the tiles are
        seeded from its state, so ``torch.manual_seed`` makes a script reproducible.
    dtype : {numpy.float32, numpy.float64}
        Tile precision.

    Attributes
    ----------
    analog_module : TileGrid
        The tiles.
    bias : torch.nn.Parameter or None
        The digital bias (``None`` without bias or with an analog bias).
    weight : None
        Weights live on the tiles: use :meth:`get_weights` and :meth:`set_weights`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 rpu_config: RPUConfig | None = None, tile_module_class=None, *,
                 digital_bias: bool | None = None, seed: int | None = None, dtype=np.float32):
        nn.Module.__init__(self)
        self.in_features = _check_positive("in_features", in_features)
        self.out_features = _check_positive("out_features", out_features)
        attach_tile_grid(self, self.out_features, self.in_features, bias, rpu_config,
                         tile_module_class, digital_bias, seed, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh initial weights as ``nn.Linear`` does and write them to the tiles."""
        if not hasattr(self, "analog_module"):
            return
        weight, bias = torch_initial_weights((self.out_features, self.in_features),
                                             self._has_bias, init_generator(self._seed))
        self.set_weights(weight, bias)

    @property
    def analog_tile(self):
        """The layer's tile (a layer split over several tiles has no single one: use
        :meth:`analog_tiles`)."""
        return self.analog_module.tile

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``y = W x + b`` on the last dimension of ``x``."""
        check_cpu_float(x, type(self).__name__)
        if x.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__} expects inputs with last dimension "
                             f"{self.in_features}, got shape {tuple(x.shape)}")
        if x.dim() == 2:
            y, with_bias = self.analog_module.run(x, self.bias)
        else:
            y, with_bias = self.analog_module.run(x.reshape(-1, self.in_features), self.bias)
        if self.bias is not None and not with_bias:
            y = y + self.bias
        return y if x.dim() == 2 else y.reshape(*x.shape[:-1], self.out_features)

    def chain_step(self, shape: tuple, dtype: torch.dtype):
        """This layer as a step of an ``AnalogSequential``'s chain (:mod:`rpusim.torch.chain`)
        for a 2-d input of ``shape`` and ``dtype``: ``(step, output shape)``, or None where
        the layer's own call is needed (another input, a split or scaled grid, an override
        of :meth:`forward`)."""
        grid = self._modules["analog_module"]
        bias = self.bias
        if (type(self).forward is not AnalogLinear.forward or len(shape) != 2
                or shape[1] != self.in_features or not grid.is_plain_for(dtype, bias)):
            return None
        step = AnalogStep(grid, (grid._parameters["analog_ctx"], bias, grid.plain_weight()))
        return step, (shape[0], self.out_features)

    def chain_step_current(self, step: AnalogStep, dtype: torch.dtype) -> bool:
        """Whether :meth:`chain_step` would still make ``step`` (for the same input shape and
        ``dtype``; the caller has tested that this is the same module with the same type and
        no hooks): the same grid, parameters and weight binding, the grid still plain."""
        grid = self._modules.get("analog_module")
        return grid is step.unit and step.holds(self, grid, dtype)

    def get_weights(self, apply_weight_scaling: bool = True
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Return ``(weight, bias)``: the logical weights (out, in) and the bias (analog or
        digital; ``None`` without bias), as copies."""
        weight, bias = self.analog_module.get_weights(apply_weight_scaling)
        if self.bias is not None:
            bias = self.bias.detach().clone()
        return weight, bias

    def set_weights(self, weight, bias=None, apply_weight_scaling: bool = True,
                    weight_scaling_omega: float | None = None) -> None:
        """Program ``weight`` (out, in) into the tiles, and the bias (analog or digital).

        ``apply_weight_scaling`` and ``weight_scaling_omega`` act as in
        :meth:`TileGrid.set_weights <rpusim.torch.mapping.TileGrid.set_weights>`.
        """
        self.analog_module.set_weights(weight, bias, apply_weight_scaling, weight_scaling_omega)
        if bias is not None and self.bias is not None:
            with torch.no_grad():
                self.bias.copy_(torch.as_tensor(np.asarray(
                    bias.detach().cpu() if isinstance(bias, torch.Tensor) else bias)))

    @classmethod
    def from_digital(cls, module: nn.Linear, rpu_config=None, tile_module_class=None
                     ) -> "AnalogLinear":
        """An ``AnalogLinear`` holding the weights of ``module`` (an ``nn.Linear``)."""
        layer = cls(module.in_features, module.out_features, module.bias is not None,
                    rpu_config, tile_module_class)
        layer.set_weights(module.weight, module.bias)
        return layer

    @classmethod
    def to_digital(cls, module: "AnalogLinear", realistic: bool = False) -> nn.Linear:
        """An ``nn.Linear`` with the weights of ``module`` (exact copies)."""
        weight, bias = module.get_weights()
        digital = nn.Linear(module.in_features, module.out_features, bias is not None,
                            dtype=weight.dtype)
        with torch.no_grad():
            digital.weight.copy_(weight)
            if bias is not None:
                digital.bias.copy_(bias)
        return digital

    def extra_repr(self) -> str:
        bias = "analog" if self.analog_module.analog_bias else self.bias is not None
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={bias}")


class AnalogLinearMapped(AnalogLinear):
    """aihwkit's name for an ``AnalogLinear`` split over tiles; every rpusim layer maps."""


def _check_positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_tile_module_class(tile_module_class) -> None:
    if tile_module_class not in (None, TileGrid):
        raise ValueError("tile_module_class: rpusim has one tile module (TileGrid); pass None")


def _torch_dtype(dtype) -> torch.dtype:
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
