"""AnalogTile: the public tile. Validation, dispatch and state; the physics lives elsewhere."""

from __future__ import annotations

import copy
import math

import numpy as np

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import PulseType
from rpusim.configs.rpu import FloatingPointRPUConfig, RPUConfig
from rpusim.devices.ideal import FloatingPointDevice
from rpusim.devices.model import make_device_model
from rpusim.io import AnalogMVM
from rpusim.rng import TileRNG

__all__ = ["AnalogTile"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _check_size(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_lr(lr) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise TypeError(f"learning rate must be a real number, got {lr!r}")
    lr = float(lr)
    if not math.isfinite(lr) or lr < 0:
        raise ValueError(f"learning rate must be finite and >= 0, got {lr}")
    return lr


def _as_array(value, name: str, dtype) -> np.ndarray:
    """Cast a real numeric array-like to ``dtype``; reject complex, bool, object and strings."""
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    return arr


class AnalogTile:
    """An analog crossbar tile of ``out_size x in_size`` resistive devices.

    Parameters
    ----------
    out_size, in_size : int
        Rows (outputs) and columns (inputs) of the weight matrix.
    rpu_config : RPUConfig, optional
        Device, IO and update configuration; ``None`` means ``RPUConfig()``
        (``ConstantStepDevice``). The config is copied and validated.
    seed : int, optional
        Fixes every random draw of the tile; ``None`` draws fresh entropy.
    dtype : {numpy.float32, numpy.float64}
        Precision of weights and arithmetic.

    Notes
    -----
    A new tile's weights are uniform in [-0.1, 0.1], written through the device (clipped to
    its bounds), and its learning rate is 0.1, as aihwkit's tiles start.
    """

    def __init__(self, out_size: int, in_size: int, rpu_config: RPUConfig | None = None, *,
                 seed: int | None = None, dtype=np.float32):
        self.out_size = _check_size("out_size", out_size)
        self.in_size = _check_size("in_size", in_size)
        try:
            dt = np.dtype(dtype)
        except TypeError as err:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from err
        if dt not in _DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        self.dtype = dt
        if rpu_config is None:
            rpu_config = RPUConfig()
        if not isinstance(rpu_config, RPUConfig):
            raise TypeError(f"rpu_config must be an RPUConfig, got {type(rpu_config).__name__}")
        config = copy.deepcopy(rpu_config)
        config.validate()
        self.rpu_config = config
        self._rng = TileRNG(seed)
        self._build()
        self.learning_rate = 0.1
        self.set_weights(self._rng.generator.uniform(-0.1, 0.1, (self.out_size, self.in_size)))

    def _build(self) -> None:
        config = self.rpu_config
        exact = isinstance(config, FloatingPointRPUConfig) or isinstance(
            config.device, FloatingPointDevice)
        self._model = make_device_model(config.device, self.out_size, self.in_size, self.dtype,
                                        self._rng, config.update.pulse_type)
        self._forward_mvm = AnalogMVM(config.forward, self.out_size, self.in_size, self.dtype,
                                      self._rng, exact=exact)
        self._backward_mvm = AnalogMVM(config.backward, self.in_size, self.out_size,
                                       self.dtype, self._rng, exact=exact)

    def __repr__(self) -> str:
        return (f"AnalogTile({self.out_size}, {self.in_size}, "
                f"device={type(self.rpu_config.device).__name__}, dtype={self.dtype.name})")

    # -- input handling -----------------------------------------------------------------------
    def _batch(self, value, name: str, length: int) -> tuple[np.ndarray, bool]:
        arr = _as_array(value, name, self.dtype)
        if arr.ndim not in (1, 2) or arr.shape[-1] != length:
            raise ValueError(f"{name} must have shape ({length},) or (batch, {length}), "
                             f"got {arr.shape}")
        if arr.ndim == 1:
            return arr[None, :], True
        return arr, False

    def _matrix(self, value, name: str) -> np.ndarray:
        arr = _as_array(value, name, self.dtype)
        if arr.shape != (self.out_size, self.in_size):
            raise ValueError(f"{name} must have shape ({self.out_size}, {self.in_size}), "
                             f"got {arr.shape}")
        return arr

    # -- MVMs ---------------------------------------------------------------------------------
    def forward(self, x, is_test: bool = False) -> np.ndarray:
        """Analog MVM ``y = W x`` through the forward IO model.

        Parameters
        ----------
        x : array_like, shape (in,) or (batch, in)
        is_test : bool
            Inference mode (no state updates such as the AverageAbsMax running value).

        Returns
        -------
        ndarray, shape (out,) or (batch, out)
        """
        X, single = self._batch(x, "x", self.in_size)
        Y = self._forward_mvm(self._model.w, X, bool(is_test))
        return Y[0] if single else Y

    def backward(self, d) -> np.ndarray:
        """Analog transposed MVM ``z = W.T d`` through the backward IO model.

        Parameters
        ----------
        d : array_like, shape (out,) or (batch, out)

        Returns
        -------
        ndarray, shape (in,) or (batch, in)
        """
        D, single = self._batch(d, "d", self.out_size)
        Z = self._backward_mvm(self._model.w.T, D)
        return Z[0] if single else Z

    # -- update -------------------------------------------------------------------------------
    def update(self, x, d, lr: float | None = None) -> None:
        """Pulsed update, sample by sample as aihwkit; ideal: ``W -= lr * d.T @ x``.

        Parameters
        ----------
        x : array_like, shape (in,) or (batch, in)
        d : array_like, shape (out,) or (batch, out)
        lr : float, optional
            Learning rate of this call only (default ``self.learning_rate``). ``lr == 0``
            does nothing at all.
        """
        lr = self.learning_rate if lr is None else _check_lr(lr)
        X, x_single = self._batch(x, "x", self.in_size)
        D, d_single = self._batch(d, "d", self.out_size)
        if X.shape[0] != D.shape[0]:
            raise ValueError(f"x and d must have the same batch size, got x {X.shape} and "
                             f"d {D.shape}")
        if lr == 0:
            return
        self._model.update(X, D, lr, self.rpu_config.update)

    @property
    def learning_rate(self) -> float:
        """Default learning rate of ``update`` (finite, >= 0; 0.1 initially)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, lr: float) -> None:
        self._learning_rate = _check_lr(lr)

    def set_learning_rate(self, lr: float) -> None:
        """Set the default learning rate of ``update``."""
        self.learning_rate = lr

    def get_learning_rate(self) -> float:
        """Return the default learning rate of ``update``."""
        return self.learning_rate

    # -- weights and hidden parameters --------------------------------------------------------
    def get_weights(self) -> np.ndarray:
        """Return a copy of the effective (apparent) weights, shape (out, in)."""
        return self._model.w.copy()

    def set_weights(self, weights) -> None:
        """Program the weights (clipped to each element's bounds; write noise redrawn)."""
        self._model.set_weights(self._matrix(weights, "weights"))

    def get_hidden_parameter_names(self) -> list[str]:
        """Names of the hidden parameters, in aihwkit's order."""
        return self._model.hidden_parameter_names()

    def get_hidden_parameters(self) -> dict[str, np.ndarray]:
        """Return copies of all hidden parameters, each (out, in), ordered as the names."""
        return self._model.get_hidden_parameters()

    def set_hidden_parameters(self, params: dict) -> None:
        """Set some or all hidden parameters; atomic (validated fully before anything is set).

        Raises
        ------
        ValueError
            An unknown name (the message lists the valid ones), a wrong shape, or NaN/inf.
        """
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict of name -> array, got {type(params).__name__}")
        names = self.get_hidden_parameter_names()
        checked = {}
        for name, value in params.items():
            if name not in names:
                raise ValueError(f"unknown hidden parameter {name!r}; valid names: {names}")
            checked[name] = self._matrix(value, f"hidden parameter {name!r}")
        self._model.set_hidden_parameters(checked)

    def get_hidden_update_index(self) -> int:
        """Index of the device of a vector unit cell that receives pulses (0 otherwise)."""
        getter = getattr(self._model, "get_hidden_update_index", None)
        return getter() if getter else 0

    def set_hidden_update_index(self, index: int) -> None:
        """Select the device of a vector unit cell that receives pulses."""
        setter = getattr(self._model, "set_hidden_update_index", None)
        if setter is None:
            if index != 0:
                raise ValueError(f"a single device has only update index 0, got {index!r}")
            return
        setter(index)

    def get_pulse_counters(self) -> np.ndarray:
        """Pulses received per element (needs ``count_pulses=True`` on the device)."""
        counters = getattr(self._model, "pulse_counters", None)
        if counters is not None:
            return counters()
        if self._model.counters is None:
            raise ValueError("pulse counting is off: set count_pulses=True on the device")
        return self._model.counters.copy()

    # -- whole-matrix processes ---------------------------------------------------------------
    def decay_weights(self, alpha: float = 1.0) -> None:
        """One lifetime decay step toward the reset bias (aihwkit semantics)."""
        alpha = float(alpha)
        if not math.isfinite(alpha):
            raise ValueError(f"alpha must be finite, got {alpha}")
        self._model.decay(alpha)

    def diffuse_weights(self) -> None:
        """One diffusion step ``w += diffusion_rate * xi``, clipped."""
        self._model.diffuse()

    def drift_weights(self, delta_t: float = 1.0) -> None:
        """Power-law drift by ``delta_t`` (devices with a drift config)."""
        delta_t = float(delta_t)
        if not math.isfinite(delta_t) or delta_t < 0:
            raise ValueError(f"delta_t must be finite and >= 0, got {delta_t}")
        self._model.drift(delta_t)

    def reset_columns(self, start_column_idx: int = 0, num_columns: int = 1,
                      reset_prob: float = 1.0) -> None:
        """Reset columns ``start ... start+num-1`` (mod in_size; ``num < 0``: all) to the
        reset bias plus ``reset_std`` noise, each element with probability ``reset_prob``."""
        for name, v in (("start_column_idx", start_column_idx), ("num_columns", num_columns)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, got {v!r}")
        reset_prob = float(reset_prob)
        if not 0 <= reset_prob <= 1:
            raise ValueError(f"reset_prob must be in [0, 1], got {reset_prob}")
        self._model.reset_columns(int(start_column_idx), int(num_columns), reset_prob)

    def post_update_step(self) -> None:
        """What aihwkit's optimizer does after each step: diffusion, then decay (never drift)."""
        if self._model.requires_diffusion():
            self._model.diffuse()
        if self._model.requires_decay():
            self._model.decay(1.0)

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        from rpusim.persistence import tile_state_dict
        return tile_state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        from rpusim.persistence import load_tile_state
        load_tile_state(self, state)

    @classmethod
    def from_state_dict(cls, state: dict) -> "AnalogTile":
        from rpusim.persistence import tile_from_state_dict
        return tile_from_state_dict(cls, state)

    def save(self, path) -> None:
        """Save the full state as an ``.npz`` (no pickle)."""
        from rpusim.persistence import save_tile
        save_tile(self, path)

    @classmethod
    def load(cls, path) -> "AnalogTile":
        """Load a tile saved by :meth:`save`; a damaged or foreign file raises ``ValueError``."""
        from rpusim.persistence import load_tile
        return load_tile(cls, path)
