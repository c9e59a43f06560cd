"""PCM noise models (spec inference.md §4-5): programming noise, power-law drift with drift
exponents drawn at programming, and 1/f read noise growing with time.

Formulas, per conductance slice, ``g`` the target in uS, ``xi`` standard normals:

* programming: ``g_p = max(0, g + prog_noise_scale * sigma_p(g) * xi)`` with
  ``sigma_p(g) = (c0 + c1 g/g_max + c2 (g/g_max)^2) * g_max / g_ref``;
* drift exponent (from the target): ``nu = |mu(r) + sd(r) xi| * drift_scale``,
  ``r = max(|g / g_max|, 1e-7)``, ``mu = clip(-0.0155 ln r + 0.0244, 0.049, 0.1)``,
  ``sd = clip(-0.0125 ln r - 0.0059, 0.008, 0.045)``;
* at ``t = t_inference + t_0`` (``g_p'`` the re-converted programmed weights):
  ``g_d = g_p' (t / t_0)^-nu`` if ``t > t_0``, and
  ``g_f = max(0, g_d + |g_d| read_noise_scale q sqrt(ln((t + t_read) / (2 t_read))) xi)``
  with ``q = min(0.2, 0.0088 / max((|g_p'| / g_max)^0.65, 1e-3))``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from rpusim.inference.base import BaseConductanceConverter, BaseNoiseModel, kernel_key
from rpusim.inference.converter import SinglePairConductanceConverter
from rpusim.kernels import inference as kinf

__all__ = ["PCMLikeNoiseModel", "CustomDriftPCMLikeNoiseModel"]

# aihwkit's fit of the PCM programming noise (uS), made at g_max = 25 uS
_PCM_PROG_COEFF = [0.26348, 1.9650, -1.1731]
_PCM_G_REF = 25.0


def out_like(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``g`` as a C-contiguous 2-D array and an empty output of its shape and dtype."""
    g2 = np.ascontiguousarray(g)
    if g2.ndim != 2:
        g2 = g2.reshape(1, -1) if g2.ndim < 2 else g2.reshape(g2.shape[0], -1)
    return g2, np.empty_like(g2)


def resolve_converter(model, default_factory) -> None:
    """aihwkit's constructor logic: a given converter is copied, otherwise built from ``g_max``;
    ``g_max`` is then the converter's."""
    if model.g_converter is None:
        model.g_converter = default_factory(model.g_max)
    else:
        model.g_converter = copy.deepcopy(model.g_converter)
    if not isinstance(model.g_converter, BaseConductanceConverter):
        raise TypeError(f"{type(model).__name__}.g_converter must be a conductance converter, "
                        f"got {model.g_converter!r:.100}")
    model.g_max = getattr(model.g_converter, "g_max", model.g_max)
    if model.g_max is None:
        raise ValueError(f"{type(model).__name__}: g_max cannot be established from "
                         f"g_converter {model.g_converter!r:.100}")


def check_coefficients(model, name: str) -> None:
    value = getattr(model, name)
    if not isinstance(value, (list, tuple, np.ndarray)) or len(value) == 0:
        raise ValueError(f"{type(model).__name__}.{name} must be a non-empty list of numbers, "
                         f"got {value!r:.100}")
    arr = np.asarray(value, dtype=float)
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise ValueError(f"{type(model).__name__}.{name} must be a list of finite numbers, "
                         f"got {value!r:.100}")
    setattr(model, name, arr.tolist())


def program_with_polynomial(g_target, coeffs, g_norm, factor, scale, clamp, rng):
    """``g + scale * factor * poly(g / g_norm) * xi`` (clamped at 0 if ``clamp``)."""
    g, out = out_like(g_target)
    kinf.program_poly(g, np.asarray(coeffs, np.float64), float(g_norm), float(factor),
                      float(scale), clamp, kernel_key(rng), out)
    return out.reshape(np.shape(g_target))


