"""A state-independent noise model (spec inference.md §6): constant-spread programming noise, drift
exponents independent of the conductance, read noise proportional to the conductance.

Per conductance slice (``g`` the target in uS, ``xi`` standard normals):

* programming: ``g_p = max(0, g + prog_noise_scale * (c0 + c1 g/g_max + c2 (g/g_max)^2) * xi)``
  (no reference factor);
* drift exponent: ``nu = |drift_nu_mean + drift_nu_std xi| * drift_scale``;
* at ``t = t_inference + t_0``: ``g_d = g_p' (t / t_0)^-nu`` if ``t > t_0``, and
  ``g_f = max(0, g_d + |g_d| / g_max * read_noise_scale * sqrt(ln((t + t_read) / (2 t_read))) xi)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpusim.inference.base import BaseConductanceConverter, BaseNoiseModel
from rpusim.inference.converter import SinglePairConductanceConverter
from rpusim.inference.pcm import (check_coefficients, drift_and_read, interp_nu,
                                  program_with_polynomial, resolve_converter)
from rpusim.kernels import inference as kinf

__all__ = ["StateIndependentNoiseModel"]


@dataclass
class StateIndependentNoiseModel(BaseNoiseModel):
    """Noise model with conductance-independent drift and multiplicative 1/f read noise.

    Attributes
    ----------
    g_converter : BaseConductanceConverter
        Default ``SinglePairConductanceConverter(g_max)``; a given one is copied.
    g_max : float
        uS of the largest weight; 25.0 (the converter's when one is given).
    prog_coeff : list of float
        Programming-noise polynomial in uS; ``[0.2, 0.0, 0.0]``.
    prog_noise_scale : float
        1.0.
    drift_nu_mean, drift_nu_std : float
        Mean and spread of the drift exponent; 0.1 and 0.05.
    drift_scale : float
        Scale of the drawn exponents; 1.0.
    t_0 : float
        Drift reference time (s); 20.0.
    read_noise_scale : float
        1.0.
    t_read : float
        Read duration (s) of the 1/f noise; 250e-9.
    """

    g_converter: BaseConductanceConverter | None = None
    g_max: float | None = None
    prog_coeff: list | None = None
    prog_noise_scale: float = 1.0
    drift_nu_mean: float = 0.1
    drift_nu_std: float = 0.05
    drift_scale: float = 1.0
    t_0: float = 20.0
    read_noise_scale: float = 1.0
    t_read: float = 250.0e-9

    def __post_init__(self):
        resolve_converter(self, lambda g_max: SinglePairConductanceConverter(g_max=g_max))
        if self.prog_coeff is None:
            self.prog_coeff = [0.2, 0.0, 0.0]
        self.validate()

    def validate(self) -> None:
        super().validate()
        check_coefficients(self, "prog_coeff")
        self._check_number("g_max", lo=0.0, lo_open=True)
        self._check_number("t_read", lo=0.0, lo_open=True)
        self._check_number("t_0", lo=0.0, lo_open=True)
        self._check_number("drift_nu_mean")
        for name in ("prog_noise_scale", "read_noise_scale", "drift_scale", "drift_nu_std"):
            self._check_number(name, lo=0.0)

    def apply_programming_noise_to_conductance(self, g_target, rng=None):
        return program_with_polynomial(g_target, self.prog_coeff, self.g_max, 1.0,
                                       self.prog_noise_scale, True, rng)

    def generate_drift_coefficients(self, g_target, rng=None):
        # a constant table: the interpolated mean and spread are the constants themselves
        return interp_nu(g_target, [0.0, 1.0], [self.drift_nu_mean] * 2,
                         [self.drift_nu_std] * 2, self.drift_scale, rng)

    def apply_drift_noise_to_conductance(self, g_prog, drift_coefficients, t_inference,
                                         rng=None):
        return drift_and_read(g_prog, drift_coefficients, t_inference, self.t_0, self.t_read,
                              self.g_max, self.read_noise_scale, kinf.READ_RELATIVE, rng)
