"""Compound device configs: unit cells, the Tiki-taka family and mixed precision.

Plain dataclasses with aihwkit 1.2.0's class names, field names and Python defaults
(spec compounds §2-§9). The runtime models live in the sibling modules; a config only holds data
and validates it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import VectorUnitCellUpdatePolicy
from rpusim.configs.io import IOParameters
from rpusim.configs.update import UpdateParameters
from rpusim.devices.base import PulsedDevice

__all__ = ["VectorUnitCell", "ReferenceUnitCell", "OneSidedUnitCell", "DifferenceUnitCell",
           "TransferCompound", "BufferedTransferCompound", "ChoppedTransferCompound",
           "DynamicTransferCompound", "MixedPrecisionCompound"]


def _buffered_update() -> UpdateParameters:
    """Transfer pulses of the buffered compounds: one pulse per non-zero count, no management."""
    return UpdateParameters(desired_bl=1, update_bl_management=False, update_management=False)


def _check_sub_device(owner: ConfigBase, name: str, dev: Any) -> None:
    if not isinstance(dev, (PulsedDevice, _CompoundBase)) or isinstance(
            dev, MixedPrecisionCompound):
        raise TypeError(f"{type(owner).__name__}.{name} must hold pulsed devices or compounds "
                        f"(IdealDevice, FloatingPointDevice and MixedPrecisionCompound cannot be "
                        f"sub-devices), got {type(dev).__name__}")


def _check_float_list(owner: ConfigBase, name: str, length: int | None = None) -> list:
    value = getattr(owner, name)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{type(owner).__name__}.{name} must be a list of numbers, got {value!r}")
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{type(owner).__name__}.{name} must hold finite numbers, "
                             f"got {value!r}")
    if length is not None and value and len(value) != length:
        raise ValueError(f"{type(owner).__name__}.{name} must be empty or have one entry per "
                         f"device ({length}), got {len(value)} entries: {list(value)!r}")
    return [float(v) for v in value]


class _CompoundBase(ConfigBase):
    """Marker base of every compound config (a valid sub-device of another compound)."""


@dataclass
class VectorUnitCell(_CompoundBase):
    """Several devices per cross-point; the weight is ``W = sum_k gamma_k W_k``.

    Attributes
    ----------
    unit_cell_devices : list
        The sub-devices (pulsed devices or compounds).
    construction_seed : int
        Non-zero: seeds the device-to-device draws of all sub-devices.
    update_policy : VectorUnitCellUpdatePolicy
        ``ALL`` devices get the same coincidences; ``SINGLE_FIXED`` only the current device;
        ``SINGLE_SEQUENTIAL`` the next device before every *sample* (the first sample goes to
        ``first_update_idx + 1``); ``SINGLE_RANDOM`` a uniformly drawn device per sample.
    first_update_idx : int
        Initial current device (reset by ``set_weights`` except for ``SINGLE_FIXED``).
    gamma_vec : list of float
        Reduction weights ``gamma_k``; empty means ``1/n`` each.

    Notes
    -----
    ``set_weights(V)`` writes ``V`` into every device (``SINGLE_FIXED``: only the current one),
    so the read-back weight is ``sum(gamma) * V`` (aihwkit semantics).
    """

    _enum_fields: ClassVar[dict] = {"update_policy": VectorUnitCellUpdatePolicy}

    unit_cell_devices: list = field(default_factory=list)
    construction_seed: int = 0
    update_policy: VectorUnitCellUpdatePolicy = VectorUnitCellUpdatePolicy.ALL
    first_update_idx: int = 0
    gamma_vec: list = field(default_factory=list)

    min_devices: ClassVar[int] = 1

    def validate(self) -> None:
        super().validate()
        self._check_int("construction_seed", lo=0)
        if not isinstance(self.unit_cell_devices, (list, tuple)):
            raise TypeError(f"{type(self).__name__}.unit_cell_devices must be a list of devices, "
                            f"got {self.unit_cell_devices!r}")
        if len(self.unit_cell_devices) < self.min_devices:
            raise ValueError(f"{type(self).__name__}.unit_cell_devices must hold at least "
                             f"{self.min_devices} device(s), got {len(self.unit_cell_devices)}")
        for dev in self.unit_cell_devices:
            _check_sub_device(self, "unit_cell_devices", dev)
        self._check_int("first_update_idx", lo=0)
        n = self.n_devices()
        if self.first_update_idx >= n:
            raise ValueError(f"{type(self).__name__}.first_update_idx must be < the number of "
                             f"devices ({n}), got {self.first_update_idx}")
        _check_float_list(self, "gamma_vec", n)

    def n_devices(self) -> int:
        """Number of sub-devices the runtime model builds."""
        return len(self.unit_cell_devices)

    def device_specs(self) -> list:
        """The sub-device configs of the runtime model, in slot order."""
        return list(self.unit_cell_devices)

    def gammas(self) -> list[float]:
        """Weights of the devices in the cell's weight: ``gamma_vec``, else ``1/n`` each."""
        n = self.n_devices()
        return [float(g) for g in self.gamma_vec] if self.gamma_vec else [1.0 / n] * n


