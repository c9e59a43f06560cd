"""The torch tile's IO kernels (:mod:`rpusim.kernels.io_torch`) against the NumPy formulas they
replace: same inputs, keys and parameters give the same bits, for the forward, everything the
gradients read, and the gradients themselves.

The reference below is the NumPy implementation ``rpusim.io_torch`` had before the kernels
(each operation a tensor operation, as aihwkit's torch tile writes it); its agreement with
torch's autograd and with aihwkit is checked in ``test_torch_tile.py``.
"""

import dataclasses

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from rpusim.configs import IOParameters, TorchInferenceRPUConfig
from rpusim.configs.enums import BoundManagementType, NoiseManagementType
from rpusim.io import _Draws
from rpusim.io_torch import TorchMVMSaved, TorchTileMVM, _transposed_product
from rpusim.kernels import io as kio
from rpusim.rng import TileRNG


class NumpyTorchTileMVM(TorchTileMVM):
    """The torch tile's MVM with its elementwise stages in NumPy, one operation at a time."""

    def _noise_management(self, U):
        p = self.params
        t = self._t
        dt = self.dtype
        m = U.shape[0]
        thres = p.nm_thres
        absolute = p.noise_management == NoiseManagementType.ABS_MAX
        ref = np.abs(U) if absolute else U
        idx = ref.argmax(axis=1)
        raw = ref[np.arange(m), idx].astype(dt)
        nm = np.minimum(raw, t(thres)) if thres > 0 else raw.copy()
        nonzero = bool(np.any(nm != 0))
        passes = (nm > 0) & ((raw <= t(thres)) if thres > 0 else True)
        nm[nm <= 0] = t(1)
        sign = (np.sign(U[np.arange(m), idx]) if absolute else np.ones(m, dt)).astype(dt)
        return nm, idx, sign, passes, nonzero

    def _quantize(self, values, res, bound, stochastic, draws, purpose):
        t = self._t
        step = (1.0 / res if res > 1.0 else res) * 2.0 * bound
        q = values / t(step)
        if stochastic:
            q = q + (draws.uniforms(purpose, q.shape[1]) - t(0.5))
        return np.rint(q) * t(step)

    def _dac(self, U, scale, scaling, draws):
        p = self.params
        t = self._t
        dt = self.dtype
        u = U * (scale if isinstance(scale, np.ndarray) else t(scale)) if scaling else U.copy()
        if p.inp_res > 0:
            u = self._quantize(u, p.inp_res, p.inp_bound, p.inp_sto_round, draws,
                               kio.TAG_INP_UNIFORM)
        in_factor = None
        if p.inp_bound > 0:
            bound = t(p.inp_bound)
            inside = (u <= bound) & (u >= -bound)
            if not inside.all():
                in_factor = inside.astype(dt)
                u = np.clip(u, -bound, bound)
        if p.inp_noise > 0:
            u = u + t(p.inp_noise) * draws.normals(kio.TAG_INP_NOISE, self.n_in)
        if p.inp_asymmetry != 0:
            negative = u < 0
            scale_neg = t(1) - t(p.inp_asymmetry)
            u = np.where(negative, u * scale_neg, u)
            asym = np.where(negative, scale_neg, t(1)).astype(dt)
            in_factor = asym if in_factor is None else in_factor * asym
        return np.ascontiguousarray(u, dtype=dt), in_factor

    def _adc(self, z, draws):
        p = self.params
        t = self._t
        dt = self.dtype
        z = np.ascontiguousarray(z, dtype=dt)
        factor = None
        if p.out_asymmetry != 0:
            negative = z < 0
            scale_neg = t(1) - t(p.out_asymmetry)
            z = np.where(negative, z * scale_neg, z)
            factor = np.where(negative, scale_neg, t(1)).astype(dt)
        if p.out_noise > 0 or self.out_noise_values.size:
            xi = draws.normals(kio.TAG_OUT_NOISE, self.n_out)
            if self.out_noise_values.size:
                z = z + xi * self.out_noise_values
            else:
                z = z + t(p.out_noise) * xi
        if p.out_res > 0:
            z = self._quantize(z, p.out_res, p.out_bound, p.out_sto_round, draws,
                               kio.TAG_OUT_UNIFORM)
        clipped = None
        passed = True
        if p.out_bound > 0:
            bound = t(p.out_bound)
            inside = (z <= bound) & (z >= -bound)
            if not inside.all():
                passed = False
                clipped = ~inside
                factor = inside.astype(dt) if factor is None else factor * inside
                z = np.clip(z, -bound, bound)
        return passed, z, factor, clipped


    def input_gradient(self, saved, G):
        """The formulas of ``TorchTileMVM.input_gradient``, the float64 sums of the noise
        management's gradient in index order."""
        dt = self.dtype
        if saved.detached:
            return None
        if saved.zero:
            return np.zeros(saved.prepared.shape, dt)
        H = G if saved.out_factor is None else G * saved.out_factor
        P = np.ascontiguousarray(_transposed_product(saved.weights, H), dtype=dt)
        if saved.in_factor is not None:
            P = P * saved.in_factor
        grad = P * saved.scale if saved.scale is not None else P
        if saved.nm is not None:
            nm, reduction, idx, sign, passes = saved.nm
            m = P.shape[0]
            direct = np.zeros(m)
            through = np.zeros(m)
            for r in range(m):
                for i in range(G.shape[1]):
                    direct[r] += np.float64(G[r, i]) * np.float64(saved.outputs[r, i])
                for j in range(P.shape[1]):
                    through[r] += np.float64(P[r, j]) * np.float64(saved.scaled[r, j])
            direct = dt.type(reduction * self.params.out_scale) * direct
            d_nm = np.where(passes, direct - through / nm, 0.0)
            grad = np.array(grad, dtype=dt, copy=True)
            grad[np.arange(m), idx] += (d_nm * sign).astype(dt)
        return np.ascontiguousarray(grad, dtype=dt)


