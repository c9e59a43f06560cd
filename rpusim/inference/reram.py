"""ReRAM noise models (spec inference.md §7-8).

``ReRamWan2022NoiseModel``: the spread of the conductances around their targets, a 4th-order
polynomial of ``g / g_max`` fitted at a few times after programming (Wan et al., Nature 2022):
programming draws with the earliest time's polynomial, a drift to a time ``t`` (one of the fitted
times) draws afresh around the TARGET with that time's polynomial. No separate read noise.

``ReRamCMONoiseModel``: conductive-metal-oxide ReRAM on one signed device per weight; programming
noise linear in ``g`` (uS), a log-time relaxation of mean and spread independent of ``g``, and read
noise ``K log10(g) sqrt(ln((t + t_read) / (2 t_read)))``, clipped to ``[g_min, g_max]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rpusim.inference.base import BaseConductanceConverter, BaseNoiseModel, kernel_key
from rpusim.inference.converter import (SingleDeviceConductanceConverter,
                                        SinglePairConductanceConverter)
from rpusim.inference.pcm import out_like, program_with_polynomial, resolve_converter
from rpusim.kernels import inference as kinf

__all__ = ["ReRamWan2022NoiseModel", "ReRamCMONoiseModel"]

# ascending powers of g / g_max, uS, keyed by seconds after programming
_WAN2022_COEFFS = {
    1.0: [0.348, 16.030, -43.853, 45.393, -16.815],
    86400.0: [0.701, 22.086, -50.773, 47.095, -16.458],
    172800.0: [0.782, 20.274, -43.507, 37.062, -11.934],
}
# [c0, c1] (uS, and uS per uS) keyed by the program-and-verify acceptance range
_CMO_COEFFS = {0.2: [0.00081107, 0.00106879], 2: [0.0112185391, 0.01129027418]}
_CMO_DECAY = {"mean": [-0.08900206], "std": [0.04201137, 0.41183342]}
_CMO_READ = {"K": 0.0277316483, "t_read": 1e-6}


def _check_polynomials(model, name: str) -> None:
    table = getattr(model, name)
    label = f"{type(model).__name__}.{name}"
    if not isinstance(table, dict) or not table:
        raise ValueError(f"{label} must be a non-empty dict time -> coefficients, got "
                         f"{table!r:.200}")
    checked = {}
    for key, coeffs in table.items():
        if isinstance(key, bool) or not isinstance(key, (int, float, np.integer, np.floating)) \
                or not math.isfinite(key):
            raise ValueError(f"{label} keys must be finite numbers, got {key!r}")
        arr = np.asarray(coeffs, dtype=float) if isinstance(coeffs, (list, tuple)) else None
        if arr is None or arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
            raise ValueError(f"{label}[{key!r}] must be a non-empty list of finite numbers, "
                             f"got {coeffs!r:.100}")
        checked[key.item() if isinstance(key, np.generic) else key] = arr.tolist()
    setattr(model, name, checked)


@dataclass
class ReRamWan2022NoiseModel(BaseNoiseModel):
    """ReRAM conductance spread after Wan et al. (2022).

    ``sigma_t(g) = sum_i c_i(t) (g/g_max)^i * g_max / g_ref``; programming
    ``g_p = max(0, g + noise_scale sigma_T(g) xi)`` with the smallest time T of ``coeff_dic``;
    drift coefficients are the target slices; ``drift_weights(t)`` needs ``t`` to be a key of
    ``coeff_dic`` and gives ``max(0, g + noise_scale sigma_t(g) xi)`` around the target ``g``,
    converted back with the scale of the programmed weights.

    Attributes
    ----------
    coeff_dic : dict
        Seconds -> ascending polynomial coefficients (uS); default the fits at 1 s, 1 day and
        2 days.
    g_converter : BaseConductanceConverter
        Default ``SinglePairConductanceConverter(g_max)``; a given one is copied.
    g_max : float
        uS of the largest weight; 25.0 (the converter's when one is given).
    noise_scale : float
        Scale of every spread; 1.0.
    coeff_g_max_reference : float
        ``g_ref``; defaults to ``g_max`` (a factor 1), with the default coefficients too, as
        aihwkit 1.2.0 computes (its intended 40 uS reference is never used). An explicit value
        scales the coefficients by ``g_max / g_ref`` (aihwkit 1.2.0 raises AttributeError
        there: rpusim implements the intent).
    """

    coeff_dic: dict | None = None
    g_converter: BaseConductanceConverter | None = None
    g_max: float | None = None
    noise_scale: float = 1.0
    coeff_g_max_reference: float | None = None

    def __post_init__(self):
        resolve_converter(self, lambda g_max: SinglePairConductanceConverter(g_max=g_max))
        if self.coeff_dic is None:
            self.coeff_dic = {t: list(c) for t, c in _WAN2022_COEFFS.items()}
        if self.coeff_g_max_reference is None:
            self.coeff_g_max_reference = self.g_max
        self.validate()

    def validate(self) -> None:
        super().validate()
        _check_polynomials(self, "coeff_dic")
        self._check_number("g_max", lo=0.0, lo_open=True)
        self._check_number("coeff_g_max_reference", lo=0.0, lo_open=True)
        self._check_number("noise_scale", lo=0.0)

    def _spread(self, g, t, rng):
        return program_with_polynomial(g, self.coeff_dic[t], self.g_max,
                                       self.g_max / self.coeff_g_max_reference,
                                       self.noise_scale, True, rng)

    def apply_programming_noise_to_conductance(self, g_target, rng=None):
        return self._spread(g_target, min(self.coeff_dic), rng)

    def generate_drift_coefficients(self, g_target, rng=None):
        return np.array(g_target, copy=True)

    def apply_drift_noise_to_conductance(self, g_prog, drift_coefficients, t_inference,
                                         rng=None):
        if t_inference not in self.coeff_dic:
            raise ValueError(f"{type(self).__name__}: t_inference must be one of the fitted "
                             f"times {sorted(self.coeff_dic)} s, got {t_inference!r}")
        return self._spread(np.asarray(drift_coefficients, dtype=np.asarray(g_prog).dtype),
                            t_inference, rng)


@dataclass
class ReRamCMONoiseModel(BaseNoiseModel):
    """Conductive-metal-oxide (CMO/HfOx) ReRAM, one signed device per weight.

    Programming: ``g_p = g + prog_noise_scale (c0 + c1 g) xi`` (no clamp) with the
    coefficients of ``acceptance_range``. At ``t = t_inference`` seconds (no t_0; ``t == 0``
    returns the programmed conductances):
    ``g_d = g_p' + mean0 ln(t) drift_scale + (std0 ln(t) + std1) drift_scale xi1`` and
    ``g_f = clip(g_d + K log10(g_d) sqrt(ln((t + t_read) / (2 t_read))) read_noise_scale xi2,
    g_min, g_max)`` (no read noise where ``g_d <= 0``, where aihwkit gives NaN).

    Attributes
    ----------
    coeff_dict : dict
        Acceptance range -> ``[c0, c1]``; default ``{0.2: ..., 2: ...}`` (aihwkit's fits).
    g_max, g_min : float
        uS; 88.199997 and 9.0; the model always uses
        ``SingleDeviceConductanceConverter(g_max, g_min)`` (its ``g_converter``).
    prog_noise_scale, read_noise_scale, drift_scale : float
        1.0.
    decay_dict : dict
        ``{"mean": [mean0], "std": [std0, std1]}`` of the relaxation (uS).
    read_dict : dict
        ``{"K": ..., "t_read": ...}`` of the read noise.
    acceptance_range : float
        Key of ``coeff_dict``; one that is not a key is replaced by the smallest key at
        construction (so the default 2e-2 reads 0.2, as aihwkit 1.2.0 computes).
    """

    coeff_dict: dict | None = None
    g_max: float | None = None
    g_min: float | None = None
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    decay_dict: dict | None = None
    read_dict: dict | None = None
    acceptance_range: float = 2e-2
    g_converter: BaseConductanceConverter | None = field(default=None, init=False)

    def __post_init__(self):
        self.g_converter = SingleDeviceConductanceConverter(g_max=self.g_max, g_min=self.g_min)
        self.g_max, self.g_min = self.g_converter.g_max, self.g_converter.g_min
        if self.coeff_dict is None:
            self.coeff_dict = {k: list(v) for k, v in _CMO_COEFFS.items()}
        if self.decay_dict is None:
            self.decay_dict = {k: list(v) for k, v in _CMO_DECAY.items()}
        if self.read_dict is None:
            self.read_dict = dict(_CMO_READ)
        _check_polynomials(self, "coeff_dict")
        if self.acceptance_range not in self.coeff_dict:
            self.acceptance_range = min(self.coeff_dict)
        self.validate()

    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        _check_polynomials(self, "coeff_dict")
        if self.acceptance_range not in self.coeff_dict:
            raise ValueError(f"{name}.acceptance_range must be a key of coeff_dict "
                             f"{sorted(self.coeff_dict)}, got {self.acceptance_range!r}")
        for key in ("prog_noise_scale", "read_noise_scale", "drift_scale"):
            self._check_number(key, lo=0.0)
        decay, read = self.decay_dict, self.read_dict
        if not (isinstance(decay, dict) and len(decay.get("mean", ())) >= 1
                and len(decay.get("std", ())) >= 2
                and np.isfinite(np.r_[decay["mean"], decay["std"]].astype(float)).all()):
            raise ValueError(f"{name}.decay_dict must be {{'mean': [m0], 'std': [s0, s1]}} of "
                             f"finite numbers, got {decay!r:.200}")
        if not (isinstance(read, dict) and {"K", "t_read"} <= set(read)
                and math.isfinite(float(read["K"])) and float(read["t_read"]) > 0):
            raise ValueError(f"{name}.read_dict must be {{'K': k, 't_read': t > 0}}, got "
                             f"{read!r:.200}")
        if not isinstance(self.g_converter, SingleDeviceConductanceConverter):
            raise TypeError(f"{name}.g_converter must be a SingleDeviceConductanceConverter, "
                            f"got {self.g_converter!r:.100}")

    def apply_programming_noise_to_conductance(self, g_target, rng=None):
        return program_with_polynomial(g_target, self.coeff_dict[self.acceptance_range], 1.0,
                                       1.0, self.prog_noise_scale, False, rng)

    def generate_drift_coefficients(self, g_target, rng=None):
        return np.array(g_target, copy=True)

    def apply_drift_noise_to_conductance(self, g_prog, drift_coefficients, t_inference,
                                         rng=None):
        if t_inference == 0:
            return np.array(g_prog, copy=True)
        g, out = out_like(g_prog)
        decay, read = self.decay_dict, self.read_dict
        kinf.cmo_drift(g, float(t_inference), float(decay["mean"][0]), float(decay["std"][0]),
                       float(decay["std"][1]), float(self.drift_scale), float(read["K"]),
                       float(read["t_read"]), float(self.read_noise_scale), float(self.g_min),
                       float(self.g_max), kernel_key(rng), out)
        return out.reshape(np.shape(g_prog))