@dataclass
class ReferenceUnitCell(VectorUnitCell):
    """Device 0 minus a reference device 1: ``W = W_0 - W_1``; only device 0 is pulsed.

    Exactly two devices are used: extra devices are dropped, a single device is duplicated (with
    its own device-to-device draws). The reference starts at 0; program it with
    ``set_hidden_update_index(1)``, ``set_weights(R)``, ``set_hidden_update_index(0)`` or through
    ``hidden_weights_1``. ``set_weights(V)`` then gives ``W = V - R`` (aihwkit semantics).
    """

    update_policy: VectorUnitCellUpdatePolicy = VectorUnitCellUpdatePolicy.SINGLE_FIXED
    gamma_vec: list = field(default_factory=lambda: [1.0, -1.0])

    def n_devices(self) -> int:
        """Number of sub-devices the runtime model builds (always the two of the pair)."""
        return 2

    def device_specs(self) -> list:
        """The two sub-device configs; a single given device is used for both."""
        devs = list(self.unit_cell_devices)
        return devs[:2] if len(devs) >= 2 else devs * 2


@dataclass
class OneSidedUnitCell(_CompoundBase):
    """A pair of devices that only receive up pulses: ``W = W_1 - W_0`` (``g+`` minus ``g-``).

    A coincidence that should decrease the weight is an up pulse on ``g-`` (device 0), one that
    should increase it an up pulse on ``g+`` (device 1). Only the first device's config is used;
    device 1 is a copy with its own device-to-device draws.

    Attributes
    ----------
    unit_cell_devices : list
        One or two devices; only the first one's config is used.
    construction_seed : int
    refresh_every : int
        Refresh period in samples (times the batch size with ``units_in_mbatch``); 0 = never.
    units_in_mbatch : bool
    refresh_upper_thres, refresh_lower_thres : float
        Relative conductance thresholds that flag an element for refresh.
    refresh_forward : IOParameters
        IO of the refresh reads.
    refresh_update : UpdateParameters
        Pulse generation of the refresh writes.
    copy_inverted : bool
        Device 1 gets device 0's device-to-device parameters, mirrored (up/down steps and
        slopes swapped, bounds ``[-b_max, -b_min]``, references negated). **Differs from
        aihwkit 1.2.0**, which mirrors device 1's own draws in place (a bug, spec compounds §4).

    Notes
    -----
    The refresh write uses the sign that restores the difference for every pulse type (aihwkit
    writes the opposite sign with the dense pulse types, a bug). As in aihwkit the write is an
    ordinary managed update, so at most ``desired_bl`` pulses per element are written.
    """

    unit_cell_devices: list = field(default_factory=list)
    construction_seed: int = 0
    refresh_every: int = 0
    units_in_mbatch: bool = True
    refresh_upper_thres: float = 0.75
    refresh_lower_thres: float = 0.25
    refresh_forward: IOParameters = field(default_factory=IOParameters)
    refresh_update: UpdateParameters = field(default_factory=UpdateParameters)
    copy_inverted: bool = False

    def validate(self) -> None:
        super().validate()
        self._check_int("construction_seed", lo=0)
        if not isinstance(self.unit_cell_devices, (list, tuple)) or not (
                1 <= len(self.unit_cell_devices) <= 2):
            raise ValueError(f"{type(self).__name__}.unit_cell_devices must be a list of one or "
                             f"two devices, got {self.unit_cell_devices!r}")
        for dev in self.unit_cell_devices:
            if not isinstance(dev, PulsedDevice):
                raise TypeError(f"{type(self).__name__}.unit_cell_devices must hold single "
                                f"pulsed devices, got {type(dev).__name__}")
        self._check_int("refresh_every", lo=0)
        self._check_bool("units_in_mbatch")
        self._check_bool("copy_inverted")
        self._check_number("refresh_upper_thres")
        self._check_number("refresh_lower_thres")
        if not isinstance(self.refresh_forward, IOParameters):
            raise TypeError(f"{type(self).__name__}.refresh_forward must be IOParameters, "
                            f"got {self.refresh_forward!r}")
        if not isinstance(self.refresh_update, UpdateParameters):
            raise TypeError(f"{type(self).__name__}.refresh_update must be UpdateParameters, "
                            f"got {self.refresh_update!r}")

    def n_devices(self) -> int:
        """Number of sub-devices the runtime model builds (the positive and negative one)."""
        return 2