def _same(a, b, what: str) -> None:
    """Equal bits (and the same None-ness, dtypes and shapes), recursively."""
    if a is None or b is None:
        assert a is None and b is None, what
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b), what
        for k, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{what}[{k}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        assert a.dtype == b.dtype and a.shape == b.shape, what
        if a.dtype.kind == "f":
            assert np.array_equal(a.view(np.uint8), b.view(np.uint8)), what
        else:
            assert np.array_equal(a, b), what
    else:
        assert a == b, what


_IO = st.fixed_dictionaries({
    "inp_res": st.sampled_from([-1.0, 1 / 254, 1 / 14, 30.0]),
    "inp_bound": st.sampled_from([1.0, 0.6, 2.0, -1.0]),
    "inp_sto_round": st.booleans(),
    "inp_noise": st.sampled_from([0.0, 0.0, 0.1]),
    "inp_asymmetry": st.sampled_from([0.0, 0.0, 0.2, 1.0]),
    "out_res": st.sampled_from([-1.0, 1 / 254, 1 / 30]),
    "out_bound": st.sampled_from([12.0, 2.0, 0.7, -1.0]),
    "out_sto_round": st.booleans(),
    "out_noise": st.sampled_from([0.0, 0.06, 0.3]),
    "out_noise_std": st.sampled_from([0.0, 0.0, 0.1]),
    "out_scale": st.sampled_from([1.0, 0.5, 2.0]),
    "out_asymmetry": st.sampled_from([0.0, 0.0, -0.3, 0.1, 1.5]),
    "nm_thres": st.sampled_from([0.0, 0.8, 1e-50]),
    "max_bm_factor": st.sampled_from([1000, 4]),
    "noise_management": st.sampled_from(["ABS_MAX", "MAX", "NONE", "CONSTANT"]),
    "bound_management": st.sampled_from(["ITERATIVE", "NONE", "ITERATIVE_WORST_CASE"]),
})


def _inputs(rng, shape, kind: str, dtype):
    if kind == "normal":
        X = rng.normal(0, 1.5, shape)
    elif kind == "ties":  # equal largest values: argmax takes the first
        X = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], shape)
    elif kind == "sparse":  # rows of zeros (aihwkit's shortcut when all are)
        X = rng.normal(0, 1, shape) * (rng.random(shape) < 0.2)
    else:  # large and tiny magnitudes
        X = rng.normal(0, 1, shape) * 10.0 ** rng.integers(-30, 20, shape)
    return X.astype(dtype)


