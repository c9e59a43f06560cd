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

    One instance describes one direction: ``RPUConfig.forward`` (``y = W x``),
    ``RPUConfig.backward`` (``z = W.T d``) or a compound's read (``transfer_forward``). The
    pipeline, in aihwkit's order (spec io.md): noise management picks an input scale
    ``alpha``; per round of bound management the scaled input goes through the DAC
    (quantise, clip, input noise, asymmetry), the analog product and its non-idealities
    (IR drop, voltage offsets / series resistance, weight read noise), and the ADC
    (nonlinearity, asymmetry, output noise, quantise, clip); the result is multiplied by
    ``out_scale * alpha * reduction``.

    Attributes
    ----------
    is_perfect : bool
        Exact floating-point MVM; only ``out_scale`` applies and no other field is checked
        against the IO model.
    mv_type : AnalogMVType
        ``IDEAL`` equals ``is_perfect``. ``ONE_PASS``: one analog pass. ``POS_NEG_SEPARATE``:
        negative and positive inputs in two passes (each with its own non-idealities and
        weight noise), summed before one ADC. ``POS_NEG_SEPARATE_DIGITAL_SUM``: two passes,
        each through its own ADC (two output noises, quantisations and clips), summed
        digitally. ``SPLIT_MODE`` and ``BIT_WISE`` exist in aihwkit only for its torch
        inference tile and are rejected.
    inp_bound : float
        DAC range ``[-inp_bound, inp_bound]``; <= 0 unbounded. Must be 1 whenever
        ``noise_management`` is not ``NONE`` (aihwkit refuses other values).
    inp_res : float
        DAC step as a fraction of the full range ``2 * inp_bound`` (``1/(2**n - 2)`` gives
        ``2**n - 1`` levels for n bits; default 7 bits), or a number of steps over the full
        range if > 1; <= 0 no quantisation. Rounding is half-to-even.
    inp_sto_round : bool
        Stochastic rounding in the DAC.
    inp_noise : float
        Std of Gaussian noise added to each DAC output, after quantisation and clipping
        (not re-clipped), in units of the scaled input.
    inp_asymmetry : float
        Negative DAC outputs are multiplied by ``1 - inp_asymmetry`` (all ``mv_type``s).
    out_bound : float
        ADC range ``[-out_bound, out_bound]``; <= 0 unbounded.
    out_res : float
        ADC step as a fraction of ``2 * out_bound`` (default 9 bits), or a number of steps if
        > 1; <= 0 no quantisation (also when ``out_bound <= 0``).
    out_sto_round : bool
        Stochastic rounding in the ADC.
    out_noise : float
        Std of Gaussian noise added to each output before the ADC (the default 0.06 makes
        every analog read stochastic; set 0 for a deterministic one).
    out_noise_std : float
        Relative spread of ``out_noise`` among output lines: each line draws once, at
        construction, ``|out_noise * (1 + out_noise_std * xi)|``.
    out_scale : float
        Digital scale of the result (also applied when ``is_perfect``).
    out_asymmetry : float
        Negative analog outputs are multiplied by ``1 - out_asymmetry`` (only if > 0).
    noise_management : NoiseManagementType
        Input scale ``alpha`` per input vector: ``NONE`` (1), ``ABS_MAX`` (``max |x|``),
        ``MAX`` (signed ``max x``), ``CONSTANT`` (``nm_thres``, or 1 if that is <= 0),
        ``AVERAGE_ABS_MAX`` (running average of ``max |x|`` with decay 1e-3, updated vector
        by vector, shared by the forward and backward of a tile, also updated when
        ``is_test``), ``ABS_MAX_NP_SUM`` (at least ``max |x|``, raised by the larger of the
        positive and negative input sums times 0.6 / ``out_bound``). An input with
        ``alpha <= 0`` gives exact zeros (forward: unless ``inp_noise > 0``).
    nm_thres : float
        Upper cap of ``alpha`` for ``ABS_MAX``, ``MAX`` and ``ABS_MAX_NP_SUM`` if > 0; the
        constant of ``CONSTANT``.
    bound_management : BoundManagementType
        Forward only (the backward ignores it, as aihwkit). ``ITERATIVE``: while an output
        saturates, repeat the pass with the input halved again (fresh noise every round)
        until ``int(reduction) > max_bm_factor`` or ``reduction > max_bm_res / step``
        (``step`` the DAC step: at most 5 rounds with the defaults).
        ``ITERATIVE_WORST_CASE``: the second round uses the ``ABS_MAX_NP_SUM`` scale with
        the reduction reset to 1, then halves on. ``SHIFT`` exists only in aihwkit's CUDA
        path and is rejected.
    max_bm_factor : int
        Largest reduction of bound management.
    max_bm_res : float
        Bound management stops once the reduction exceeds ``max_bm_res`` DAC steps'
        worth of the range (``reduction > max_bm_res / step``).
    bm_test_negative_bound : bool
        Negative saturation also counts as failing the bound test. As in aihwkit, a
        negatively saturated output *sets* the test result of its vector to
        ``not bm_test_negative_bound``, so with ``False`` it also clears a positive
        saturation of an earlier output of the same vector.
    w_noise : float
        Output-referred weight read noise scale, redrawn at every MVM and round.
    w_noise_type : WeightNoiseType
        ``NONE`` (off), ``ADDITIVE_CONSTANT`` (std ``w_noise * ||v||``),
        ``PCM_READ`` (std ``w_noise * sqrt(sum_j |w_ij| v_j**2)``), ``v`` the DAC output.
    ir_drop : float
        IR-drop strength (0 off): output ``i`` loses
        ``c(a_i) * ir_drop * sum_j w_ij v_j (1 - (1 - j/n)**2)`` with
        ``a_i = n / ir_drop_g_ratio * sum_j |w_ij v_j|`` and
        ``c(a) = a (a (0.05 a - 0.2) + 0.5)``; input 0 has no drop, as aihwkit's formula.
    ir_drop_g_ratio : float
        Wire conductance over the device's maximal conductance (> 0).
    out_nonlinearity : float
        S-shaped output nonlinearity ``y / (1 + |nl_i y|)`` before the ADC, with
        ``nl_i = |out_nonlinearity / out_bound * (1 + out_nonlinearity_std * xi)|`` drawn
        per output line at construction (``out_bound`` read as 1 if unbounded). Also active
        (with ``nl_i = 0``) when ``r_series > 0``.
    out_nonlinearity_std : float
        Relative per-line spread of ``out_nonlinearity``.
    slope_calibration : float
        If > 0 the nonlinear outputs are multiplied by ``f**2`` with
        ``f = 1 + (mean_i nl_i + r_series) * slope_calibration * out_bound``.
    v_offset_std : float
        Per-output-line voltage offsets ``v_i``, drawn at construction (also drawn, as 0,
        when only ``r_series > 0``): ``y_i <- (1 - v_i) y_i`` plus the reference-column
        terms of ``v_offset_w_min``. rpusim draws the rectified normal
        ``max(0, v_offset_std * xi)``; aihwkit 1.2.0 draws twice inside a macro and gets 0
        half of the time and an unrectified normal otherwise (project verdict 14: fixed).
    v_offset_w_min : float
        Weight of the implicit reference column of the offsets and the series resistance
        (0: no reference column).
    r_series : float
        Series-resistance compression ``y / (1 + r_series |y|)`` of the offsets' outputs.
    w_read_asymmetry_dtod : float
        Per-weight read asymmetry ``a_ij = 1 + w_read_asymmetry_dtod * xi`` (drawn at
        construction) multiplying the weights seen by negative inputs; used by both
        ``POS_NEG_SEPARATE`` types, drawn but unused by ``ONE_PASS``, as in aihwkit.

    Notes
    -----
    Every field is honoured by aihwkit's CPU tile and by rpusim, with the exceptions named
    above: ``bound_management`` in the backward direction, ``w_read_asymmetry_dtod`` with
    ``ONE_PASS``, ``nm_thres`` with ``noise_management=NONE``. aihwkit's C++ constants that
    its Python class does not expose are fixed as there: ``nm_assumed_wmax = 0.6``,
    ``nm_decay = 1e-3``, no cap on ``r_series * |y|``. The ``is_test`` flag of a forward
    changes nothing in the IO model (aihwkit's CPU tile ignores it too).
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

    # IOParametersIRDropT (time-sliced MVMs) accepts SPLIT_MODE and BIT_WISE
    _time_sliced: ClassVar[bool] = False

    def validate(self) -> None:
        super().validate()
        for name in ("is_perfect", "inp_sto_round", "out_sto_round", "bm_test_negative_bound"):
            self._check_bool(name)
        for name in ("inp_bound", "inp_res", "out_bound", "out_res", "out_scale", "nm_thres",
                     "v_offset_w_min"):
            self._check_number(name)
        self._check_number("ir_drop_g_ratio", lo=0.0, lo_open=True)
        self._check_int("max_bm_factor")
        for name in ("inp_noise", "out_noise", "out_noise_std", "w_noise", "ir_drop",
                     "out_nonlinearity", "out_nonlinearity_std", "slope_calibration",
                     "v_offset_std", "r_series", "w_read_asymmetry_dtod", "max_bm_res"):
            self._check_number(name, lo=0.0)
        for name in ("inp_asymmetry", "out_asymmetry"):
            self._check_number(name, hi=1.0)
        if self.mv_type in (AnalogMVType.SPLIT_MODE, AnalogMVType.BIT_WISE) and not (
                self._time_sliced):
            raise ValueError(f"IOParameters.mv_type {self.mv_type.name} is not available for "
                             "analog tiles (aihwkit offers it only in "
                             "TorchInferenceRPUConfigIRDropT); "
                             "use ONE_PASS, POS_NEG_SEPARATE, POS_NEG_SEPARATE_DIGITAL_SUM "
                             "or IDEAL")
        if self.bound_management == BoundManagementType.SHIFT:
            raise ValueError("IOParameters.bound_management SHIFT exists only in aihwkit's CUDA "
                             "path (its CPU tile has no implementation); use NONE, ITERATIVE "
                             "or ITERATIVE_WORST_CASE")
        perfect = self.is_perfect or self.mv_type == AnalogMVType.IDEAL
        # aihwkit's torch tile (the forward of a TorchInferenceRPUConfig, which marks it)
        # scales by the noise management whatever the input bound
        torch_tile = (getattr(self, "_torch_tile_forward", False)
                      and torch_tile_supports(self))
        if (not perfect and self.noise_management != NoiseManagementType.NONE
                and self.inp_bound != 1.0 and not torch_tile):
            raise ValueError(f"IOParameters.inp_bound must be 1 when noise_management is "
                             f"{self.noise_management.name} (aihwkit refuses other bounds with "
                             f"noise management), got {self.inp_bound!r}; use "
                             f"noise_management=NONE for another input bound")
        if torch_tile and not perfect:
            # the torch tile's converters quantise in steps of res * 2 * bound (a negative
            # bound: no clipping, steps of its size): with a bound of 0 the step is 0 and
            # aihwkit's outputs are NaN
            for side in ("inp", "out"):
                res, bound = getattr(self, f"{side}_res"), getattr(self, f"{side}_bound")
                if res > 0 and bound == 0:
                    raise ValueError(
                        f"IOParameters.{side}_res > 0 needs a nonzero {side}_bound in the "
                        f"forward of a TorchInferenceRPUConfig: its torch tile quantises in "
                        f"steps of {side}_res * 2 * {side}_bound (aihwkit's outputs are NaN "
                        f"with a bound of 0); got {side}_res={res!r}, {side}_bound={bound!r}. "
                        f"Set a positive {side}_bound (a negative one: no clipping), or "
                        f"{side}_res=0 for no quantisation")


def torch_tile_supports(params: IOParameters) -> bool:
    """Whether aihwkit's torch tile accepts the (validated) forward IO ``params``: ONE_PASS
    (or IDEAL / perfect), no SHIFT bound management, no AVERAGE_ABS_MAX or ABS_MAX_NP_SUM
    noise management, no weight noise, IR drop, output nonlinearity, slope calibration,
    voltage offsets, series resistance or read asymmetry. rpusim simulates the other
    forwards of a ``TorchInferenceRPUConfig`` with the C++ tiles' MVM."""
    if params.is_perfect or params.mv_type == AnalogMVType.IDEAL:
        return True
    return (params.mv_type == AnalogMVType.ONE_PASS
            and params.bound_management != BoundManagementType.SHIFT
            and params.noise_management not in (NoiseManagementType.AVERAGE_ABS_MAX,
                                                NoiseManagementType.ABS_MAX_NP_SUM)
            and not (params.w_noise > 0 or params.w_noise_type != WeightNoiseType.NONE)
            and params.ir_drop <= 0 and params.out_nonlinearity <= 0
            and params.slope_calibration <= 0 and params.v_offset_std <= 0
            and params.v_offset_w_min <= 0 and params.r_series <= 0
            and params.w_read_asymmetry_dtod <= 0)