@dataclass
class DifferenceUnitCell(OneSidedUnitCell):
    """Deprecated alias of :class:`OneSidedUnitCell` (warns, unlike aihwkit whose hook is
    misspelled and never fires)."""

    def __post_init__(self):
        warnings.warn("DifferenceUnitCell is deprecated; use OneSidedUnitCell",
                      DeprecationWarning, stacklevel=3)


@dataclass
class TransferCompound(_CompoundBase):
    """Tiki-taka (v1): SGD pulses on a fast device A, periodic column transfers to slower ones.

    Attributes
    ----------
    unit_cell_devices : list
        At least two devices: 0 = A (receives the SGD pulses), 1 ... n-1 the slow chain.
        Devices 2 ... n-1 are built from device 1's config.
    construction_seed : int
    gamma : float
        Without ``gamma_vec``: ``gamma_k = gamma**(n-1-k)``; two devices: ``W = gamma*A + C``.
    gamma_vec : list of float
        Explicit weights (last one non-zero): ``W = sum_k gamma_vec[k] W_k``.
    transfer_every : float
        Period of the transfers out of device 0, in samples (or batches with
        ``units_in_mbatch``); 0 never transfers. Later devices: times ``out_size /
        n_reads_per_transfer`` each (aihwkit uses the out size, replicated).
    no_self_transfer : bool
        The last device never transfers onto itself.
    transfer_every_vec : list of float
        Explicit periods per device.
    units_in_mbatch : bool
        Periods count batches (``ceil(te * m)`` samples) instead of samples.
    n_reads_per_transfer : int
        Columns (rows) per transfer event.
    transfer_columns : bool
        Transfer columns (forward reads) or rows (backward reads).
    with_reset_prob : float
        Probability that the read columns of the source are reset after a read (columns only).
    random_selection : bool
        Random start column of each event, uniform. **Differs from aihwkit**, whose clamp
        makes the first and last column twice as likely (spec compounds §5.5).
    fast_lr : float
        Pulse-count learning rate of the SGD pulses on A (``<= 0``: the SGD ``lr``).
    scale_fast_lr : bool
        Multiply ``fast_lr`` by the SGD ``lr`` (aihwkit 1.2.0).
    transfer_lr : float
    transfer_lr_vec : list of float
        Transfer learning rate per source device (default ``transfer_lr`` each).
    scale_transfer_lr : bool
        Multiply the transfer learning rate by the SGD ``lr``.
    transfer_forward : IOParameters
        IO of the transfer reads; noise and bound management are forced off. The default
        read is noisy and coarse (``out_noise`` 0.06, ADC step about 0.047).
    transfer_update : UpdateParameters
        Pulse generation of the transfer writes.

    Notes
    -----
    rpusim never aliases the tile weight with the last device (aihwkit does when
    ``gamma == 0``): ``W = sum_k gamma_k W_k`` always, and every hidden weight is settable.
    ``set_weights(V)`` zeroes every device and writes ``V / gamma_last`` into the last one.
    """

    unit_cell_devices: list = field(default_factory=list)
    construction_seed: int = 0
    gamma: float = 0.0
    gamma_vec: list = field(default_factory=list)
    transfer_every: float = 1.0
    no_self_transfer: bool = True
    transfer_every_vec: list = field(default_factory=list)
    units_in_mbatch: bool = True
    n_reads_per_transfer: int = 1
    transfer_columns: bool = True
    with_reset_prob: float = 0.0
    random_selection: bool = False
    fast_lr: float = 1.0
    transfer_lr: float = 1.0
    transfer_lr_vec: list = field(default_factory=list)
    scale_transfer_lr: bool = True
    scale_fast_lr: bool = True
    transfer_forward: IOParameters = field(default_factory=IOParameters)
    transfer_update: UpdateParameters = field(default_factory=UpdateParameters)

    max_devices: ClassVar[int | None] = None

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        self._check_int("construction_seed", lo=0)
        if not isinstance(self.unit_cell_devices, (list, tuple)) or len(
                self.unit_cell_devices) < 2:
            raise ValueError(f"{name}.unit_cell_devices must hold at least 2 devices, "
                             f"got {self.unit_cell_devices!r}")
        if self.max_devices is not None and len(self.unit_cell_devices) != self.max_devices:
            raise ValueError(f"{name}.unit_cell_devices must hold exactly {self.max_devices} "
                             f"devices, got {len(self.unit_cell_devices)}")
        for dev in self.unit_cell_devices:
            _check_sub_device(self, "unit_cell_devices", dev)
        n = len(self.unit_cell_devices)
        self._check_number("gamma")
        gv = _check_float_list(self, "gamma_vec", n)
        if gv and gv[-1] == 0:
            raise ValueError(f"{name}.gamma_vec: the last weight must be non-zero, got {gv!r}")
        self._check_number("transfer_every")
        _check_float_list(self, "transfer_every_vec", n)
        _check_float_list(self, "transfer_lr_vec", n)
        for b in ("no_self_transfer", "units_in_mbatch", "transfer_columns", "random_selection",
                  "scale_transfer_lr", "scale_fast_lr"):
            self._check_bool(b)
        self._check_int("n_reads_per_transfer", lo=1)
        self._check_number("with_reset_prob", lo=0.0, hi=1.0)
        if self.with_reset_prob > 0 and not self.transfer_columns:
            raise ValueError(f"{name}.with_reset_prob > 0 needs transfer_columns=True (reset is "
                             f"only implemented for column transfer), got "
                             f"{self.with_reset_prob}")
        for f in ("fast_lr", "transfer_lr"):
            self._check_number(f)
        if not isinstance(self.transfer_forward, IOParameters):
            raise TypeError(f"{name}.transfer_forward must be IOParameters, "
                            f"got {self.transfer_forward!r}")
        if not isinstance(self.transfer_update, UpdateParameters):
            raise TypeError(f"{name}.transfer_update must be UpdateParameters, "
                            f"got {self.transfer_update!r}")

    def n_devices(self) -> int:
        """Number of sub-devices the runtime model builds (fast device first)."""
        return len(self.unit_cell_devices)

    def device_specs(self) -> list:
        """The sub-device configs in slot order; slots beyond the second repeat the second."""
        devs = list(self.unit_cell_devices)
        return devs[:2] + [devs[1]] * (len(devs) - 2)

    def gammas(self, dtype=float) -> list[float]:
        """``gamma_k``; from ``gamma``: its power ``n-1-k`` taken in double precision of the
        dtype-rounded ``gamma`` (as aihwkit's ``pow`` does), ``0**0 = 1``."""
        n = self.n_devices()
        if self.gamma_vec:
            return [float(g) for g in self.gamma_vec]
        g = float(np.dtype(dtype).type(self.gamma))
        return [g ** (n - 1 - k) for k in range(n)]


