"""Forward/backward IO parameters, as aihwkit's ``IOParameters``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import (AnalogMVType, BoundManagementType, NoiseManagementType,
                                  WeightNoiseType)

__all__ = ["IOParameters"]


@dataclass
class IOParameters(ConfigBase):
    """Non-idealities of the analog matrix-vector product (aihwkit names and Python defaults).

    Attributes
    ----------
    is_perfect : bool
        Exact floating-point MVM (only ``out_scale`` applies).
    mv_type : AnalogMVType
        ``IDEAL`` equals ``is_perfect``; ``ONE_PASS`` or the two-pass ``POS_NEG_SEPARATE*``.
    inp_bound, out_bound : float
        DAC and ADC ranges (<= 0 unbounded).
    inp_res, out_res : float
        DAC and ADC resolutions as a fraction of the full range ``2*bound`` (``1/(2**n - 2)``
        for n bits), or a number of steps if > 1; <= 0 off.
    inp_sto_round, out_sto_round : bool
        Stochastic rounding in the DAC / ADC.
    inp_noise, out_noise : float
        Additive Gaussian noise std at the input (after the DAC) and output (before the ADC).
    out_noise_std : float
        Relative per-output-line spread of ``out_noise``, drawn once.
    inp_asymmetry, out_asymmetry : float
        Negative inputs/outputs scaled by ``1 - asymmetry``.
    out_scale : float
        Digital output scale.
    noise_management : NoiseManagementType
        How the input scale is chosen; ``nm_thres`` caps it (or is the constant).
    bound_management : BoundManagementType
        Forward only: retry with reduced inputs when outputs saturate.
    max_bm_factor, max_bm_res : float
        Stop criteria of bound management.
    bm_test_negative_bound : bool
        Negative saturation also triggers bound management.
    w_noise, w_noise_type : float, WeightNoiseType
        Output-referred weight read noise.
    ir_drop, ir_drop_g_ratio : float
        IR-drop strength and wire-to-device conductance ratio.
    out_nonlinearity, out_nonlinearity_std, slope_calibration : float
        S-shaped output nonlinearity, its per-line spread and gain calibration.
    v_offset_std, v_offset_w_min, r_series : float
        Per-line voltage offsets and series resistance.
    w_read_asymmetry_dtod : float
        Per-weight read asymmetry for negative inputs (two-pass MV types).
    """

    _enum_fields: ClassVar[dict] = {
        "mv_type": AnalogMVType,
        "noise_management": NoiseManagementType,
        "bound_management": BoundManagementType,
        "w_noise_type": WeightNoiseType,
    }

    is_perfect: bool = False
    mv_type: AnalogMVType = AnalogMVType.ONE_PASS
    inp_bound: float = 1.0
    inp_res: float = 1 / (2**7 - 2)
    inp_sto_round: bool = False
    inp_noise: float = 0.0
    inp_asymmetry: float = 0.0
    out_bound: float = 12.0
    out_res: float = 1 / (2**9 - 2)
    out_sto_round: bool = False
    out_noise: float = 0.06
    out_noise_std: float = 0.0
    out_scale: float = 1.0
    out_asymmetry: float = 0.0
    noise_management: NoiseManagementType = NoiseManagementType.ABS_MAX
    nm_thres: float = 0.0
    bound_management: BoundManagementType = BoundManagementType.ITERATIVE
    max_bm_factor: int = 1000
    max_bm_res: float = 0.25
    bm_test_negative_bound: bool = True
    w_noise: float = 0.0
    w_noise_type: WeightNoiseType = WeightNoiseType.NONE
    ir_drop: float = 0.0
    ir_drop_g_ratio: float = 1 / 0.35 / 5e-6
    out_nonlinearity: float = 0.0
    out_nonlinearity_std: float = 0.0
    slope_calibration: float = 0.0
    v_offset_std: float = 0.0
    v_offset_w_min: float = -1.0
    r_series: float = 0.0
    w_read_asymmetry_dtod: float = 0.0

    def validate(self) -> None:
        super().validate()
        for name in ("is_perfect", "inp_sto_round", "out_sto_round", "bm_test_negative_bound"):
            self._check_bool(name)
        for name in ("inp_bound", "inp_res", "out_bound", "out_res", "out_scale", "nm_thres",
                     "ir_drop_g_ratio", "v_offset_w_min", "max_bm_factor"):
            self._check_number(name)
        for name in ("inp_noise", "out_noise", "out_noise_std", "w_noise", "ir_drop",
                     "out_nonlinearity", "out_nonlinearity_std", "slope_calibration",
                     "v_offset_std", "r_series", "w_read_asymmetry_dtod", "max_bm_res"):
            self._check_number(name, lo=0.0)
        for name in ("inp_asymmetry", "out_asymmetry"):
            self._check_number(name, hi=1.0)
