"""Update (pulse generation) parameters, as aihwkit's ``UpdateParameters``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rpusim.configs._base import ConfigBase
from rpusim.configs.enums import PulseType

__all__ = ["UpdateParameters"]

# attributes derived from the fields by their users, dropped whenever a field changes
_DERIVED = ("_derived", "_range", "_managed")


@dataclass
class UpdateParameters(ConfigBase):
    """How ``update(x, d)`` becomes pulses (aihwkit names and Python defaults).

    Attributes
    ----------
    desired_bl : int
        Bit length BL of the pulse trains (the maximum BL with ``update_bl_management``).
    fixed_bl : bool
        Keep BL fixed; otherwise BL grows to ``ceil(lr / dw_min)`` when needed.
    pulse_type : PulseType
        How coincidences are generated (stochastic trains, deterministic, mean count, none).
    res : float
        Resolution of the pulse probabilities (<= 0 off). A value > 1 is a number of steps and
        means ``1/res`` (aihwkit's CPU path uses it unconverted, which suppresses all pulses:
        rpusim implements the documented meaning).
    x_res_implicit, d_res_implicit : float
        Resolutions of x and d for ``DETERMINISTIC_IMPLICIT`` (same > 1 convention as ``res``).
    d_sparsity : bool
        Bookkeeping only in aihwkit; no effect on the physics.
    sto_round : bool
        Stochastic rounding when discretising probabilities.
    update_bl_management : bool
        Choose BL per sample from the largest coincidence count (forces update management on).
    update_management : bool
        Balance the x and d probabilities per sample.
    um_grad_scale : float
        Scales the d maximum inside update management.
    """

    _enum_fields: ClassVar[dict] = {"pulse_type": PulseType}

    desired_bl: int = 31
    fixed_bl: bool = True
    pulse_type: PulseType = PulseType.STOCHASTIC_COMPRESSED
    res: float = 0
    x_res_implicit: float = 0
    d_res_implicit: float = 0
    d_sparsity: bool = False
    sto_round: bool = False
    update_bl_management: bool = True
    update_management: bool = True
    um_grad_scale: float = 1.0

    def __setattr__(self, name, value):
        # a field change drops what was derived from the fields: the update engine's plan,
        # the tile's range limits and mixed precision's managed copy
        object.__setattr__(self, name, value)
        if name not in _DERIVED:
            for derived in _DERIVED:
                object.__setattr__(self, derived, None)

    def validate(self) -> None:
        super().validate()
        self._check_int("desired_bl", lo=1)
        for name in ("fixed_bl", "d_sparsity", "sto_round", "update_bl_management",
                     "update_management"):
            self._check_bool(name)
        for name in ("res", "x_res_implicit", "d_res_implicit"):
            self._check_number(name)
        self._check_number("um_grad_scale", lo=0.0, lo_open=True)


def effective_resolution(res: float) -> float:
    """Resolution as used by the physics: <= 0 off, > 1 a number of steps (1/res)."""
    if res <= 0:
        return 0.0
    return 1.0 / res if res > 1 else float(res)