@dataclass
class BufferedTransferCompound(TransferCompound):
    """Tiki-taka v2: transfers accumulate in a digital buffer before pulsing the next device.

    Attributes (besides :class:`TransferCompound`'s)
    ------------------------------------------------
    thres_scale : float
        Buffer threshold in units of the *target* device's granularity.
    step : float
        Step of one transfer write in units of the target granularity.
    momentum : float
        Fraction of the buffer kept after a write (``forget_buffer``), else the fraction of
        the written amount that is *not* subtracted.
    forget_buffer : bool
    """

    transfer_update: UpdateParameters = field(default_factory=_buffered_update)
    thres_scale: float = 1.0
    step: float = 1.0
    momentum: float = 0.1
    forget_buffer: bool = True

    def validate(self) -> None:
        super().validate()
        self._check_number("thres_scale", lo=0.0, lo_open=True)
        self._check_number("step")
        self._check_number("momentum")
        self._check_bool("forget_buffer")


@dataclass
class ChoppedTransferCompound(TransferCompound):
    """Tiki-taka v3: chopped gradient accumulation on A, buffered transfer to C (two devices).

    Attributes (besides :class:`TransferCompound`'s)
    ------------------------------------------------
    in_chop_prob : float
        Input chopper switch probability per transfer (regular mode: period
        ``max(ceil(1/p), 2)`` sweeps); 0 disables chopping.
    in_chop_random : bool
    out_chop_prob : float
        Output chopper flip probability per element after each full sweep.
    buffer_granularity, auto_granularity : float
        Buffer threshold in units of A's granularity, and its automatic scaling.
    step, momentum, forget_buffer, no_buffer : float, float, bool, bool
    auto_scale, auto_momentum : bool, float
        Scale the SGD pulse-count LR by running means of ``max|x|`` and ``max|d|``.
    correct_gradient_magnitudes : bool

    Notes
    -----
    The weight is ``W = gamma_0 * (chi o A) + gamma_1 * C`` with the chopper sign ``chi`` of
    each element. **Differs from aihwkit 1.2.0**, whose CPU code takes the signs from
    mis-indexed choppers (and from 1.1.0, which does not de-chop at all), spec compounds §7.
    """

    units_in_mbatch: bool = False
    scale_fast_lr: bool = False
    transfer_update: UpdateParameters = field(default_factory=_buffered_update)
    in_chop_prob: float = 0.1
    in_chop_random: bool = True
    out_chop_prob: float = 0.0
    buffer_granularity: float = 1.0
    auto_granularity: float = 0.0
    step: float = 1.0
    momentum: float = 0.0
    forget_buffer: bool = True
    no_buffer: bool = False
    auto_scale: bool = False
    auto_momentum: float = 0.99
    correct_gradient_magnitudes: bool = False

    max_devices: ClassVar[int | None] = 2

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        if self.n_reads_per_transfer != 1:
            raise ValueError(f"{name}.n_reads_per_transfer must be 1, "
                             f"got {self.n_reads_per_transfer}")
        if self.random_selection:
            raise ValueError(f"{name}.random_selection is not supported, got True")
        if self.with_reset_prob != 0:
            raise ValueError(f"{name}.with_reset_prob must be 0, got {self.with_reset_prob}")
        for f in ("in_chop_prob", "out_chop_prob"):
            self._check_number(f, lo=0.0, hi=1.0)
        for f in ("buffer_granularity", "auto_granularity", "step", "momentum"):
            self._check_number(f)
        self._check_number("auto_momentum", lo=0.0, hi=1.0)
        for b in ("in_chop_random", "forget_buffer", "no_buffer", "auto_scale",
                  "correct_gradient_magnitudes"):
            self._check_bool(b)


