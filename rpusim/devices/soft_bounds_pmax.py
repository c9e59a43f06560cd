"""SoftBoundsPmaxDevice: soft bounds parameterised by a measured pulse-response experiment."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import ClassVar

from rpusim.devices.base import register_device
from rpusim.devices.linear_step import LinearStepParams, linear_step
from rpusim.devices.soft_bounds import SoftBoundsDevice

__all__ = ["SoftBoundsPmaxDevice"]

_DERIVED = ("w_min", "w_max", "dw_min", "up_down")


@dataclass
class SoftBoundsPmaxDevice(SoftBoundsDevice):
    """Soft bounds parameterised as "``p_max`` up pulses take the weight from ``range_min``
    to ``range_max``" (aihwkit's SoftBoundsPmaxDevice).

    The device is a :class:`~rpusim.devices.soft_bounds.SoftBoundsDevice` whose ``w_min``,
    ``w_max``, ``dw_min`` and ``up_down`` are derived, with
    ``B = (range_max - range_min) / (1 - exp(-alpha * p_max))``::

        w_min = range_min,  w_max = range_min + B,  dw_min = B * alpha,
        up_down = 1 + 2 * range_min / B

    Values given for those four fields are ignored (as in aihwkit, they default to ``None``).
    Every other field (dtod spreads, noise, write noise, ...) is passed on unchanged, so e.g.
    ``dw_min_dtod`` is relative to the derived ``dw_min``. Hidden parameters, step rule and
    granularity are those of SoftBounds with the derived values.

    Note that aihwkit describes the noise-free up response from ``range_min`` as
    ``range_min + B * (1 - exp(-alpha * p))``; the soft-bounds rule with the derived values
    shrinks the distance to ``w_max`` by ``1 - dw_min / w_max = 1 - alpha * B / w_max`` per
    pulse, which matches that curve (to first order in ``alpha``) only for ``range_min = 0``.
    rpusim keeps aihwkit's derivation, so the physics is the same as aihwkit's.

    Attributes
    ----------
    p_max : int
        Number of up pulses that take the weight from ``range_min`` to ``range_max``.
    alpha : float
        Relative step ``dw / B`` of the exponential saturation, for up and down pulses.
    range_min : float
        Weight at the start of the ``p_max`` up-pulse experiment (must be <= 0).
    range_max : float
        Weight reached after ``p_max`` up pulses (> ``range_min``).
    """

    derived_fields: ClassVar[tuple[str, ...]] = _DERIVED

    p_max: int = 1000
    alpha: float = 0.001 / 2
    range_min: float = -1.0
    range_max: float = 1.0
    w_min: float = None  # type: ignore[assignment]
    w_max: float = None  # type: ignore[assignment]
    dw_min: float = None  # type: ignore[assignment]
    up_down: float = None  # type: ignore[assignment]

    def derived_parameters(self) -> dict[str, float]:
        """``w_min``, ``w_max``, ``dw_min`` and ``up_down`` of the equivalent SoftBounds."""
        b = (self.range_max - self.range_min) / (1 - math.exp(-self.p_max * self.alpha))
        return {"w_min": float(self.range_min), "w_max": self.range_min + b,
                "dw_min": b * self.alpha, "up_down": 1 + 2 * self.range_min / b}

    def validate(self) -> None:
        super().validate()
        self._check_int("p_max", lo=1)
        self._check_number("alpha", lo=0.0, lo_open=True)
        self._check_number("range_min", hi=0.0)
        self._check_number("range_max")
        if not self.range_max > self.range_min:
            raise ValueError(f"SoftBoundsPmaxDevice.range_max must be > range_min "
                             f"({self.range_min!r}), got {self.range_max!r}")

    def resolved_device(self) -> SoftBoundsDevice:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(SoftBoundsDevice)}
        values.update(self.derived_parameters())
        return SoftBoundsDevice(**values)

    def step_params(self, dtype):
        return self.resolved_device().step_params(dtype)


register_device(SoftBoundsPmaxDevice, LinearStepParams, linear_step)
