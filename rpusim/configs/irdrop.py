"""Time-dependent IR drop: ``IOParametersIRDropT`` and aihwkit's
``TorchInferenceRPUConfigIRDropT``.

The model itself (pulse-width inputs, Thevenin equivalents of each column over time, current
integration in the ADC) is in :mod:`rpusim.irdrop`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from rpusim.configs.enums import AnalogMVType, BoundManagementType, NoiseManagementType
from rpusim.configs.inference import TorchInferenceRPUConfig
from rpusim.configs.io import IOParameters

__all__ = ["IOParametersIRDropT", "TorchInferenceRPUConfigIRDropT"]


@dataclass
class IOParametersIRDropT(IOParameters):
    """Forward IO with time-dependent IR drop (aihwkit's fields and defaults).

    With a :class:`TorchInferenceRPUConfigIRDropT` tile, test-mode forwards (``is_test=True``)
    simulate the crossbar in time: each input is a pulse whose width is its DAC value, every
    column is reduced to a Thevenin equivalent (per ``ir_drop_segments`` groups of rows,
    joined by the wire resistance ``ir_drop * ir_drop_rs``) at each time step, and the ADC
    integrates the column current (``rpusim.irdrop``). Even columns are read at the end of
    the rows, odd columns at the start (ADCs on both sides). Training forwards have no IR
    drop. Any other tile reads these parameters as :class:`IOParameters` (the
    time-independent ``ir_drop`` model with ``ir_drop_g_ratio``) and ignores the fields below.

    Attributes
    ----------
    ir_drop : float
        Scale of the wire resistance (0 turns IR drop off); 1.0.
    ir_drop_rs : float
        Wire resistance between neighbouring cells, in Ohm; 0.15.
    ir_drop_segments : int
        Groups of rows per column in the Thevenin reduction; must divide the physical tile
        height (``mapping.max_input_size``); 8.
    ir_drop_time_step_resolution_scale : float
        Time steps relative to the DAC's pulse-width resolution (``ONE_PASS`` and
        ``SPLIT_MODE``); 1.0.
    ir_drop_v_read : float
        Read voltage of the ADC's virtual ground in the Thevenin circuit (V); 0.4005.
    split_mode_bit_shift : int
        ``SPLIT_MODE``: the low bits applied in the first phase; 3.
    apply_xdep_pcm_read_noise : bool
        Input-dependent PCM read noise on the conductances of each pass; False.
    xdep_pcm_read_noise_scale : float
        Its scale; 1.0.
    adc_quantization : bool
        The ADC counts whole oscillations of a current-controlled oscillator at
        ``adc_frequency`` (a floor of the integrated charge); True.
    adc_frequency : float
        In GHz; 6.24.
    ir_drop_integration_sum : bool
        Integrate the column current by a plain sum over the time steps instead of the
        trapezoidal rule; False.

    Notes
    -----
    ``mv_type`` may also be ``SPLIT_MODE`` (two passes: low ``split_mode_bit_shift`` bits,
    then the high bits, each through the ADC, combined digitally) or ``BIT_WISE`` (one pass
    per bit). The time-sliced tile supports what aihwkit's does: no weight read noise,
    output nonlinearity, slope calibration, voltage offsets, series resistance or read
    asymmetry, no SHIFT bound management and no AverageAbsMax or AbsMaxNPSum noise
    management (``ValueError`` otherwise).
    """

    ir_drop: float = 1.0
    ir_drop_rs: float = 0.15
    ir_drop_segments: int = 8
    ir_drop_time_step_resolution_scale: float = 1.0
    ir_drop_v_read: float = 0.4005
    split_mode_bit_shift: int = 3
    apply_xdep_pcm_read_noise: bool = False
    xdep_pcm_read_noise_scale: float = 1.0
    adc_quantization: bool = True
    adc_frequency: float = 6.24
    ir_drop_integration_sum: bool = False

    _time_sliced: ClassVar[bool] = True

    def validate(self) -> None:
        super().validate()
        for name in ("apply_xdep_pcm_read_noise", "adc_quantization", "ir_drop_integration_sum"):
            self._check_bool(name)
        self._check_int("ir_drop_segments", lo=1)
        self._check_int("split_mode_bit_shift", lo=0)
        self._check_number("ir_drop_rs", lo=0.0)
        self._check_number("ir_drop_time_step_resolution_scale", lo=0.0, lo_open=True)
        self._check_number("ir_drop_v_read")
        self._check_number("xdep_pcm_read_noise_scale", lo=0.0)
        self._check_number("adc_frequency", lo=0.0, lo_open=True)

    def check_time_sliced_support(self) -> None:
        """Refuse what the time-sliced MVM does not model (as aihwkit's torch tile)."""
        name = type(self).__name__
        if self.mv_type not in (AnalogMVType.ONE_PASS, AnalogMVType.SPLIT_MODE,
                                AnalogMVType.BIT_WISE):
            raise ValueError(f"{name}.mv_type must be ONE_PASS, SPLIT_MODE or BIT_WISE for "
                             f"time-dependent IR drop, got {self.mv_type.name}")
        if self.noise_management in (NoiseManagementType.AVERAGE_ABS_MAX,
                                     NoiseManagementType.ABS_MAX_NP_SUM):
            raise ValueError(f"{name}.noise_management {self.noise_management.name} is not "
                             f"supported with time-dependent IR drop")
        if self.bound_management == BoundManagementType.SHIFT:
            raise ValueError(f"{name}.bound_management SHIFT is not supported")
        unsupported = [f for f in ("w_noise", "out_nonlinearity", "slope_calibration",
                                   "v_offset_std", "r_series", "w_read_asymmetry_dtod")
                       if getattr(self, f) > 0]
        if unsupported or self.w_noise_type.name != "NONE":
            raise ValueError(f"{name}: time-dependent IR drop models no weight read noise, "
                             f"output nonlinearity, slope calibration, voltage offsets, "
                             f"series resistance or read asymmetry; set to 0 (and "
                             f"w_noise_type NONE): {unsupported or ['w_noise_type']}")


@dataclass
class TorchInferenceRPUConfigIRDropT(TorchInferenceRPUConfig):
    """Inference configuration whose forward simulates time-dependent IR drop.

    ``forward`` is an :class:`IOParametersIRDropT`; test-mode forwards of a tile built from
    this configuration run the time-sliced crossbar model (:mod:`rpusim.irdrop`), with the
    physical tile height ``mapping.max_input_size`` and the conductances of
    ``noise_model.g_converter``.
    """

    forward: IOParameters = field(default_factory=IOParametersIRDropT)

    def validate(self) -> None:
        if not isinstance(self.forward, IOParametersIRDropT):
            raise TypeError(f"{type(self).__name__}.forward must be IOParametersIRDropT, got "
                            f"{type(self.forward).__name__}")
        super().validate()
        self.forward.check_time_sliced_support()
        if self.noise_model.g_converter is None:
            raise ValueError(f"{type(self).__name__}.noise_model needs a g_converter (the "
                             f"conductances of the Thevenin circuit)")
