"""Drift parameters (power-law conductance drift), as aihwkit's ``DriftParameter``."""

from __future__ import annotations

from dataclasses import dataclass

from rpusim.configs._base import ConfigBase

__all__ = ["DriftParameter", "SimpleDriftParameter"]


@dataclass
class SimpleDriftParameter(ConfigBase):
    """Power-law drift ``w <- w0 * (t / t_0)^-nu`` with one exponent for all weights.

    Attributes
    ----------
    nu : float
        Drift exponent (0 disables drift).
    t_0 : float
        Time unit of ``delta_t``.
    reset_tol : float
        A weight that changed by more than this since the last drift call restarts its drift.
    """

    nu: float = 0.0
    t_0: float = 1.0
    reset_tol: float = 1e-7

    def validate(self) -> None:
        super().validate()
        self._check_number("nu")
        self._check_number("t_0", lo=0.0, lo_open=True)
        self._check_number("reset_tol", lo=0.0)


@dataclass
class DriftParameter(SimpleDriftParameter):
    """Drift of pulsed devices: exponent with device-to-device and cycle-to-cycle spread.

    Attributes
    ----------
    nu_dtod : float
        Relative device-to-device spread of ``nu``.
    nu_std : float
        Relative per-call spread of ``nu``.
    wg_ratio, g_offset, w_offset : float
        Weight to conductance mapping ``g = (w - w_offset) / wg_ratio + g_offset``.
    nu_k : float
        Conductance dependence of ``nu``: ``nu - nu_k * ln(g) + nu_k * log_g0``.
    log_g0 : float
        Reference log conductance of ``nu_k``.
    w_noise_std : float
        Read noise added after each drift call.
    """

    nu_dtod: float = 0.0
    nu_std: float = 0.0
    wg_ratio: float = 1.0
    g_offset: float = 0.0
    w_offset: float = 0.0
    nu_k: float = 0.0
    log_g0: float = 0.0
    w_noise_std: float = 0.0

    def validate(self) -> None:
        super().validate()
        for name in ("nu_dtod", "nu_std", "w_noise_std"):
            self._check_number(name, lo=0.0)
        for name in ("g_offset", "w_offset", "nu_k", "log_g0"):
            self._check_number(name)
        self._check_number("wg_ratio", lo=0.0, lo_open=True)