@settings(max_examples=150, deadline=None)
@given(io=_IO, seed=st.integers(0, 2**31 - 1),
       shape=st.tuples(st.integers(1, 9), st.integers(1, 12), st.integers(1, 10)),
       kind=st.sampled_from(["normal", "ties", "sparse", "magnitudes"]),
       dtype=st.sampled_from([np.float32, np.float64]), samples=st.booleans())
def test_kernels_give_the_numpy_formulas_bits(io, seed, shape, kind, dtype, samples):
    batch, n_in, n_out = shape
    p = IOParameters(**io)
    try:
        TorchInferenceRPUConfig(forward=p).validate()
    except ValueError:
        assume(False)
    rng = np.random.default_rng(seed)
    W = rng.uniform(-1, 1, (n_out, n_in)).astype(dtype)
    if samples and batch > 1:
        # per-sample weights (a per_batch_sample modifier): one matrix per row
        W = rng.uniform(-1, 1, (batch, n_out, n_in)).astype(dtype)
    X = _inputs(rng, (batch, n_in), kind, dtype)
    G = rng.normal(0, 1, (batch, n_out)).astype(dtype)
    fast = TorchTileMVM(p, n_out, n_in, dtype, TileRNG(seed))
    slow = NumpyTorchTileMVM(p, n_out, n_in, dtype, TileRNG(seed))
    _same(fast.out_noise_values, slow.out_noise_values, "line noise")
    with np.errstate(all="ignore"):
        Y, saved = fast.run(W, X)
        Y_ref, saved_ref = slow.run(W, X)
    _same(Y, Y_ref, "y")
    for field in dataclasses.fields(TorchMVMSaved):
        _same(getattr(saved, field.name), getattr(saved_ref, field.name), field.name)
    if not np.isfinite(Y).all():
        return  # the tile refuses such a forward before any backward
    with np.errstate(all="ignore"):
        _same(fast.input_gradient(saved, G), slow.input_gradient(saved_ref, G), "dL/dx")
    _same(fast.weight_gradient_pair(saved, G), slow.weight_gradient_pair(saved_ref, G),
          "weight gradient pair")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_draw_the_row_streams(dtype):
    """Input noise and stochastic rounding read the same numbers as ``row_draws`` for the
    round's tag: a one-element tile with bound 0 leaves ``u + noise * xi`` to compare."""
    p = IOParameters(inp_res=-1.0, inp_bound=-1.0, inp_noise=0.5, out_res=-1.0,
                     out_bound=-1.0, out_noise=0.0,
                     noise_management=NoiseManagementType.NONE,
                     bound_management=BoundManagementType.NONE)
    mvm = TorchTileMVM(p, 1, 3, dtype, TileRNG(7))
    rows = np.arange(4, dtype=np.int64)
    X = np.zeros((4, 3), dtype)
    key = np.uint64(123456789)
    V, factor = mvm._dac(X, 1.0, False, _Draws(key, rows, 2, kio.constants(dtype)))
    xi = kio.row_draws(key, rows, kio.tag(2, kio.TAG_INP_NOISE), 3, True,
                       kio.constants(dtype))
    assert factor is None
    np.testing.assert_array_equal(V, dtype(0.5) * xi)
