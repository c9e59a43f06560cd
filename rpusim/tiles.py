"""Tile modules: an :class:`~rpusim.AnalogTile` behind aihwkit's tile-module interface.

aihwkit's tiles (``aihwkit.simulator.tiles``) are torch modules: they take and return tensors,
``get_weights()`` returns ``(weight, bias)``, ``get_hidden_parameters()`` an ordered dict of
tensors, ``state_dict(destination)`` fills a dict, and the simulator tile underneath is
``.tile``. :class:`TileModule` offers that interface around rpusim's one tile class (its
``.tile``), so scripts that build tiles the aihwkit way (``rpu_config.tile_class(out, in,
rpu_config)``) carry over. The aihwkit class names (``FloatingPointTile``, ``InferenceTile``,
``TorchTransferTile``, ...) are tile modules whose default configuration matches the name.

PyTorch is needed only to call them (tensors out); importing this module does not load it.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np

from rpusim import configs
from rpusim.compounds import TransferCompound
from rpusim.tile import AnalogTile

__all__ = ["TileModule", "FloatingPointTile", "InferenceTile", "InferenceTileWithPeriphery",
           "TorchInferenceTile", "TorchTransferTile", "program_by_pulses"]

_STATE_KEY = "analog_tile_state"


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised only without torch
        raise ImportError("tile modules return torch tensors and need PyTorch: "
                          "pip install 'rpusim[torch]' (or use rpusim.AnalogTile, NumPy in "
                          "and out)") from err
    return torch


def _tensor(value):
    """NumPy arrays and scalars as tensors; anything else unchanged."""
    if isinstance(value, (np.ndarray, np.generic)):
        return _torch().from_numpy(np.array(value, copy=True))
    return value


def program_by_pulses(tile: AnalogTile, target, learning_rate: float = 0.1,
                      max_iter: int = 10000, tolerance: float = 0.01,
                      w_init: float = 0.01) -> int:
    """Write ``target`` into ``tile`` as hardware would: read and correct by pulses.

    The weights start uniform in ``[-w_init, w_init]`` (the tile's random stream); then, until
    the mean read error relative to the largest target output is below ``tolerance`` or
    ``max_iter`` rounds have run, the tile is read by forward passes of the unit vectors and
    updated with the error at ``learning_rate`` (aihwkit's realistic programming). The tile's
    learning rate is restored afterwards.

    Returns
    -------
    int
        The number of update rounds made.
    """
    target = np.asarray(target, dtype=tile.dtype)
    if target.shape != (tile.out_size, tile.in_size):
        raise ValueError(f"target must have shape {(tile.out_size, tile.in_size)}, got "
                         f"{target.shape}")
    eye = np.eye(tile.in_size, dtype=tile.dtype)
    expected = eye @ target.T
    scale = max(float(np.abs(expected).max()), float(np.finfo(tile.dtype).tiny))
    tile.set_weights(tile._rng.generator.uniform(-w_init, w_init, target.shape))
    saved = tile.get_learning_rate()
    tile.set_learning_rate(learning_rate)
    rounds = 0
    try:
        while rounds < max_iter:
            error = tile.forward(eye) - expected
            if np.abs(error).mean() / scale < tolerance:
                break
            tile.update(eye, error)
            rounds += 1
    finally:
        tile.set_learning_rate(saved)
    return rounds


def _check_device(device) -> None:
    if device is None:
        return
    torch = _torch()
    if torch.device(device).type != "cpu":
        raise ValueError(f"rpusim simulates on the CPU only; cannot move a tile to {device!r}")


class TileModule:
    """An analog tile with aihwkit's tile-module interface (tensors in and out).

    Parameters
    ----------
    out_size, in_size : int
        Outputs and inputs of the weight matrix.
    rpu_config : RPUConfig, optional
        Default: the class's ``default_rpu_config()``.
    bias : bool
        An analog bias: one more tile column whose input is always 1.
    in_trans, out_trans : bool
        Inputs (outputs) are given (returned) transposed: ``(in, batch)`` instead of
        ``(batch, in)``.
    seed : int, optional
        Seed of the tile (every random draw).

    Attributes
    ----------
    tile : AnalogTile
        The simulator tile (NumPy in and out; every tile call is available on it).
    """

    def __init__(self, out_size: int, in_size: int, rpu_config=None, bias: bool = False,
                 in_trans: bool = False, out_trans: bool = False, *, seed: int | None = None):
        if rpu_config is None:
            rpu_config = self.default_rpu_config()
        self._check_config(rpu_config)
        self.out_size = int(out_size)
        self.in_size = int(in_size)
        self.analog_bias = bool(bias)
        self.in_trans = bool(in_trans)
        self.out_trans = bool(out_trans)
        self.tile = AnalogTile(out_size, in_size + int(self.analog_bias), rpu_config, seed=seed)
        # a tile class picked on the config instance stays with the tile's copy of it
        self.tile.rpu_config.tile_class = type(self)

    @classmethod
    def default_rpu_config(cls):
        """The configuration a tile of this class gets when none is given."""
        return configs.SingleRPUConfig()

    def _check_config(self, rpu_config) -> None:
        if not isinstance(rpu_config, configs.RPUConfig):
            raise TypeError(f"rpu_config must be an RPUConfig, got {type(rpu_config).__name__}")

    @property
    def rpu_config(self):
        """The tile's (validated) configuration."""
        return self.tile.rpu_config

    @property
    def device(self):
        """Where the tensors live: always the CPU."""
        return _torch().device("cpu")

    is_cuda = False

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(out_size={self.out_size}, in_size={self.in_size}, "
                f"bias={self.analog_bias}, tile={self.tile!r})")

    # -- tensors in and out -------------------------------------------------------------------
    @staticmethod
    def _array(value, trans: bool = False) -> np.ndarray:
        """A tensor or array-like as a NumPy array (transposed if ``trans``)."""
        if hasattr(value, "detach") and not isinstance(value, np.ndarray):
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        return arr.T if trans else arr

    def _x(self, x_input) -> np.ndarray:
        """Inputs ``(batch, in)``, with the constant 1 of an analog bias appended."""
        arr = self._array(x_input, self.in_trans)
        if self.analog_bias:
            arr = np.concatenate([arr, np.ones(arr.shape[:-1] + (1,), arr.dtype)], axis=-1)
        return arr

    def _outputs(self, y: np.ndarray, like, trans: bool):
        y = y.T if trans else y
        out = _torch().from_numpy(np.ascontiguousarray(y))
        dtype = getattr(like, "dtype", None)
        if dtype is not None and getattr(dtype, "is_floating_point", False):
            out = out.to(dtype)
        return out

    def forward(self, x_input, tensor_view=None, is_test: bool = False):
        """Analog MVM of a batch ``(batch, in)`` (or ``(in,)``), returns a tensor."""
        del tensor_view
        y = self.tile.forward(self._x(x_input), is_test)
        return self._outputs(y, x_input, self.out_trans)

    __call__ = forward

    def backward(self, d_input, tensor_view=None):
        """Transposed analog MVM of a batch ``(batch, out)``; returns ``(batch, in)``."""
        del tensor_view
        z = self.tile.backward(self._array(d_input, self.out_trans))
        if self.analog_bias:
            z = z[..., :-1]
        return self._outputs(z, d_input, self.in_trans)

    def update(self, x_input, d_input) -> None:
        """Pulsed update ``W -= lr * d.T @ x`` with the tile's learning rate."""
        self.tile.update(self._x(x_input), self._array(d_input, self.out_trans))

    # -- learning rate, weights, hidden parameters --------------------------------------------
    def set_learning_rate(self, learning_rate: float) -> None:
        """Set the learning rate of ``update``."""
        self.tile.set_learning_rate(learning_rate)

    def get_learning_rate(self) -> float:
        """The learning rate of ``update``."""
        return self.tile.get_learning_rate()

    def get_weights(self, *_args, **_kwargs):
        """``(weight, bias)`` tensors, ``bias`` ``None`` without an analog bias."""
        w = _torch().from_numpy(self.tile.get_weights())
        if self.analog_bias:
            return w[:, :-1].clone(), w[:, -1].clone()
        return w, None

    def set_weights(self, weight, bias=None, apply_weight_scaling: bool = False,
                    realistic: bool = False) -> None:
        """Program ``weight`` (``(out, in)``) and, with an analog bias, ``bias`` (``(out,)``).

        ``realistic`` writes them by read-and-correct pulses (:func:`program_by_pulses`)
        instead of directly. A tile module has no weight scaling of its own (the layers'
        mapping does that), so ``apply_weight_scaling`` changes nothing.
        """
        del apply_weight_scaling
        w = self._array(weight).astype(float)
        if self.analog_bias:
            b = np.zeros(self.out_size) if bias is None else np.ravel(
                self._array(bias))
            w = np.concatenate([w, b.reshape(-1, 1)], axis=1)
        elif bias is not None:
            raise ValueError("this tile has no analog bias (build it with bias=True)")
        if realistic:
            program_by_pulses(self.tile, w)
        else:
            self.tile.set_weights(w)

    def get_hidden_parameters(self) -> "OrderedDict":
        """The hidden parameters as an ordered dict of tensors (aihwkit's names and order)."""
        return OrderedDict((k, _tensor(v)) for k, v in self.tile.get_hidden_parameters().items())

    def set_hidden_parameters(self, ordered_parameters) -> None:
        """Set some or all hidden parameters (tensors or arrays)."""
        self.tile.set_hidden_parameters({k: self._array(v)
                                         for k, v in dict(ordered_parameters).items()})

    def get_hidden_parameter_names(self) -> list[str]:
        """Names of the hidden parameters."""
        return self.tile.get_hidden_parameter_names()

    # -- state --------------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix: str = "", keep_vars: bool = False) -> dict:
        """Put the full tile state under ``prefix + "analog_tile_state"`` in ``destination``
        (a new dict by default) and return it, as a torch module's ``state_dict``."""
        del keep_vars
        if destination is None:
            destination = OrderedDict()
        destination[prefix + _STATE_KEY] = self.tile.state_dict()
        return destination

    def load_state_dict(self, state_dict, strict: bool = True, prefix: str = "") -> None:
        """Restore the state written by :meth:`state_dict` (config and sizes included).

        Raises
        ------
        ValueError
            No tile state in ``state_dict`` (``strict``), or a damaged one.
        """
        state = state_dict.get(prefix + _STATE_KEY)
        if state is None:
            if strict:
                raise ValueError(f"no {prefix + _STATE_KEY!r} entry in the state dict; keys: "
                                 f"{sorted(state_dict)[:10]}")
            return
        self.tile.load_state_dict(state)

    # -- devices ------------------------------------------------------------------------------
    def cpu(self) -> "TileModule":
        """The tile itself (it is on the CPU)."""
        return self

    def cuda(self, device=None) -> "TileModule":
        """rpusim has no CUDA build: always raises ``ValueError``."""
        raise ValueError(f"rpusim simulates on the CPU only; cannot move a tile to CUDA "
                         f"({device!r})")

    def to(self, *args, **kwargs) -> "TileModule":
        """Accept ``to("cpu")``/``to(device="cpu")`` (a no-op); any other device raises."""
        for arg in (*args, kwargs.get("device")):
            if isinstance(arg, str) or type(arg).__name__ == "device":
                _check_device(arg)
        return self

    def __getattr__(self, name: str):
        """Everything else of the simulator tile (``post_update_step``, ``drift_weights``,
        ``alpha``, ...), with array results as tensors."""
        if name == "tile":  # not built yet: no recursion through __getattr__
            raise AttributeError(name)
        value = getattr(self.tile, name)
        if callable(value):
            def call(*args, **kwargs):
                return _tensor(value(*args, **kwargs))
            call.__doc__ = value.__doc__
            return call
        return _tensor(value)

    def __deepcopy__(self, memo):
        clone = type(self).__new__(type(self))
        memo[id(self)] = clone
        for key, value in self.__dict__.items():
            setattr(clone, key, copy.deepcopy(value, memo))
        return clone


class FloatingPointTile(TileModule):
    """A tile module for exact floating-point MVMs and updates (``FloatingPointRPUConfig``)."""

    @classmethod
    def default_rpu_config(cls):
        return configs.FloatingPointRPUConfig()


class TorchTransferTile(TileModule):
    """A tile module of a transfer compound (Tiki-taka family: ``TransferCompound``,
    ``ChoppedTransferCompound``, ``DynamicTransferCompound``, ...).

    aihwkit implements these in torch; rpusim runs them on its one tile class, so this is a
    tile module that checks its configuration holds a transfer compound.
    """

    @classmethod
    def default_rpu_config(cls):
        return configs.UnitCellRPUConfig(device=configs.ChoppedTransferCompound(
            unit_cell_devices=[configs.SoftBoundsReferenceDevice(),
                               configs.SoftBoundsReferenceDevice()]))

    def _check_config(self, rpu_config) -> None:
        super()._check_config(rpu_config)
        if not isinstance(rpu_config.device, TransferCompound):
            raise ValueError(f"TorchTransferTile needs a transfer compound device "
                             f"(TransferCompound or a subclass), got "
                             f"{type(rpu_config.device).__name__}")


def _inference_config_class(name: str):
    cls = getattr(configs, name, None)
    if cls is None:
        raise TypeError(f"rpusim.configs has no {name}: inference tiles need it")
    return cls


class InferenceTile(TileModule):
    """A tile module for hardware-aware training and inference (``InferenceRPUConfig``):
    programming, drift and drift compensation through the simulator tile."""

    _config_name = "InferenceRPUConfig"

    @classmethod
    def default_rpu_config(cls):
        return _inference_config_class(cls._config_name)()

    def _check_config(self, rpu_config) -> None:
        super()._check_config(rpu_config)
        expected = _inference_config_class("InferenceRPUConfig")
        if not isinstance(rpu_config, expected):
            raise TypeError(f"{type(self).__name__} needs an InferenceRPUConfig, got "
                            f"{type(rpu_config).__name__}")


class InferenceTileWithPeriphery(InferenceTile):
    """aihwkit's name for the inference tile module with its digital periphery (output
    scaling, input ranges): the same tile module in rpusim."""


class TorchInferenceTile(InferenceTile):
    """aihwkit's torch-implemented inference tile (``TorchInferenceRPUConfig``): the same tile
    module in rpusim, whose one tile class covers both."""

    _config_name = "TorchInferenceRPUConfig"


def _register_defaults() -> None:
    """Give each configuration class the tile module class its name asks for."""
    defaults = {"RPUConfig": TileModule, "FloatingPointRPUConfig": FloatingPointTile,
                "InferenceRPUConfig": InferenceTile,
                "TorchInferenceRPUConfig": TorchInferenceTile,
                "TorchInferenceRPUConfigIRDropT": TorchInferenceTile}
    for name, tile_class in defaults.items():
        config_class = getattr(configs, name, None)
        if config_class is not None:
            config_class.tile_class = tile_class


_register_defaults()
