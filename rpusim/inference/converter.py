"""Conductance converters: weights to conductance slices (in uS) and back (spec inference.md §3).

Every converter scales the weights by ``scale_ratio`` (uS per weight unit) computed from the matrix
it converts, so converting a programmed matrix again gives it its own scale. All arithmetic is in
the dtype of the weights.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rpusim.inference.base import BaseConductanceConverter

__all__ = ["SinglePairConductanceConverter", "NPairConductanceConverter",
           "DualPairConductanceConverter", "CustomPairConductanceConverter",
           "SingleDeviceConductanceConverter"]

# smallest max|W| a scale is computed from (an all-zero matrix maps to g_min)
_ZERO_CLIP = 1e-7


def _abs_max(weights: np.ndarray):
    return max(np.abs(weights).max(initial=0), weights.dtype.type(_ZERO_CLIP))


class _RangeMixin:
    """``g_max`` / ``g_min`` with aihwkit's checks (at construction and in ``validate``), and
    the ``f_lst`` helpers of the pair converters."""

    def _fill_range_defaults(self) -> None:
        """``None`` for ``g_max`` / ``g_min`` (aihwkit's way to ask for the default) becomes the
        field's default."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for name in ("g_max", "g_min"):
            if getattr(self, name) is None:
                setattr(self, name, defaults[name])

    def _check_range(self) -> None:
        g_max = self._check_number("g_max", lo=0.0)
        g_min = self._check_number("g_min", lo=0.0)
        if g_min >= g_max:
            raise ValueError(f"{type(self).__name__}.g_min must be smaller than g_max, got "
                             f"g_min={g_min} and g_max={g_max}")

    def _pairs_to_weights(self, conductances, params):
        """``sum_j f_j (g+_j - g-_j) / scale_ratio`` of the slices ``[g+_1, g-_1, ...]``."""
        if len(conductances) != 2 * len(self.f_lst):
            raise ValueError(f"{type(self).__name__} needs {2 * len(self.f_lst)} conductance "
                             f"slices, got {len(conductances)}")
        t = conductances[0].dtype.type
        total = np.zeros_like(conductances[0])
        for f, g_plus, g_minus in zip(self.f_lst, conductances[::2], conductances[1::2]):
            total += t(f) * (g_plus - g_minus)
        return total / params["scale_ratio"]

    def _check_f_lst(self, length: int | None = None) -> None:
        f_lst = self.f_lst
        if not isinstance(f_lst, (list, tuple)) or not f_lst:
            raise ValueError(f"{type(self).__name__}.f_lst must be a non-empty list of "
                             f"positive factors, got {f_lst!r}")
        if length is not None and len(f_lst) != length:
            raise ValueError(f"{type(self).__name__}.f_lst must hold {length} factors, got "
                             f"{f_lst!r}")
        for f in f_lst:
            if isinstance(f, bool) or not isinstance(f, (int, float, np.integer, np.floating)) \
                    or not np.isfinite(f) or f <= 0:
                raise ValueError(f"{type(self).__name__}.f_lst must hold finite factors > 0, "
                                 f"got {f_lst!r}")
        self.f_lst = [float(f) for f in f_lst]


@dataclass
class SinglePairConductanceConverter(_RangeMixin, BaseConductanceConverter):
    """One pair of devices per weight: ``g+`` for positive, ``g-`` for negative weights.

    ``k = (g_max - g_min) / max(max|W|, 1e-7)``; ``g+ = clip(k W, 0, g_max) + g_min``,
    ``g- = clip(-k W, 0, g_max) + g_min``: the idle device of a pair sits at ``g_min``.
    Back: ``W = ((g+ - g_min) - (g- - g_min)) / k``.

    Attributes
    ----------
    g_max : float
        Conductance (uS) of the largest ``|W|``; 25.0.
    g_min : float
        Conductance (uS) of a zero weight; 0.0.
    """

    g_max: float = 25.0
    g_min: float = 0.0

    def __post_init__(self):
        self._fill_range_defaults()
        self._check_range()

    def validate(self) -> None:
        super().validate()
        self._check_range()

    def convert_to_conductances(self, weights):
        t = weights.dtype.type
        k = t(self.g_max - self.g_min) / _abs_max(weights)
        v = weights * k
        g_plus = np.clip(v, 0, t(self.g_max))
        g_plus += t(self.g_min)
        g_minus = np.clip(np.negative(v, out=v), 0, t(self.g_max), out=v)
        g_minus += t(self.g_min)
        return [g_plus, g_minus], {"scale_ratio": k}

    def convert_back_to_weights(self, conductances, params):
        if len(conductances) != 2:
            raise ValueError(f"{type(self).__name__} needs 2 conductance slices, got "
                             f"{len(conductances)}")
        g_plus, g_minus = conductances
        t = g_plus.dtype.type
        weights = g_plus - t(self.g_min)
        weights -= g_minus - t(self.g_min)
        weights /= params["scale_ratio"]
        return weights


@dataclass
class NPairConductanceConverter(_RangeMixin, BaseConductanceConverter):
    """``len(f_lst)`` device pairs per weight, pair ``j`` read with significance ``f_j``.

    ``k = sum_j f_j (g_max - g_min) / max(max|W|, 1e-7)``, ``v = k W``; the pairs fill up in
    ``f_lst`` order: with ``L_1 = 0``, ``L_{j+1} = L_j + f_j (g_max - g_min)``,
    ``g+_j = clip((max(v, 0) - L_j) / f_j + g_min, g_min, g_max)`` and the same for ``g-_j``
    with ``-v``. Slices ``[g+_1, g-_1, g+_2, g-_2, ...]``; back
    ``W = sum_j f_j (g+_j - g-_j) / k``.

    Attributes
    ----------
    f_lst : list of float
        Significance factors of the pairs.
    g_max, g_min : float
        Conductance range (uS) of every device; 25.0 and 0.0.
    """

    f_lst: list
    g_max: float = 25.0
    g_min: float = 0.0

    def __post_init__(self):
        self._fill_range_defaults()
        self._check_range()
        self._check_f_lst()

    def validate(self) -> None:
        super().validate()
        self._check_range()
        self._check_f_lst()

    def convert_to_conductances(self, weights):
        t = weights.dtype.type
        span = t(self.g_max - self.g_min)
        k = t(sum(self.f_lst)) * span / _abs_max(weights)
        v = weights * k
        pos, neg = np.maximum(v, 0), np.maximum(-v, 0)
        lo, hi = t(self.g_min), t(self.g_max)
        slices, level = [], t(0)
        for f in self.f_lst:
            f = t(f)
            slices.append(np.clip((pos - level) / f + lo, lo, hi))
            slices.append(np.clip((neg - level) / f + lo, lo, hi))
            level = level + f * span
        return slices, {"scale_ratio": k}

    def convert_back_to_weights(self, conductances, params):
        return self._pairs_to_weights(conductances, params)


@dataclass
class DualPairConductanceConverter(NPairConductanceConverter):
    """Two device pairs per weight: :class:`NPairConductanceConverter` with two factors."""

    def __post_init__(self):
        super().__post_init__()
        self._check_f_lst(2)

    def validate(self) -> None:
        super().validate()
        self._check_f_lst(2)


@dataclass
class CustomPairConductanceConverter(_RangeMixin, BaseConductanceConverter):
    """Device pairs whose conductances follow tables over the weight range.

    ``g_lst`` holds ``2 len(f_lst)`` conductance tables ``[g+_1, g-_1, g+_2, ...]`` of equal
    length n, sampled at ``n`` weights evenly spaced over ``[-max|W|, max|W|]``; a weight's
    conductances are interpolated piecewise linearly. The scale is
    ``k = max_m |sum_j f_j (g+_j[m] - g-_j[m])| / max(max|W|, 1e-7)``; back
    ``W = sum_j f_j (g+_j - g-_j) / k``.

    Attributes
    ----------
    f_lst : list of float
        Significance factors of the pairs.
    g_lst : list of list of float
        The conductance tables (uS).
    g_max, g_min : float
        Conductance range (uS); 25.0 and 0.0.
    invertibility_test : bool
        Check at construction that weights in [-1, 1] convert back to themselves (within
        1e-4); a table that does not raises ``ArithmeticError``.
    """

    f_lst: list
    g_lst: list
    g_max: float = 25.0
    g_min: float = 0.0
    invertibility_test: bool = True

    def __post_init__(self):
        self._fill_range_defaults()
        self._check_all()
        if self.invertibility_test:
            self._test_invertibility()

    def validate(self) -> None:
        super().validate()
        self._check_all()

    def _check_all(self) -> None:
        self._check_range()
        self._check_f_lst()
        tables = self.g_lst
        name = type(self).__name__
        if not isinstance(tables, (list, tuple)) or len(tables) != 2 * len(self.f_lst):
            raise ValueError(f"{name}.g_lst must hold 2 * len(f_lst) = {2 * len(self.f_lst)} "
                             f"conductance lists, got {tables!r:.200}")
        try:
            arr = np.asarray(tables, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name}.g_lst must be lists of numbers of equal length: {err}"
                             ) from err
        if arr.ndim != 2 or arr.shape[1] < 2 or not np.isfinite(arr).all():
            raise ValueError(f"{name}.g_lst must be lists of >= 2 finite numbers of equal "
                             f"length, got shape {arr.shape}")
        self.g_lst = arr.tolist()
        self._check_bool("invertibility_test")

    def _test_invertibility(self) -> None:
        w = np.linspace(-1, 1, 5, dtype=np.float32)
        back = self.convert_back_to_weights(*self.convert_to_conductances(w[None, :]))[0]
        if not np.allclose(back, w, atol=1e-4, rtol=0):
            raise ArithmeticError(f"{type(self).__name__}: the tables g_lst do not convert "
                                  f"weights in [-1, 1] back to themselves ({w} -> {back})")

    def _net_table(self, t):
        tables = [np.asarray(g, dtype=t) for g in self.g_lst]
        net = np.zeros_like(tables[0])
        for f, g_plus, g_minus in zip(self.f_lst, tables[::2], tables[1::2]):
            net += t(f) * (g_plus - g_minus)
        return tables, net

    def convert_to_conductances(self, weights):
        t = weights.dtype.type
        tables, net = self._net_table(t)
        w_max = _abs_max(weights)
        k = t(np.abs(net).max()) / w_max
        grid = np.linspace(-w_max, w_max, net.shape[0]).astype(t)
        slices = [np.interp(weights, grid, g).astype(t) for g in tables]
        return slices, {"scale_ratio": k}

    def convert_back_to_weights(self, conductances, params):
        return self._pairs_to_weights(conductances, params)