class _PCMBehaviour(BaseNoiseModel):
    """Programming, drift exponents and drift/read noise of the PCM family (fields as
    :class:`PCMLikeNoiseModel`)."""

    def __post_init__(self):
        resolve_converter(self, lambda g_max: SinglePairConductanceConverter(g_max=g_max))
        if self.prog_coeff is None:
            self.prog_coeff = list(_PCM_PROG_COEFF)
            self.prog_coeff_g_max_reference = _PCM_G_REF
        elif self.prog_coeff_g_max_reference is None:
            self.prog_coeff_g_max_reference = self.g_max
        self.validate()

    def validate(self) -> None:
        super().validate()
        check_coefficients(self, "prog_coeff")
        self._check_number("g_max", lo=0.0, lo_open=True)
        self._check_number("prog_coeff_g_max_reference", lo=0.0, lo_open=True)
        self._check_number("t_read", lo=0.0, lo_open=True)
        self._check_number("t_0", lo=0.0, lo_open=True)
        for name in ("prog_noise_scale", "read_noise_scale", "drift_scale"):
            self._check_number(name, lo=0.0)

    def apply_programming_noise_to_conductance(self, g_target, rng=None):
        return program_with_polynomial(g_target, self.prog_coeff, self.g_max,
                                       self.g_max / self.prog_coeff_g_max_reference,
                                       self.prog_noise_scale, True, rng)

    def generate_drift_coefficients(self, g_target, rng=None):
        g, out = out_like(g_target)
        kinf.pcm_drift_nu(g, float(self.g_max), float(self.drift_scale), kernel_key(rng), out)
        return out.reshape(np.shape(g_target))

    def apply_drift_noise_to_conductance(self, g_prog, drift_coefficients, t_inference,
                                         rng=None):
        return drift_and_read(g_prog, drift_coefficients, t_inference, self.t_0, self.t_read,
                              self.g_max, self.read_noise_scale, kinf.READ_PCM, rng)


@dataclass
class PCMLikeNoiseModel(_PCMBehaviour):
    """aihwkit's PCM statistical model (Nandakumar et al. 2019): programming noise, drift and
    1/f read noise (module docstring for the formulas).

    Attributes
    ----------
    prog_coeff : list of float
        Programming-noise polynomial ``[c0, c1, c2]`` in uS; default aihwkit's fit
        ``[0.26348, 1.9650, -1.1731]``.
    g_converter : BaseConductanceConverter
        Weights to conductances; default ``SinglePairConductanceConverter(g_max)``. A given
        converter is copied, and its ``g_max`` becomes the model's.
    g_max : float
        uS of the largest weight; default 25.0 (the converter's when one is given).
    t_read : float
        Read duration (s) of the 1/f noise; 250e-9.
    t_0 : float
        Time (s) of the first read after programming, the drift reference; 20.0.
    prog_noise_scale, read_noise_scale, drift_scale : float
        Scales of the programming noise, the read noise and the drift exponents; 1.0.
    prog_coeff_g_max_reference : float
        ``g_ref`` of ``sigma_p``: the ``g_max`` at which ``prog_coeff`` were fitted. With the
        default coefficients it is 25.0 whatever is given (as aihwkit); with explicit
        coefficients it defaults to ``g_max``, and an explicit value scales the coefficients
        by ``g_max / g_ref`` (aihwkit 1.2.0 raises AttributeError there: rpusim implements
        the intent).
    """

    prog_coeff: list | None = None
    g_converter: BaseConductanceConverter | None = None
    g_max: float | None = None
    t_read: float = 250.0e-9
    t_0: float = 20.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    prog_coeff_g_max_reference: float | None = None


def drift_and_read(g_prog, nu, t_inference, t_0, t_read, g_max, read_scale, law, rng):
    """Power-law drift by ``nu`` and read noise of ``law`` at ``t_inference`` seconds."""
    g, out = out_like(g_prog)
    nu = np.ascontiguousarray(np.asarray(nu, dtype=g.dtype).reshape(g.shape))
    kinf.drift_read(g, nu, float(t_inference), float(t_0), float(t_read), float(g_max),
                    float(read_scale), law, kernel_key(rng), out)
    return out.reshape(np.shape(g_prog))


