"""Floating-point devices: exact weights, no pulses, no bounds, no hidden parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

from rpusim.configs._base import ConfigBase
from rpusim.configs.drift import SimpleDriftParameter

__all__ = ["IdealDevice", "FloatingPointDevice"]


@dataclass
class IdealDevice(ConfigBase):
    """An ideal device: exact floating-point update ``W -= lr * d.T @ x`` (aihwkit semantics).

    Attributes
    ----------
    construction_seed : int
        Kept for aihwkit compatibility (nothing is sampled).
    diffusion : float
        Std of ``W += diffusion * xi`` per diffusion step.
    lifetime : float
        Decay ``W *= 1 - 1/lifetime`` per step, applied only if ``lifetime > 1``.
    reset_std : float
        A reset sets the weight to ``reset_std * xi``.
    """

    construction_seed: int = 0
    diffusion: float = 0.0
    lifetime: float = 0.0
    reset_std: float = 0.01

    def validate(self) -> None:
        super().validate()
        self._check_int("construction_seed", lo=0)
        for name in ("diffusion", "lifetime", "reset_std"):
            self._check_number(name, lo=0.0)


@dataclass
class FloatingPointDevice(ConfigBase):
    """Floating-point weights (aihwkit's ``FloatingPointTile``); exact forward and backward too.

    Attributes
    ----------
    diffusion : float
        Std of ``W += diffusion * xi`` per diffusion step.
    lifetime : float
        Decay ``W *= 1 - 1/lifetime`` per step, applied only if ``lifetime > 1``.
    drift : SimpleDriftParameter
        Power-law drift with one exponent for all weights.
    """

    diffusion: float = 0.0
    lifetime: float = 0.0
    drift: SimpleDriftParameter = field(default_factory=SimpleDriftParameter)

    def validate(self) -> None:
        super().validate()
        for name in ("diffusion", "lifetime"):
            self._check_number(name, lo=0.0)