@dataclass
class SingleDeviceConductanceConverter(_RangeMixin, BaseConductanceConverter):
    """One signed device per weight spanning ``[g_min, g_max]`` over ``[min W, max W]``.

    ``k = (g_max - g_min) / (max W - min W)``, ``g = (W - min W) k + g_min``; back
    ``W = min W + (g - g_min) / k``. One slice. A constant matrix (``max W == min W``) maps
    to ``g_min`` with ``k = (g_max - g_min) / 1e-7``.

    Attributes
    ----------
    g_max, g_min : float
        Conductance range (uS); 88.199997 and 9.0 (aihwkit's CMO ReRAM values).
    """

    g_max: float = 88.199997
    g_min: float = 9.0

    def __post_init__(self):
        self._fill_range_defaults()
        self._check_range()

    def validate(self) -> None:
        super().validate()
        self._check_range()

    def convert_to_conductances(self, weights):
        t = weights.dtype.type
        w_min, w_max = weights.min(), weights.max()
        k = t(self.g_max - self.g_min) / max(w_max - w_min, t(_ZERO_CLIP))
        return [(weights - w_min) * k + t(self.g_min)], {"scale_ratio": k, "min": w_min}

    def convert_back_to_weights(self, conductances, params):
        if len(conductances) != 1:
            raise ValueError(f"{type(self).__name__} needs 1 conductance slice, got "
                             f"{len(conductances)}")
        t = conductances[0].dtype.type
        return params["min"] + (conductances[0] - t(self.g_min)) / params["scale_ratio"]