def interp_nu(g_target, g_lst, mean_lst, std_lst, drift_scale, rng):
    """Drift exponents interpolated from tables over the conductance."""
    g, out = out_like(g_target)
    kinf.interp_drift_nu(g, np.asarray(g_lst, np.float64), np.asarray(mean_lst, np.float64),
                         np.asarray(std_lst, np.float64), float(drift_scale), kernel_key(rng),
                         out)
    return out.reshape(np.shape(g_target))


_DRIFT_TABLE_KEYS = ("g_lst", "nu_mean_lst", "nu_std_lst")


@dataclass
class CustomDriftPCMLikeNoiseModel(_PCMBehaviour):
    """:class:`PCMLikeNoiseModel` with drift exponents from measured tables.

    ``nu = |interp(g_c, g_lst, nu_mean_lst) + interp(g_c, g_lst, nu_std_lst) xi| * drift_scale``
    with ``g_c`` the target conductance (uS, not normalised) clipped to the table's range;
    piecewise-linear interpolation. Everything else as :class:`PCMLikeNoiseModel`.

    Attributes
    ----------
    custom_drift_model : dict
        ``{"g_lst": ascending uS, "nu_mean_lst": ..., "nu_std_lst": ...}``, lists of equal
        length >= 2; ``[min g_lst, max g_lst]`` must cover the converter's
        ``[g_min, g_max]``.
    prog_coeff, g_converter, g_max, t_read, t_0, prog_noise_scale, read_noise_scale, \
drift_scale, prog_coeff_g_max_reference
        As :class:`PCMLikeNoiseModel`.
    """

    custom_drift_model: dict
    prog_coeff: list | None = None
    g_converter: BaseConductanceConverter | None = None
    g_max: float | None = None
    t_read: float = 250.0e-9
    t_0: float = 20.0
    prog_noise_scale: float = 1.0
    read_noise_scale: float = 1.0
    drift_scale: float = 1.0
    prog_coeff_g_max_reference: float | None = None


    def validate(self) -> None:
        super().validate()
        name = type(self).__name__
        table = self.custom_drift_model
        if not isinstance(table, dict) or set(table) != set(_DRIFT_TABLE_KEYS):
            raise ValueError(f"{name}.custom_drift_model must be a dict with keys "
                             f"{list(_DRIFT_TABLE_KEYS)}, got {table!r:.200}")
        arrays = {}
        for key in _DRIFT_TABLE_KEYS:
            try:
                arrays[key] = np.asarray(table[key], dtype=float)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{name}.custom_drift_model[{key!r}] must be a list of "
                                 f"numbers: {err}") from err
        lengths = {a.shape for a in arrays.values()}
        g = arrays["g_lst"]
        if len(lengths) != 1 or g.ndim != 1 or g.size < 2 or not all(
                np.isfinite(a).all() for a in arrays.values()):
            raise ValueError(f"{name}.custom_drift_model lists must be finite, 1-D, of equal "
                             f"length >= 2, got shapes {[a.shape for a in arrays.values()]}")
        if np.any(np.diff(g) <= 0):
            raise ValueError(f"{name}.custom_drift_model['g_lst'] must be strictly ascending, "
                             f"got {g.tolist()}")
        g_min = float(getattr(self.g_converter, "g_min", 0.0))
        if g[0] > g_min or g[-1] < float(self.g_max):
            raise ValueError(f"{name}.custom_drift_model['g_lst'] must cover the converter's "
                             f"range [{g_min}, {self.g_max}] uS, got [{g[0]}, {g[-1]}]")
        self.custom_drift_model = {k: a.tolist() for k, a in arrays.items()}

    def generate_drift_coefficients(self, g_target, rng=None):
        table = self.custom_drift_model
        return interp_nu(g_target, table["g_lst"], table["nu_mean_lst"], table["nu_std_lst"],
                         self.drift_scale, rng)