@dataclass
class DynamicTransferCompound(ChoppedTransferCompound):
    """Tiki-taka v4 ("AGAD"): chopped transfer of the change of A against a running mean.

    Attributes (besides :class:`ChoppedTransferCompound`'s)
    ----------------------------------------------------
    experimental_correct_accumulation : bool
    buffer_cap : float
        Buffer clip at ``buffer_cap * desired_bl`` (0: none).
    tail_weightening : float
        Weight ``min(tail_weightening / N, 1)`` of a new read in the running mean.

    Notes
    -----
    ``in_chop_prob`` must be > 0 (aihwkit's CPU accepts 0 and still chops every second sweep,
    its CUDA path refuses it). ``out_chop_prob`` is honoured (aihwkit's CPU ignores it).
    """

    in_chop_random: bool = False
    buffer_cap: float = 0.0
    tail_weightening: float = 5.0
    experimental_correct_accumulation: bool = False

    def validate(self) -> None:
        super().validate()
        if not self.in_chop_prob > 0:
            raise ValueError(f"{type(self).__name__}.in_chop_prob must be > 0, "
                             f"got {self.in_chop_prob}")
        self._check_number("buffer_cap", lo=0.0)
        self._check_number("tail_weightening", lo=0.0)
        self._check_bool("experimental_correct_accumulation")


