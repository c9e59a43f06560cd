"""AnalogTile: the public tile. Validation, dispatch and state; the physics lives elsewhere."""

from __future__ import annotations

import copy
import math

import numpy as np

from rpusim.configs.enums import NoiseManagementType, PulseType
from rpusim.configs.inference import InferenceRPUConfig
from rpusim.configs.io import torch_tile_supports
from rpusim.configs.irdrop import TorchInferenceRPUConfigIRDropT
from rpusim.configs.rpu import FloatingPointRPUConfig, RPUConfig
from rpusim.devices.ideal import FloatingPointDevice
from rpusim.devices.model import make_device_model
from rpusim.hwa import HardwareAwareState, is_hardware_aware
from rpusim.inference_state import InferenceState
from rpusim.io import AnalogMVM
from rpusim.io_torch import TorchTileMVM
from rpusim.irdrop import TimeDependentIRDropMVM
from rpusim.kernels.checks import all_finite, update_magnitudes
from rpusim.rng import TileRNG

__all__ = ["AnalogTile"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT_MAX = {dt: float(np.finfo(dt).max) for dt in _DTYPES}
# the largest lr * sum over the batch of max|x| * max|d| an update accepts, per dtype
_UPDATE_LIMIT = {dt: m * 2.0 ** -30 for dt, m in _FLOAT_MAX.items()}
# enum members read once: a member lookup on the class costs ~0.2 us on the hot path
_NONE = PulseType.NONE
_NONE_WITH_DEVICE = PulseType.NONE_WITH_DEVICE


def _check_size(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be a positive int, got {type(value).__name__} {value!r:.80}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def _check_int(name: str, value) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r:.80}")
    return int(value)


def _check_real(name: str, value, lo: float | None = None, hi: float | None = None) -> float:
    """A finite real scalar (Python or NumPy; not bool) within ``[lo, hi]``."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(
            value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} "
                        f"{value!r:.80}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else f"{lo:g}"
        hi_s = "inf" if hi is None else f"{hi:g}"
        raise ValueError(f"{name} must be in [{lo_s}, {hi_s}], got {value}")
    return value


def _check_lr(lr, dtype=np.float64) -> float:
    """A learning rate: finite, >= 0, and representable in the tile dtype."""
    return _check_real("learning rate", lr, lo=0.0, hi=float(np.finfo(dtype).max))


def _as_array(value, name: str, dtype, finite: bool = True) -> np.ndarray:
    """Cast a real numeric array-like to ``dtype``; reject complex, bool, object and strings.

    ``finite=False`` leaves the NaN/inf test to the caller (who must then call
    :func:`_require_finite`), for hot paths that scan the values anyway.
    """
    if (type(value) is np.ndarray and (value.dtype is dtype or value.dtype == dtype)
            and value.flags.c_contiguous):
        out = value  # already what the kernels take: no conversion, nothing to overflow
        if out.dtype is not dtype and isinstance(dtype, np.dtype):
            # an equal dtype object that is not NumPy's own (an unpickled array's, e.g. data
            # sent to a sweep worker): a view with the canonical one, so that the hot paths'
            # identity tests take it
            out = out.view(dtype)
    else:
        if _is_tensor(value):
            value = value.detach().cpu().numpy()
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as err:
            raise ValueError(f"{name} must be a rectangular real numeric array: {err}") from err
        if arr.dtype.kind not in "iuf":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            out = np.ascontiguousarray(arr, dtype=dtype)
        if not np.isfinite(out).all() and np.isfinite(arr).all():
            raise ValueError(f"{name} must fit {np.dtype(dtype).name}, got values up to "
                             f"{np.abs(arr).max():g} (largest {np.finfo(dtype).max:g})")
    if finite:
        _require_finite(out, name)
    return out


def _is_tensor(value) -> bool:
    """A PyTorch tensor (recognised without importing torch)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _like(result: np.ndarray, given):
    """``result`` as a tensor on ``given``'s device when ``given`` is a tensor, else as is."""
    if type(given) is np.ndarray or not _is_tensor(given):
        return result
    import torch  # already loaded: ``given`` is one of its tensors
    return torch.from_numpy(np.ascontiguousarray(result)).to(given.device)


def _runtime_dtype(runtime) -> np.dtype:
    try:
        return runtime.data_type.as_numpy()
    except AttributeError as err:
        raise TypeError(f"rpu_config.runtime.data_type must be an RPUDataType, got "
                        f"{getattr(runtime, 'data_type', runtime)!r:.80}") from err


def _require_finite(arr: np.ndarray, name: str) -> None:
    # the kernel (one pass, no temporary) for the layouts the tile's calls compile it for
    if not (all_finite(arr) if arr.ndim == 2 and arr.flags.c_contiguous
            and arr.dtype.char in "fd" else np.isfinite(arr).all()):
        raise ValueError(f"{name} must be finite, got NaN or inf")


# The largest pulse count per sample the update accepts: far beyond any saturation (BL is capped
# by desired_bl), small enough that the pulse arithmetic never overflows.
_MAX_PULSE_RATIO = 2.0 ** 40
# Pulse trains of a variable bit length (fixed_bl=False, no BL management) hold ceil(lr/g) bits.
_MAX_VARIABLE_BL = 2 ** 24


def _below_nm_range(U: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """``(max|u| per row in float64, rows whose noise-management scale 1 / max|u| overflows
    dtype)`` (the product in float64 is exact for both dtypes)."""
    amax = np.abs(U).max(axis=1).astype(np.float64)
    return amax, (amax > 0) & (amax * float(np.finfo(dtype).max) < 1)


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
    dtype : {numpy.float32, numpy.float64}, optional
        Precision of weights and arithmetic; by default ``rpu_config.runtime.data_type``
        (float32 unless set to ``RPUDataType.DOUBLE``).

    Notes
    -----
    A new tile's weights are uniform in [-0.1, 0.1], written through the device (clipped to
    its bounds), and its learning rate is 0.1, as aihwkit's tiles start.

    Every array argument may also be a PyTorch tensor (any device, with or without grad); the
    MVMs then return tensors on the input's device, in the tile's precision. NumPy in, NumPy
    out otherwise. rpusim never imports torch itself: a tensor argument means it is loaded.
    """

    def __init__(self, out_size: int, in_size: int, rpu_config: RPUConfig | None = None, *,
                 seed: int | None = None, dtype=None):
        self.out_size = _check_size("out_size", out_size)
        self.in_size = _check_size("in_size", in_size)
        if dtype is None:
            runtime = getattr(rpu_config, "runtime", None)
            dtype = np.float32 if runtime is None else _runtime_dtype(runtime)
        try:
            dt = np.dtype(dtype)
        except (TypeError, ValueError) as err:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r:.80}") from err
        if dt not in _DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {dt}")
        self.dtype = dt
        if rpu_config is None:
            rpu_config = RPUConfig()
        if not isinstance(rpu_config, RPUConfig):
            raise TypeError(f"rpu_config must be an RPUConfig, got {type(rpu_config).__name__}")
        if seed is not None:
            _check_int("seed", seed)
            if seed < 0:
                raise ValueError(f"seed must be >= 0 or None, got {seed}")
        config = copy.deepcopy(rpu_config)
        config.validate()
        config.check_magnitudes(float(np.finfo(dt).max))
        self.rpu_config = config
        self._rng = TileRNG(seed)
        try:
            self._build()
            self.learning_rate = 0.1
            self.set_weights(self._rng.generator.uniform(-0.1, 0.1,
                                                         (self.out_size, self.in_size)))
        except MemoryError as err:
            raise ValueError(f"a {self.out_size} x {self.in_size} {dt.name} tile does not fit "
                             f"in memory ({err})") from err

    def _build(self) -> None:
        config = self.rpu_config
        exact = isinstance(config, FloatingPointRPUConfig) or isinstance(
            config.device, FloatingPointDevice)
        self._model = make_device_model(config.device, self.out_size, self.in_size, self.dtype,
                                        self._rng, config.update.pulse_type)
        # aihwkit's torch tile: batch-level bound management, gradients of its arithmetic
        # (rpusim.io_torch); forward IO it refuses takes the C++ tile's MVM
        self._torch_tile = (config._torch_tile and not exact and (
            isinstance(config, TorchInferenceRPUConfigIRDropT)
            or torch_tile_supports(config.forward)))
        if isinstance(config, TorchInferenceRPUConfigIRDropT):
            self._forward_mvm = TimeDependentIRDropMVM(
                config.forward, self.out_size, self.in_size, self.dtype, self._rng,
                phys_input_size=config.mapping.max_input_size,
                g_converter=config.noise_model.g_converter)
        elif self._torch_tile:
            self._forward_mvm = TorchTileMVM(config.forward, self.out_size, self.in_size,
                                             self.dtype, self._rng)
        else:
            self._forward_mvm = AnalogMVM(config.forward, self.out_size, self.in_size,
                                          self.dtype, self._rng, exact=exact)
        # aihwkit keeps one AverageAbsMax running value for both directions of a tile.
        self._backward_mvm = AnalogMVM(config.backward, self.in_size, self.out_size,
                                       self.dtype, self._rng, exact=exact, backward=True,
                                       nm_state=self._forward_mvm.nm_state)
        self._hwa = (HardwareAwareState(config, self.out_size, self.in_size, self.dtype,
                                        self._rng) if is_hardware_aware(config) else None)
        if self._torch_tile:
            self._hwa.per_forward = True
        self._inference = (InferenceState(config, (self.out_size, self.in_size), self.dtype)
                           if isinstance(config, InferenceRPUConfig) else None)

    @property
    def tile(self) -> "AnalogTile":
        """The tile itself. aihwkit's layers hold tile modules whose simulator tile is
        ``.tile``; scripts print ``next(model.analog_tiles()).tile``, and rpusim's layers
        yield the simulator tiles directly."""
        return self

    def __repr__(self) -> str:
        return (f"AnalogTile({self.out_size}, {self.in_size}, "
                f"device={type(self.rpu_config.device).__name__}, dtype={self.dtype.name})")

    # -- input handling -----------------------------------------------------------------------
    def _batch(self, value, name: str, length: int) -> tuple[np.ndarray, bool]:
        """``value`` as a 2-d batch in the tile dtype (a 1-d one as one row) and whether it was
        1-d; the callers test finiteness (their kernels scan the values anyway) and take
        arrays already in the kernels' layout straight to them."""
        arr = _as_array(value, name, self.dtype, finite=False)
        if arr.ndim not in (1, 2) or arr.shape[-1] != length:
            raise ValueError(f"{name} must have shape ({length},) or (batch, {length}), "
                             f"got {arr.shape}")
        single = arr.ndim == 1
        if single:
            arr = arr[None, :]
        return arr, single

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
            Inference mode. As in aihwkit's CPU tile it changes nothing in the IO model (the
            AverageAbsMax running value is still updated); the torch adapter passes
            ``not module.training``. With an ``InferenceRPUConfig`` and drift compensation,
            test-mode outputs are multiplied by the compensation's alpha.

        Returns
        -------
        ndarray, shape (out,) or (batch, out)

        Notes
        -----
        A ``TorchInferenceRPUConfig`` tile reads as aihwkit's torch-based tile
        (:attr:`torch_autograd`): bound management over the whole batch, and a new
        weight-modifier draw at every training forward.
        """
        if is_test is not False and not isinstance(is_test, (bool, np.bool_)):
            raise TypeError(f"is_test must be a bool, got {is_test!r:.80}")
        if (type(x) is np.ndarray and x.dtype is self.dtype and x.ndim == 2
                and x.shape[1] == self.in_size and x.flags.c_contiguous):
            return self._forward_rows(x, bool(is_test))  # already in the kernels' layout
        X, single = self._batch(x, "x", self.in_size)
        Y = self._forward_rows(X, bool(is_test))
        return _like(Y[0] if single else Y, x)

    def _forward_rows(self, X: np.ndarray, is_test: bool) -> np.ndarray:
        """:meth:`forward` of a 2-d, C-contiguous batch in the tile dtype (the layers' path:
        what the public method checks of shape and type is known here); tests finiteness."""
        hwa = self._hwa
        if self._torch_tile:
            return self.forward_saving(X, is_test, save=False)[0]
        if hwa is None:
            # the MVMs test the inputs' finiteness (own_mvm: None if not finite or not taken)
            Y = self._forward_mvm.own_mvm(self._model.w, False, X)
            if Y is None:
                Y = self._checked_mvm(self._forward_mvm, self._model.w, X, is_test, "forward")
        elif not all_finite(X):  # before the modifier draws anything
            raise ValueError("x must be finite, got NaN or inf")
        elif hwa.uses_samples(is_test) and X.shape[0] > 0:
            held = hwa.sample_weights
            try:
                Y = self._per_sample_mvm(self._forward_mvm,
                                         lambda n: hwa.draw_samples(self._model.w, n), X,
                                         is_test, "forward", transpose=False)
            except ValueError:
                hwa.sample_weights = held
                raise
            hwa.scale_outputs(Y)
        else:
            M = hwa.weights(self._model.w, is_test)
            Y = self._checked_mvm(self._forward_mvm, M, X, is_test, "forward")
            hwa.scale_outputs(Y)
        if is_test and self._inference is not None:
            Y = self._inference.scale_outputs(Y)
        return Y

    # -- aihwkit's torch tile (TorchInferenceRPUConfig): gradients of the forward -------------
    @property
    def torch_autograd(self) -> bool:
        """Whether this tile is aihwkit's torch-based inference tile, whose layers take the
        gradients of its forward's arithmetic (:meth:`forward_saving`,
        :meth:`input_gradient`, :meth:`weight_gradient_pair`) instead of the analog backward
        and ``(x, d)`` update of the other tiles (:mod:`rpusim.io_torch`)."""
        return getattr(self, "_torch_tile", False)

    @property
    def backward_changes_state(self) -> bool:
        """Whether a backward pass changes more of the tile than its random stream: with
        AverageAbsMax noise management in the backward IO, whose running value the forward
        shares. Otherwise a layer whose input needs no gradient may leave the pass out (its
        result would be discarded): the first layer of a network, whose analog backward
        aihwkit computes anyway."""
        return self._backward_mvm.params.noise_management == NoiseManagementType.AVERAGE_ABS_MAX

    def forward_saving(self, X: np.ndarray, is_test: bool, save: bool = True,
                       samples: int | None = None):
        """Forward of a torch-based inference tile (:attr:`torch_autograd`) for a 2-d,
        C-contiguous batch in the tile dtype: ``(y, saved)``, ``saved`` what
        :meth:`input_gradient` and :meth:`weight_gradient_pair` read (None unless ``save``).
        A training forward draws the weight modifier anew (aihwkit's torch tile does so at
        every forward); with ``per_batch_sample`` one draw per sample, the rows forming
        ``samples`` consecutive groups (a convolution's patches per image; default: one
        row each). Non-finite inputs or outputs raise and leave the tile unchanged."""
        if not self.torch_autograd:
            raise ValueError(f"forward_saving is for TorchInferenceRPUConfig tiles, this one "
                             f"has {type(self.rpu_config).__name__}")
        if not all_finite(X):
            raise ValueError("x must be finite, got NaN or inf")
        m = X.shape[0]
        if samples is None:
            samples = m
        elif not (isinstance(samples, int) and samples > 0 and m % samples == 0) and m:
            raise ValueError(f"samples must be a positive int dividing the batch {m}, got "
                             f"{samples!r}")
        hwa = self._hwa
        keys = self._rng.keys_drawn
        held = hwa.fb_weights, hwa.sample_weights
        M = hwa.fresh_weights(self._model.w, samples, is_test)
        if self._forward_mvm.time_sliced:
            self._forward_mvm.is_test = is_test  # IR drop acts in test mode only
        try:
            Y, saved = self._forward_mvm.run(M, X, save)
        except ValueError:
            self._rng.unkey(self._rng.keys_drawn - keys)
            hwa.fb_weights, hwa.sample_weights = held
            raise
        if not all_finite(Y):
            self._rng.unkey(self._rng.keys_drawn - keys)
            hwa.fb_weights, hwa.sample_weights = held
            raise self._overflow_error("forward", X)
        hwa.scale_outputs(Y)
        if is_test and self._inference is not None:
            Y = self._inference.scale_outputs(Y)
        return Y, saved

    def _check_errors(self, D: np.ndarray, saved) -> None:
        if D.shape != (saved.prepared.shape[0], self.out_size):
            raise ValueError(f"d must have shape ({saved.prepared.shape[0]}, {self.out_size}) "
                             f"to match its forward, got {D.shape}")

    def input_gradient(self, D: np.ndarray, saved) -> np.ndarray:
        """``dL/dx`` of the :meth:`forward_saving` call that returned ``saved``, for ``D =
        dL/dy`` of its training outputs (remapping scales included), in the tile dtype; None
        where that forward's outputs did not depend on its inputs (aihwkit's torch tile
        returns new zeros for inputs whose noise management values are all 0, which cuts
        the autograd graph: :attr:`TorchMVMSaved.detached <rpusim.io_torch.TorchMVMSaved>`)."""
        self._check_errors(D, saved)
        _require_finite(D, "d")
        return self._forward_mvm.input_gradient(saved, self._hwa.scale_errors(D, backward=True))

    def weight_gradient_pair(self, D: np.ndarray, saved) -> tuple[np.ndarray, np.ndarray] | None:
        """``(v, d')`` such that :meth:`update_gradient` ``(v, d')`` is the weight gradient of
        that forward for ``D = dL/dy``: ``v`` the prepared inputs the product read, ``d'`` the
        errors times the output's derivative and masks (before the remapping scales, which
        :meth:`update_gradient` divides by as for the other tiles). None where that forward's
        output did not depend on the weights: aihwkit's torch tile returns new zeros for
        inputs whose noise management values are all 0 (and no input noise), so its weights
        get no gradient (not a zero one) from it."""
        self._check_errors(D, saved)
        return self._forward_mvm.weight_gradient_pair(saved, D)

    def _output_scales(self, is_test: bool):
        """What :meth:`_forward_rows` multiplies the MVM's outputs by (per output, or a
        scalar), or None: the remapping scales of hardware-aware training and, in test mode,
        the drift compensation's alpha. The layers' saturation mask undoes it (aihwkit tests
        the ADC bound before any scale)."""
        scales = None
        if self._hwa is not None and self._hwa.scales is not None:
            scales = self._hwa.scales
        if is_test and self._inference is not None and self._inference.compensates:
            alpha = self._inference.alpha.astype(self.dtype)
            scales = alpha if scales is None else scales * alpha
        return scales

    def _set_remap_scales(self, scales) -> None:
        """Set the remapping scales of hardware-aware training (per output, or one value for
        all) in place; the torch layers fold their weight scales and learned output scales
        into them as aihwkit's ``set_scales`` does."""
        hwa = self._hwa
        if hwa is None or hwa.scales is None:
            raise ValueError("this tile has no remapping scales (InferenceRPUConfig with "
                             "remap.type != NONE)")
        if (type(scales) is np.ndarray and scales.dtype == self.dtype
                and scales.shape == hwa.scales.shape):
            values = scales  # the layers' folded scales (once a step): no conversion
        else:
            values = np.broadcast_to(np.asarray(scales, dtype=self.dtype).reshape(-1),
                                     hwa.scales.shape)
        if not np.isfinite(values).all():
            raise ValueError("remapping scales must be finite")
        hwa.scales[...] = values

    def backward(self, d) -> np.ndarray:
        """Analog transposed MVM ``z = W.T d`` through the backward IO model.

        The layers of a ``TorchInferenceRPUConfig`` tile take the gradient of its forward
        instead (:meth:`input_gradient`), as aihwkit's torch-based tile has no analog
        backward; this method stays the backward MVM of the C++ tiles for such a tile.

        Parameters
        ----------
        d : array_like, shape (out,) or (batch, out)

        Returns
        -------
        ndarray, shape (in,) or (batch, in)
        """
        if (type(d) is np.ndarray and d.dtype is self.dtype and d.ndim == 2
                and d.shape[1] == self.out_size and d.flags.c_contiguous):
            return self._backward_rows(d)  # already in the kernels' layout
        D, single = self._batch(d, "d", self.out_size)
        Z = self._backward_rows(D)
        return _like(Z[0] if single else Z, d)

    def _backward_rows(self, D: np.ndarray) -> np.ndarray:
        """:meth:`backward` of a 2-d, C-contiguous batch in the tile dtype; tests finiteness."""
        hwa = self._hwa
        if hwa is None:
            # the MVMs test the inputs' finiteness (own_mvm: None if not finite or not taken)
            Z = self._backward_mvm.own_mvm(self._model.w, True, D)
            if Z is None:
                Z = self._checked_mvm(self._backward_mvm, self._model.w.T, D, False, "backward")
            return Z
        if not all_finite(D):  # before the modifier draws anything
            raise ValueError("d must be finite, got NaN or inf")
        if hwa.uses_samples(False):
            return self._per_sample_mvm(self._backward_mvm, self._sample_weights,
                                        hwa.scale_errors(D, backward=True), False, "backward",
                                        transpose=True)
        return self._checked_mvm(self._backward_mvm, hwa.weights(self._model.w, False).T,
                                 hwa.scale_errors(D, backward=True), False, "backward")

    def _sample_weights(self, batch: int) -> np.ndarray:
        """The per-sample draws of the last training forward, for a backward of its batch."""
        held = self._hwa.sample_weights
        if held is None or held.shape[0] != batch:
            got = "no training forward" if held is None else f"a forward of batch {held.shape[0]}"
            raise ValueError(f"with modifier.per_batch_sample the backward reads the draws of "
                             f"the last training forward: expected d of batch {batch} to follow "
                             f"a forward of the same batch, got {got}")
        return held

    def _per_sample_mvm(self, mvm, weights_for, U: np.ndarray, is_test: bool,
                        name: str, transpose: bool) -> np.ndarray:
        """One MVM per sample ``b`` with its own weights ``weights_for(batch)[b]``; a failure
        puts back the generator and the AverageAbsMax value (as :meth:`_checked_mvm`)."""
        keys = self._rng.keys_drawn
        nm_before = self._forward_mvm.nm_state[0]
        try:
            weights = weights_for(U.shape[0])
            out = np.empty((U.shape[0], weights.shape[2 if transpose else 1]), self.dtype)
            for b in range(U.shape[0]):
                M = weights[b].T if transpose else weights[b]
                out[b] = self._checked_mvm(mvm, M, U[b:b + 1], is_test, name)[0]
        except ValueError:
            self._rng.unkey(self._rng.keys_drawn - keys)
            self._forward_mvm.nm_state[0] = nm_before
            raise
        return out

    def _checked_mvm(self, mvm, M: np.ndarray, U: np.ndarray, is_test: bool, name: str):
        """Run ``mvm``; non-finite inputs (``x`` of the forward, ``d`` of the backward) or an
        overflowing result raise and leave the tile as it was."""
        if U.shape[0] == 0:
            return np.zeros((0, M.shape[0]), self.dtype)
        # an MVM changes only the generator (by its kernel keys) and the AverageAbsMax value
        # shared by both directions (the other IO state is drawn at construction), so those
        # are all a failed call must put back
        keys = self._rng.keys_drawn
        nm_before = self._forward_mvm.nm_state[0]
        if mvm.time_sliced:
            mvm.is_test = is_test
        Y, finite = mvm.mvm_finite(M, U)
        if finite:
            return Y
        self._rng.unkey(self._rng.keys_drawn - keys)
        self._forward_mvm.nm_state[0] = nm_before
        if not all_finite(U):
            raise ValueError(f"{'x' if name == 'forward' else 'd'} must be finite, got NaN "
                             f"or inf")
        Y = self._rescaled_mvm(mvm, M, U)
        if Y is not None:
            return Y
        self._rng.unkey(self._rng.keys_drawn - keys)
        raise self._overflow_error(name, U)

    def _overflow_error(self, name: str, U: np.ndarray) -> ValueError:
        """The error of a read with finite inputs whose result is not: inputs too large for
        the weights, or vectors below the noise management's range (where this tile's read
        cannot make them scale-free)."""
        amax, below = _below_nm_range(U, self.dtype)
        tiny = amax[below]
        if tiny.size:
            return ValueError(
                f"{name} is not finite in {self.dtype.name}: {tiny.size} input vector(s) lie "
                f"below the noise management's range (largest |value| at most "
                f"{tiny.max():g}: the scale 1 / max|u| overflows; aihwkit reads such a vector "
                f"as NaN)")
        return ValueError(f"{name} overflows {self.dtype.name}: the inputs (largest |value| "
                          f"{amax.max():g}) are too large for these weights")

    def _rescaled_mvm(self, mvm, M: np.ndarray, U: np.ndarray) -> np.ndarray | None:
        """The MVM of a batch whose read failed because some vectors are so small (max |u|
        below 1 / the dtype's largest number, e.g. the errors of a log-softmax whose logits
        are 90 apart) that the noise management's input scale ``1 / max|u|`` overflows;
        ``None`` if there is no such vector or the MVM still fails.

        aihwkit forms that scale too: a zero entry of such a vector becomes ``0 * inf`` and
        its backward read NaN (without zero entries every entry clips at the bound and the
        read is finite, below 1e-38, here as there). The intended result: noise management
        makes a vector's read scale-free (the input is divided by its own max |u|, the output
        multiplied back), so such vectors are read scaled up by a power of two (exact) and
        their outputs scaled back down; the other vectors, and the random draws, are those
        of the plain call."""
        nm = mvm.params.noise_management
        if mvm.params.is_perfect or nm not in (NoiseManagementType.ABS_MAX,
                                                NoiseManagementType.ABS_MAX_NP_SUM,
                                                NoiseManagementType.MAX):
            return None
        amax, below = _below_nm_range(U, self.dtype)
        rows = np.flatnonzero(below)
        if rows.size == 0:
            return None
        exponent = np.frexp(amax[rows])[1][:, None]
        V = U.copy()
        V[rows] = np.ldexp(U[rows], -exponent)  # max |v| in [0.5, 1)
        Y, finite = mvm.mvm_finite(M, V)
        if not finite:
            return None
        Y[rows] = np.ldexp(Y[rows], exponent)
        return Y

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
        lr = self._learning_rate if lr is None else _check_lr(lr, self.dtype)
        if (type(x) is np.ndarray and type(d) is np.ndarray and x.dtype is self.dtype
                and d.dtype is self.dtype and x.ndim == 2 and d.ndim == 2
                and x.shape[1] == self.in_size and d.shape[1] == self.out_size
                and x.shape[0] == d.shape[0] and x.flags.c_contiguous
                and d.flags.c_contiguous):
            self._update_rows(x, d, lr)  # already in the kernels' layout
            return
        # finiteness is tested by the one pass over the batch that the range checks make
        X, x_single = self._batch(x, "x", self.in_size)
        D, d_single = self._batch(d, "d", self.out_size)
        if X.shape[0] != D.shape[0]:
            raise ValueError(f"x and d must have the same batch size, got x {X.shape} and "
                             f"d {D.shape}")
        self._update_rows(X, D, lr)

    def _update_rows(self, X: np.ndarray, D: np.ndarray, lr: float) -> None:
        """:meth:`update` of 2-d, C-contiguous batches of the same length in the tile dtype,
        at a checked learning rate; tests finiteness and the update's range."""
        if X.shape[0] == 0:
            return
        upd = self.rpu_config.update
        magnitudes = update_magnitudes(X, D)
        if not magnitudes[2]:
            _require_finite(X, "x")
        if not magnitudes[3]:
            _require_finite(D, "d")
        if lr == 0:
            return
        self._check_update_range(magnitudes, lr, upd)
        if self._hwa is not None:
            D = self._hwa.scale_errors(D, backward=False)
        self._model.update(X, D, lr, upd)

    def update_target(self) -> np.ndarray:
        """The array an update changes, in place (the stored weights; the persistent ones
        with write noise). Adapters may bind to it: a tile replaces it only when its whole
        state is replaced (``load_state_dict``, unpickling)."""
        stored = getattr(self._model, "_stored", None)  # pulsed models; float ones: w
        return self._model.w if stored is None else stored()

    def update_gradient(self, x, d) -> np.ndarray:
        """What a floating-point update subtracts per unit learning rate: ``d'^T x`` over the
        batch, with ``d'`` the errors the update takes (``d`` divided by the remapping scales
        of hardware-aware training). The torch layers hand it to torch's optimizer for the
        tiles that aihwkit updates that way (see ``rpusim.torch.mapping.TileGrid``).

        Parameters
        ----------
        x : array_like, shape (batch, in)
        d : array_like, shape (batch, out)

        Returns
        -------
        ndarray, shape (out, in), tile dtype
        """
        X, _ = self._batch(x, "x", self.in_size)
        D, _ = self._batch(d, "d", self.out_size)
        if X.shape[0] != D.shape[0]:
            raise ValueError(f"x and d must have the same batch size, got x {X.shape} and "
                             f"d {D.shape}")
        return self._update_gradient_rows(X, D)

    def _update_gradient_rows(self, X: np.ndarray, D: np.ndarray) -> np.ndarray:
        """:meth:`update_gradient` of 2-d batches of the same length in the tile dtype (the
        layers' stored pairs); tests finiteness."""
        _require_finite(X, "x")
        _require_finite(D, "d")
        if self._hwa is not None:
            D = self._hwa.scale_errors(D, backward=False)
        return np.ascontiguousarray(D.T @ X, dtype=self.dtype)

    def _check_update_range(self, magnitudes, lr: float, upd) -> None:
        """Refuse updates whose pulse arithmetic or float update would overflow
        (``magnitudes`` as ``update_magnitudes`` returns them).

        The limits depend on the learning rate, the granularity, the dtype and ``upd`` only:
        they are kept on ``upd`` (dropped when a field of it changes) and the usual call just
        compares; a call that fails a limit takes :meth:`_refuse_update_range` for its
        message."""
        g = float(getattr(self._model, "granularity", 0.0) or 0.0)
        limits = upd.__dict__.get("_range")
        if (limits is None or limits[0] != lr or limits[1] != g
                or limits[2] is not self.dtype):
            limits = self._update_range_limits(lr, g, upd)
            object.__setattr__(upd, "_range", limits)
        if magnitudes[0] * lr > limits[3] or magnitudes[1] * limits[4] > _MAX_PULSE_RATIO:
            self._refuse_update_range(magnitudes, lr, upd)

    def _update_range_limits(self, lr: float, g: float, upd) -> tuple:
        """``(lr, g, dtype, limit of total * lr, factor of the largest product in the pulse
        ratio)`` for :meth:`_check_update_range`; raises for the limits that do not depend
        on the batch."""
        limit = _UPDATE_LIMIT[self.dtype]
        if g <= 0 or upd.pulse_type is _NONE or upd.pulse_type is _NONE_WITH_DEVICE:
            return (lr, g, self.dtype, limit, 0.0)
        self._refuse_update_range((0.0, 0.0), lr, upd)
        return (lr, g, self.dtype, limit, lr * max(upd.um_grad_scale, 1.0) / g)

    def _refuse_update_range(self, magnitudes, lr: float, upd) -> None:
        """Raise the ``ValueError`` of the first limit the update fails, if any."""
        total, largest = magnitudes[:2]
        limit = _UPDATE_LIMIT[self.dtype]
        if total * lr > limit:
            raise ValueError(f"update too large for {self.dtype.name}: lr * sum of "
                             f"max|x| * max|d| over the batch is {total * lr:g}, "
                             f"limit {limit:g}")
        g = float(getattr(self._model, "granularity", 0.0) or 0.0)
        if g <= 0 or upd.pulse_type is _NONE or upd.pulse_type is _NONE_WITH_DEVICE:
            return
        if not upd.fixed_bl and not upd.update_bl_management and lr / g > _MAX_VARIABLE_BL:
            raise ValueError(f"update needs lr / dw_min = {lr / g:g} pulses per sample "
                             f"(fixed_bl=False), more than {_MAX_VARIABLE_BL}")
        k = largest * lr * max(upd.um_grad_scale, 1.0) / g
        if lr / g > _MAX_PULSE_RATIO or k > _MAX_PULSE_RATIO:
            raise ValueError(f"update too large: lr * max|x| * max|d| / dw_min reaches "
                             f"{max(k, lr / g):g}, limit {_MAX_PULSE_RATIO:g}")

    @property
    def learning_rate(self) -> float:
        """Default learning rate of ``update`` (finite, >= 0; 0.1 initially)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, lr: float) -> None:
        self._learning_rate = _check_lr(lr, getattr(self, "dtype", np.float64))

    def set_learning_rate(self, lr: float) -> None:
        """Set the default learning rate of ``update``."""
        self.learning_rate = lr

    def get_learning_rate(self) -> float:
        """Return the default learning rate of ``update``."""
        return self.learning_rate

    # -- weights and hidden parameters --------------------------------------------------------
    def get_weights(self) -> np.ndarray:
        """Return a copy of the effective (apparent) weights, shape (out, in).

        With an ``InferenceRPUConfig`` these are the programmed / drifted weights once
        programmed, as aihwkit returns them; :meth:`get_target_weights` gives the target.
        With weight remapping they are the logical weights ``W * s`` (per output row), as
        aihwkit returns them.
        """
        if self._hwa is not None and self._hwa.scales is not None:
            return self._model.w * self._hwa.scales[:, None]
        return self._model.w.copy()

    def set_weights(self, weights) -> None:
        """Program the weights (clipped to each element's bounds; write noise redrawn).

        With an ``InferenceRPUConfig`` the weights are the new target: the earlier
        programming, drift and alpha are forgotten (:mod:`rpusim.inference_state`).
        """
        self._model.set_weights(self._matrix(weights, "weights"))
        if self._inference is not None:
            self._inference.new_target()

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
            if not isinstance(name, str) or name not in names:
                raise ValueError(f"unknown hidden parameter {name!r}; valid names: {names}")
            checked[name] = self._matrix(value, f"hidden parameter {name!r}")
        self._model.set_hidden_parameters(checked)

    def get_hidden_update_index(self) -> int:
        """Index of the device of a vector unit cell that receives pulses (0 otherwise)."""
        getter = getattr(self._model, "get_hidden_update_index", None)
        return getter() if getter else 0

    def set_hidden_update_index(self, index: int) -> None:
        """Select the device of a vector unit cell that receives pulses."""
        index = _check_int("index", index)
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
        alpha = _check_real("alpha", alpha, -float(np.finfo(self.dtype).max),
                            float(np.finfo(self.dtype).max))
        self._atomic("decay_weights", self._model.decay, alpha)

    def diffuse_weights(self) -> None:
        """One diffusion step ``w += diffusion_rate * xi``, clipped."""
        self._atomic("diffuse_weights", self._model.diffuse)

    def drift_weights(self, delta_t: float | None = None, *,
                      t_inference: float | None = None) -> None:
        """Drift the weights; the meaning of the time depends on the config.

        Pulsed devices with a drift config: one power-law drift step by ``delta_t`` seconds
        (default 1.0; aihwkit's analog tile). ``InferenceRPUConfig``: the weights as read
        ``t_inference`` seconds after programming ended (default 0.0; absolute, not an
        increment: every call drifts the programmed weights afresh with the drift
        coefficients of the programming and new read noise); a tile never programmed is
        programmed first; with drift compensation, alpha is updated. The positional argument
        is ``delta_t`` or ``t_inference`` as the config says.

        Raises
        ------
        ValueError
            A negative or non-finite time, both keywords, or a keyword that does not fit the
            config.
        """
        if delta_t is not None and t_inference is not None:
            raise ValueError("give one time: delta_t (pulsed devices) or t_inference "
                             "(InferenceRPUConfig), not both")
        if self._inference is None:
            if t_inference is not None:
                raise ValueError("t_inference needs an InferenceRPUConfig tile; this tile "
                                 f"has {type(self.rpu_config).__name__}: use delta_t")
            delta_t = _check_real("delta_t", 1.0 if delta_t is None else delta_t, lo=0.0)
            self._atomic("drift_weights", self._model.drift, delta_t)
            return
        t = t_inference if t_inference is not None else delta_t
        t = _check_real("t_inference", 0.0 if t is None else t, lo=0.0)
        self._inference_step(lambda readout: self._inference.drift(
            self._model.w, t, self._rng, readout))

    def program_weights(self, from_reference: bool = True, noise_model=None) -> None:
        """Program the target weights with the noise model's programming noise
        (``InferenceRPUConfig`` only; aihwkit's ``program_weights``).

        The target is the current weights, or, if the tile was programmed before and
        ``set_weights`` was not called since, the same target as then (so repeated calls are
        independent programmings of one target). The weights become the programmed ones
        (what :meth:`get_weights` and every forward then read); the drift coefficients are
        drawn; with drift compensation the baseline is read out through the forward IO
        model and alpha is reset to 1. Fresh draws every call.

        Parameters
        ----------
        from_reference : bool
            ``False`` takes the current weights as the new target (aihwkit's argument).
        noise_model : BaseNoiseModel, optional
            Replaces the config's noise model from now on (aihwkit's argument).
        """
        if self._inference is None:
            raise ValueError(f"program_weights needs an InferenceRPUConfig tile, this one has "
                             f"{type(self.rpu_config).__name__}")
        if noise_model is not None:
            self._replace_noise_model(noise_model)
        if not from_reference:
            self._inference.reference = None
        self._inference_step(lambda readout: self._inference.program(
            self._model.w, self._rng, readout))

    def _replace_noise_model(self, noise_model) -> None:
        config = copy.copy(self.rpu_config)
        config.noise_model = copy.deepcopy(noise_model)
        config.validate()
        self.rpu_config.noise_model = config.noise_model
        if self._forward_mvm.time_sliced:
            # the time-dependent IR drop reads the conductances of the new converter
            self._forward_mvm.g_converter = config.noise_model.g_converter

    def _inference_step(self, step) -> None:
        """``W <- step(readout)``, ``readout(W)`` the test-mode forward of the compensation's
        inputs; on error the tile is left unchanged."""
        state = self._inference
        rng_before = self._rng.get_state()
        nm_before = self._forward_mvm.nm_state.copy()
        saved = state.snapshot()
        compensation = self.rpu_config.drift_compensation
        inputs = (None if compensation is None else
                  np.ascontiguousarray(compensation.get_readout_tensor(self.in_size, self.dtype),
                                       dtype=self.dtype))

        def readout(w):
            return self._forward_mvm.mvm(np.ascontiguousarray(w, dtype=self.dtype), inputs,
                                         is_test=True)

        try:
            w = step(readout)
        except Exception:
            self._rng.set_state(rng_before)
            self._forward_mvm.nm_state[...] = nm_before
            state.restore(saved)
            raise
        self._model.w[...] = w

    def get_target_weights(self) -> np.ndarray:
        """The target weights (``InferenceRPUConfig``): what the next
        :meth:`program_weights` programs. The target kept from the last programming, or the
        current weights if the tile was not programmed since its last ``set_weights``."""
        if self._inference is None:
            raise ValueError(f"target weights exist on InferenceRPUConfig tiles only, this "
                             f"one has {type(self.rpu_config).__name__}")
        return np.array(self._inference.target(self._model.w), copy=True)

    def get_drift_compensation_alpha(self):
        """The drift-compensation factor of test-mode outputs: a float (per-output array for
        a per-column compensation); 1.0 until a compensated drift."""
        if self._inference is None:
            raise ValueError(f"drift compensation exists on InferenceRPUConfig tiles only, "
                             f"this one has {type(self.rpu_config).__name__}")
        alpha = self._inference.alpha
        return float(alpha) if alpha.ndim == 0 else alpha.copy()

    def reset_columns(self, start_column_idx: int = 0, num_columns: int = 1,
                      reset_prob: float = 1.0) -> None:
        """Reset columns ``start ... start+num-1`` (wrapping past the last column; ``num < 0``:
        all) to the reset bias plus ``reset_std`` noise, each element with probability
        ``reset_prob``.

        Raises
        ------
        ValueError
            ``start_column_idx`` outside ``[0, in_size)``.
        """
        start = _check_int("start_column_idx", start_column_idx)
        if not 0 <= start < self.in_size:
            raise ValueError(f"start_column_idx must be in [0, {self.in_size}) (the tile's "
                             f"columns), got {start}")
        num = _check_int("num_columns", num_columns)
        num = min(num, self.in_size)
        reset_prob = _check_real("reset_prob", reset_prob, 0.0, 1.0)
        self._atomic("reset_columns", self._model.reset_columns, start, num, reset_prob)

    def _atomic(self, name: str, operation, *args) -> None:
        """Run a whole-matrix operation; if it fails or leaves a non-finite weight or hidden
        parameter, restore the tile as it was and raise."""
        from rpusim.persistence import load_tile_state, tile_state_dict

        before = tile_state_dict(self)
        try:
            operation(*args)
        except Exception:
            load_tile_state(self, before)
            raise
        values = [self._model.w, *self.get_hidden_parameters().values()]
        if not all(np.isfinite(v).all() for v in values):
            load_tile_state(self, before)
            raise ValueError(f"{name}{args} would make weights or hidden parameters "
                             "non-finite; the tile is unchanged")

    def post_update_step(self) -> None:
        """What aihwkit's optimizer does after each step: diffusion, then decay (never drift).

        With an ``InferenceRPUConfig``: clip the weights, remap them, then draw and hold the
        modified weights that training forward and backward read (see :mod:`rpusim.hwa`).
        """
        if self._model.requires_diffusion():
            self._model.diffuse()
        if self._model.requires_decay():
            self._model.decay(1.0)
        if self._hwa is not None:
            self._hwa.post_update(self._model.w)

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Return the full state (config, weights, hidden parameters, counters, IO and RNG
        state) as a flat dict of arrays; see :mod:`rpusim.persistence`."""
        from rpusim.persistence import tile_state_dict
        return tile_state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        """Make this tile hold ``state`` (from :meth:`state_dict`), config and sizes included.

        Raises
        ------
        ValueError
            A foreign or damaged state; the tile is then unchanged.
        """
        from rpusim.persistence import load_tile_state
        load_tile_state(self, state)

    @classmethod
    def from_state_dict(cls, state: dict) -> "AnalogTile":
        """Build a tile from :meth:`state_dict` output; continuing it is bit-identical to
        continuing the original."""
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