@dataclass
class MixedPrecisionCompound(_CompoundBase):
    """Mixed precision (Nandakumar et al. 2020): digital gradient accumulator ``chi``,
    row-wise pulsed transfer of its integer part to the analog device.

    Attributes
    ----------
    device : device config
        The analog device (a pulsed device or a compound).
    construction_seed : int
    transfer_every : int
        Transfer period in batches (``transfer_every * m`` samples).
    n_rows_per_transfer : int
        Rows per transfer (``-1``: all).
    random_row : bool
        Random (uniform) start row instead of the stored pointer. aihwkit's start row favours
        the first and last row (spec compounds §9); rpusim draws uniformly.
    granularity : float
        Transfer quantum ``eps`` (0: the device's granularity when the tile is built, as in
        aihwkit; hidden parameters set later, which may re-estimate the device's ``dw_min``,
        leave it unchanged).
    transfer_lr : float
    n_x_bins, n_d_bins : int
        Dynamic quantisation of ``x`` and ``d`` before accumulation (0: off).
    stoc_round_x, stoc_round_d : bool

    Notes
    -----
    ``hidden_weights_chi`` is settable (aihwkit only reports it). With exactly one of the bin
    counts set, rpusim accumulates the full outer product (aihwkit mis-indexes ``d``).
    """

    device: Any = field(default_factory=VectorUnitCell)
    construction_seed: int = 0
    transfer_every: int = 1
    n_rows_per_transfer: int = -1
    random_row: bool = False
    granularity: float = 0.0
    transfer_lr: float = 1.0
    n_x_bins: int = 0
    n_d_bins: int = 0
    stoc_round_x: bool = True
    stoc_round_d: bool = True

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        _check_sub_device(self, "device", self.device)
        if isinstance(self.device, MixedPrecisionCompound):
            raise TypeError(f"{name}.device cannot itself be a MixedPrecisionCompound")
        self._check_int("construction_seed", lo=0)
        self._check_int("transfer_every", lo=0)
        self._check_int("n_rows_per_transfer", lo=-1)
        if self.n_rows_per_transfer == 0:
            raise ValueError(f"{name}.n_rows_per_transfer must be -1 or >= 1, got 0")
        self._check_bool("random_row")
        self._check_number("granularity", lo=0.0)
        self._check_number("transfer_lr")
        self._check_int("n_x_bins", lo=0)
        self._check_int("n_d_bins", lo=0)
        self._check_bool("stoc_round_x")
        self._check_bool("stoc_round_d")
