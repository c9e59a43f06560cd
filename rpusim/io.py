"""The analog matrix-vector product of one tile direction (forward, backward, or a compound read).

:class:`AnalogMVM` carries out aihwkit's ``ForwardBackwardPassIOManaged`` (spec io.md) for a
batch: noise management, the bound-management loop, the DAC (quantisation, clipping, input
noise, asymmetry), the analog product and its non-idealities (IR drop, voltage offsets and
series resistance, output-referred weight noise), and the ADC (nonlinearity, asymmetry,
output noise, quantisation, clipping). Small work is one numba call; larger work is one
NumPy GEMM per bound-management round over all its rows, between numba kernels for the
per-element stages (:mod:`rpusim.kernels.io`), the largest GEMMs on two threads.
"""

from __future__ import annotations

import os
import queue
import threading

import numba
import numpy as np

from rpusim.configs.enums import (AnalogMVType, BoundManagementType, NoiseManagementType,
                                  WeightNoiseType)
from rpusim.configs.io import IOParameters
from rpusim.kernels import io as kio
from rpusim.kernels.checks import all_finite
from rpusim.kernels.entry import entry_point
from rpusim.rng import TileRNG

__all__ = ["AnalogMVM"]

# aihwkit constants of the C++ IOMetaParameter that its Python IOParameters does not expose.
NM_ASSUMED_WMAX = 0.6
NM_DECAY = 1e-3

_NM_KIND = {
    NoiseManagementType.NONE: kio.NM_NONE,
    NoiseManagementType.ABS_MAX: kio.NM_ABS_MAX,
    NoiseManagementType.MAX: kio.NM_MAX,
    NoiseManagementType.CONSTANT: kio.NM_CONSTANT,
    NoiseManagementType.AVERAGE_ABS_MAX: kio.NM_AVERAGE_ABS_MAX,
    NoiseManagementType.ABS_MAX_NP_SUM: kio.NM_ABS_MAX_NP_SUM,
}

_BM_KIND = {
    BoundManagementType.NONE: kio.BM_NONE,
    BoundManagementType.ITERATIVE: kio.BM_ITERATIVE,
    BoundManagementType.ITERATIVE_WORST_CASE: kio.BM_ITERATIVE_WORST_CASE,
}

# batch x n_in x n_out up to which one ``kio.managed_mvm`` call (its own product loops) beats
# the row kernels (two numba calls around a BLAS product per bound-management round). Set in
# a training loop, not in a tight loop of one call: there the row kernels' many steps run cold
# (each first call of a step's NumPy, BLAS and numba code pays cache misses). A digits CNN's
# 160x72x16 calls: in a tight loop the fused forward took 52 us against 36 and its backward
# 38 against 51; in training, with the fused calls the CNN's step took 5-7 % less time.
FUSED_WORK = 1 << 18
# work from which a round's product runs in two halves of the outputs, side by side on this
# thread and a helper thread when numba may use two or more (NumPy's GEMM releases the GIL;
# OpenBLAS itself is kept at one thread). The halves depend on the shapes only, so the result
# does not depend on the thread count.
SPLIT_WORK = 1 << 21
# outputs of a split round from which its ADC runs in two halves of the rows too: below, the
# helper thread's hand-off (about 10-20 us on a 2-core VM) costs what the half saves
SPLIT_ADC = 1 << 15
# for tests: every configuration through the staged path (else only those with voltage
# offsets or read asymmetry, and those with IR drop or weight noise beyond FUSED_WORK)
STAGED_ONLY = False

_STATE_KEYS = ("nm_aux", "out_noise_values", "v_offset", "out_nonlinearity",
               "out_nonlinearity_factor", "w_asymmetry")


def _effective_step(res: float, bound: float, t) -> np.floating:
    """aihwkit's ``checkAndSetRes``: a resolution > 1 is a number of steps; times ``2 bound``."""
    r = t(max(res, 0.0))
    if r > 1:
        r = t(1) / r
    return r * (t(2) * t(bound))


class AnalogMVM:
    """One direction's analog MVM ``Y = U @ M.T`` through the IO model of ``params``.

    Parameters
    ----------
    params : IOParameters
        Validated IO parameters of this direction (not modified).
    n_out, n_in : int
        Output and input lengths of this direction.
    dtype : numpy dtype
        float32 or float64; all IO arithmetic is done in it.
    rng : TileRNG
        The tile's generator: construction-time draws (per-line output noise, voltage
        offsets, nonlinearities, read asymmetries) and every noise of every call.
    exact : bool
        No IO model at all (floating-point tiles; not even ``out_scale``).
    backward : bool
        Backward semantics of aihwkit: bound management is off whatever ``params`` says,
        an input whose noise-management scale is <= 0 gives zeros, and the output is
        rescaled by ``out_scale * alpha``.
    nm_state : ndarray, optional
        1-element array of the tile dtype holding the AverageAbsMax running value (negative
        before its first use). Pass the forward's :attr:`nm_state` to the backward MVM to
        share it, as aihwkit does.

    Notes
    -----
    ``is_test`` is accepted and ignored, as aihwkit's CPU tile ignores it: noise is present in
    evaluation too, and AverageAbsMax noise management updates its running value in both
    modes (checked against aihwkit 1.2.0).

    The voltage offsets ``v_i`` of the output lines are drawn as the rectified normal
    ``max(0, v_offset_std * xi)`` (project verdict 14); aihwkit 1.2.0's macro draws twice
    and yields 0 with probability 1/2 and an unrectified fresh normal otherwise.
    """

    # subclasses that read inputs in several time-sliced passes (rpusim.irdrop)
    time_sliced = False
    # kio.managed_mvm's compiled entry point for this object's argument types (mvm_finite)
    _entry = None
    # n_in * n_out for own_mvm (0 in objects pickled before it: they take mvm_finite), and
    # the last weight array own_mvm checked
    _cells = 0
    _own_w = None

    def __init__(self, params: IOParameters, n_out: int, n_in: int, dtype, rng: TileRNG,
                 exact: bool = False, *, backward: bool = False,
                 nm_state: np.ndarray | None = None):
        if not isinstance(params, IOParameters):
            raise TypeError(f"params must be IOParameters, got {type(params).__name__}")
        if params.mv_type in (AnalogMVType.SPLIT_MODE, AnalogMVType.BIT_WISE) and not (
                self.time_sliced or exact or params.is_perfect):
            raise ValueError(f"mv_type {params.mv_type.name} needs the time-sliced forward of "
                             f"a TorchInferenceRPUConfigIRDropT tile")
        self.params = params
        self.n_out = int(n_out)
        self.n_in = int(n_in)
        self.dtype = np.dtype(dtype)
        self.rng = rng
        self.exact = exact
        self.backward = backward
        self.perfect = exact or params.is_perfect or params.mv_type == AnalogMVType.IDEAL
        if nm_state is None:
            nm_state = np.full(1, -1.0, self.dtype)
        elif not (isinstance(nm_state, np.ndarray) and nm_state.shape == (1,)
                  and nm_state.dtype == self.dtype):
            raise ValueError(f"nm_state must be a 1-element {self.dtype} array, got {nm_state!r}")
        self.nm_state = nm_state
        self._empty1 = np.zeros(0, self.dtype)
        self._none = np.zeros((0, 0), self.dtype)
        self.out_noise_values = self._empty1
        self.v_offset = self._empty1
        self.out_nonlinearity = self._empty1
        self.out_nonlinearity_factor = np.ones(1, self.dtype)
        self.w_asymmetry = np.zeros((0, 0), self.dtype)
        if not self.perfect:
            self._setup()

    # -- construction ---------------------------------------------------------------------------
    def _setup(self) -> None:
        p = self.params
        t = self.dtype.type
        self._t = t
        self._c = kio.constants(self.dtype)
        self._inp_res = _effective_step(p.inp_res, p.inp_bound, t)
        self._out_res = _effective_step(p.out_res, p.out_bound, t)
        self._inp_bound = t(p.inp_bound) if p.inp_bound > 0 else t(np.inf)
        self._out_bound = t(p.out_bound) if p.out_bound > 0 else t(np.inf)
        self._nm = p.noise_management
        self._nm_kind = _NM_KIND[p.noise_management]
        self._nm_thres = t(p.nm_thres) if self._nm != NoiseManagementType.NONE else t(0)
        self._np_bound = t(1) if np.isinf(self._out_bound) else self._out_bound
        bm = BoundManagementType.NONE if self.backward else p.bound_management
        self._bm = bm
        self._bm_limit = (t(p.max_bm_res) / self._inp_res) if self._inp_res > 0 else None
        self._out_scale = t(p.out_scale)
        self._inp_asym = t(1) - t(p.inp_asymmetry)
        self._out_asym = t(1) - t(p.out_asymmetry)
        self._has_offsets = p.v_offset_std > 0 or p.r_series > 0
        self._has_nl = p.out_nonlinearity > 0 or p.r_series > 0
        self._w_noise = (p.w_noise_type != WeightNoiseType.NONE and p.w_noise > 0)
        if p.ir_drop > 0:
            j = np.arange(self.n_in, dtype=self.dtype)
            q = t(1) - j / t(self.n_in)
            self._ir_factor = t(1) - q * q
            self._ir_a_scale = t(self.n_in) / t(p.ir_drop_g_ratio)
        self._draw_line_parameters()
        # what the one-call kernels cover (kio.managed_mvm, and kio.managed_mvm_nonideal for
        # IR drop and weight noise); the rest takes the staged path at any batch size. The
        # row kernels cover neither of the two: larger calls with them take the staged path
        # (their extra products are BLAS's work there)
        self._nonideal = p.ir_drop > 0 or self._w_noise
        self._fusable = not (self._has_offsets or (p.w_read_asymmetry_dtod != 0
                                                   and p.mv_type != AnalogMVType.ONE_PASS))
        self._mv_kind = {AnalogMVType.ONE_PASS: kio.MV_ONE_PASS,
                         AnalogMVType.POS_NEG_SEPARATE: kio.MV_POS_NEG,
                         AnalogMVType.POS_NEG_SEPARATE_DIGITAL_SUM: kio.MV_POS_NEG_DIGITAL
                         }.get(p.mv_type, kio.MV_ONE_PASS)
        self._pack_parameters()
        self._work = self._new_work(max(self.n_in, self.n_out))
        self._rows_of = np.arange(0, dtype=np.int64)

    def _new_work(self, width: int) -> np.ndarray:
        """The kernels' scratch rows, ``width`` long: ``kio.WORK_ROWS``, or with IR drop or
        weight noise ``kio.WORK_ROWS_NONIDEAL``, whose row ``kio.WORK_IR_FACTOR`` holds the IR
        drop's factors of the inputs (the staged path's ``_ir_factor``)."""
        work = np.zeros((kio.WORK_ROWS_NONIDEAL if self._nonideal else kio.WORK_ROWS, width),
                        self.dtype)
        if self.params.ir_drop > 0:
            work[kio.WORK_IR_FACTOR, :self.n_in] = self._ir_factor
        return work

    def _pack_parameters(self) -> None:
        """The scalar parameters of ``kio.managed_mvm`` (its ``F_FIELDS`` and ``I_FIELDS``)."""
        p = self.params
        t = self._t
        values = {
            "inp_res": self._inp_res, "inp_bound": self._inp_bound, "inp_noise": p.inp_noise,
            "inp_asym_scale": self._inp_asym, "out_res": self._out_res,
            "out_bound": self._out_bound, "out_noise": p.out_noise,
            "out_asym_scale": self._out_asym, "nl_factor": self.out_nonlinearity_factor[0],
            "nm_thres": self._nm_thres, "nm_wmax": NM_ASSUMED_WMAX, "np_bound": self._np_bound,
            "max_bm_res": p.max_bm_res, "nm_decay": NM_DECAY, "out_scale": self._out_scale,
            "bm_limit": np.inf if self._bm_limit is None else self._bm_limit,
            "ir_drop": p.ir_drop, "ir_a_scale": self._ir_a_scale if p.ir_drop > 0 else 0.0,
            "w_noise": p.w_noise if self._w_noise else 0.0,
        }
        self._f = np.array([t(values[k]) for k in kio.F_FIELDS], self.dtype)
        flags = {
            "nm_kind": self._nm_kind, "bm_kind": _BM_KIND[self._bm],
            "backward": self.backward, "inp_sto": p.inp_sto_round,
            "out_sto": p.out_sto_round, "inp_asym": p.inp_asymmetry != 0,
            "out_asym": p.out_asymmetry > 0, "mv_kind": self._mv_kind,
            "max_bm_factor": p.max_bm_factor, "bm_test_negative": p.bm_test_negative_bound,
            "out_noisy": p.out_noise > 0 or self.out_noise_values.size > 0,
            "with_nl": self._has_nl,
            "w_noise_kind": (kio.W_NOISE_NONE if not self._w_noise else kio.W_NOISE_ADDITIVE
                             if p.w_noise_type == WeightNoiseType.ADDITIVE_CONSTANT
                             else kio.W_NOISE_PCM),
        }
        self._flags = np.array([int(flags[k]) for k in kio.I_FIELDS], np.int64)
        # per output line, as the kernels read them (no conditional loads in their loops)
        self._nl_line = (self.out_nonlinearity if self._has_nl
                         else np.zeros(self.n_out, self.dtype))
        self._noise_line = (self.out_noise_values if self.out_noise_values.size
                            else np.full(self.n_out, t(p.out_noise), self.dtype))
        # kio.managed_mvm's entry point (mvm_finite): made again for the new arrays' types
        self._entry = None
        self._cells = self.n_in * self.n_out

    def _draw_line_parameters(self) -> None:
        """Construction-time draws, in aihwkit's order (spec §2.6)."""
        p = self.params
        t = self._t
        if self._has_offsets:
            self.v_offset = np.maximum(t(p.v_offset_std) * self.rng.normal(self.n_out, self.dtype),
                                       t(0))
        bound = self._out_bound if np.isfinite(self._out_bound) else t(1)
        if self._has_nl:
            spread = t(max(p.out_nonlinearity_std, 0.0))
            xi = self.rng.normal(self.n_out, self.dtype)
            self.out_nonlinearity = np.abs(t(p.out_nonlinearity) / bound * (t(1) + spread * xi))
        if p.slope_calibration > 0:
            mean_nl = (np.abs(self.out_nonlinearity).sum(dtype=self.dtype) / t(self.n_out)
                       if p.out_nonlinearity > 0 else t(0))
            f = t(1) + (mean_nl + t(p.r_series)) * t(p.slope_calibration) * bound
            self.out_nonlinearity_factor = np.array([f * f], self.dtype)
        if p.w_read_asymmetry_dtod != 0:
            xi = self.rng.normal((self.n_out, self.n_in), self.dtype)
            self.w_asymmetry = t(1) + t(p.w_read_asymmetry_dtod) * xi
        if p.out_noise_std > 0:
            xi = self.rng.normal(self.n_out, self.dtype)
            self.out_noise_values = np.abs(t(p.out_noise) * (t(1) + t(p.out_noise_std) * xi))

    # -- state ----------------------------------------------------------------------------------
    def get_state(self) -> dict[str, np.ndarray]:
        """Copies of everything beyond the config that a bit-identical continuation needs.

        Keys: ``nm_aux`` (AverageAbsMax running value, shared with the other direction),
        ``out_noise_values``, ``v_offset``, ``out_nonlinearity`` (per output line; empty when
        off), ``out_nonlinearity_factor`` (1 element) and ``w_asymmetry`` ((n_out, n_in) in
        the layout of this direction's matrix; empty when off).
        """
        return {
            "nm_aux": self.nm_state.copy(),
            "out_noise_values": self.out_noise_values.copy(),
            "v_offset": self.v_offset.copy(),
            "out_nonlinearity": self.out_nonlinearity.copy(),
            "out_nonlinearity_factor": self.out_nonlinearity_factor.copy(),
            "w_asymmetry": self.w_asymmetry.copy(),
        }

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore the output of :meth:`get_state`; validated fully before anything is set.

        Raises
        ------
        ValueError
            Missing or unknown keys, a shape different from this MVM's, or NaN/inf.
        """
        if not isinstance(state, dict) or set(state) != set(_STATE_KEYS):
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"IO state must have the keys {sorted(_STATE_KEYS)}, got {got}")
        current = self.get_state()
        checked = {}
        for name in _STATE_KEYS:
            arr = np.asarray(state[name])
            if arr.dtype.kind not in "iuf" or arr.shape != current[name].shape:
                raise ValueError(f"IO state {name!r} must be a real array of shape "
                                 f"{current[name].shape}, got {arr.dtype} {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"IO state {name!r} contains NaN or inf")
            checked[name] = arr.astype(self.dtype)
        self.nm_state[...] = checked.pop("nm_aux")
        for name, arr in checked.items():
            setattr(self, name, arr)
        if not self.perfect:
            self._pack_parameters()

    # -- the MVM --------------------------------------------------------------------------------
    def mvm(self, M: np.ndarray, U: np.ndarray, is_test: bool = False) -> np.ndarray:
        """Return the IO-managed ``U @ M.T``.

        Parameters
        ----------
        M : ndarray, shape (n_out, n_in)
            The matrix of this direction (forward ``W``, backward a view ``W.T``).
        U : ndarray, shape (batch, n_in)
            Inputs in the tile dtype.
        is_test : bool
            Ignored, as in aihwkit (see the class notes).

        Returns
        -------
        ndarray, shape (batch, n_out), tile dtype
        """
        dt = self.dtype
        if type(M) is not np.ndarray or M.dtype != dt:
            M = np.asarray(M, dtype=dt)
        if type(U) is not np.ndarray or U.dtype != dt:
            U = np.asarray(U, dtype=dt)
        return self.mvm_finite(M, U, check=False)[0]

    __call__ = mvm

    def __getstate__(self) -> dict:
        # a compiled entry point does not pickle; the first fused call makes it again
        state = self.__dict__.copy()
        state.pop("_entry", None)
        return state

    def kernel_arguments(self) -> tuple:
        """``kio.managed_mvm``'s arguments after the key that this object holds: ``(f,
        flags, nl_line, noise_line)``, then ``(nm_state, c, work)`` (kernels that call it
        themselves pass the key between the two)."""
        return (self._f, self._flags, self._nl_line, self._noise_line, self.nm_state, self._c,
                self._work)

    def own_mvm(self, W: np.ndarray, transposed: bool, U: np.ndarray) -> np.ndarray | None:
        """The tile's own MVM in the fewest steps: ``U @ W.T`` (``U @ W`` when
        ``transposed``) through the one-call kernel's entry point, for ``W`` the tile's
        weights (C-contiguous, tile dtype) and ``U`` 2-d in the tile dtype.

        Returns None, having changed nothing, where the entry point does not exist yet, does
        not fit ``U`` or the work, or the inputs or outputs are not finite (the kernel puts
        the AverageAbsMax value back, this the key): the caller then takes
        :meth:`mvm_finite`, which makes the entry point or says what is wrong.
        """
        entry = self._entry
        m = U.shape[0]
        if (entry is None or not 0 < m * self._cells <= FUSED_WORK or not U.flags.carray
                or U.dtype is not self.dtype or STAGED_ONLY):
            return None
        if W is not self._own_w:  # checked once per weight array: layout and dtype are fixed
            if not (W.flags.carray and W.dtype is self.dtype and W.shape == (
                    (self.n_in, self.n_out) if transposed else (self.n_out, self.n_in))):
                return None
            self._own_w = W
        Y = np.empty((m, self.n_out), self.dtype)
        if entry(W, transposed, U, Y, self._f, self._flags, self._nl_line, self._noise_line,
                 self.rng.raw_key(), self.nm_state, self._c, self._work):
            return Y
        self.rng.unkey(1)
        return None

    def mvm_finite(self, M: np.ndarray, U: np.ndarray, check: bool = True
                   ) -> tuple[np.ndarray, bool]:
        """:meth:`mvm` for arrays already in the tile dtype, and whether the inputs and the
        result are finite (the one-call kernel always tests both, counting the inputs as it
        reads them; the row kernels the result; the other paths test the inputs before they
        start, and the staged and perfect paths the result, when ``check``). Non-finite
        inputs return ``(None, False)`` from the paths that test them first."""
        if self._entry is not None:
            # the usual small call through the one-call kernel's entry point (made by the
            # first such call below); a call it refuses, or whose result is not finite, goes
            # on below with nothing changed
            Y = self.own_mvm(*((M, False) if M.flags.carray else (M.T, True)), U)
            if Y is not None:
                return Y, True
        m = U.shape[0]
        work = m * M.shape[0] * M.shape[1]
        fused = not self.perfect and self._fusable and not STAGED_ONLY and 0 < work <= FUSED_WORK
        if check and not fused and not all_finite(U):
            return None, False
        if self.perfect:
            Y = U @ M.T
            if not self.exact and self.params.out_scale != 1:
                Y *= self.dtype.type(self.params.out_scale)
            return Y, not check or all_finite(Y)
        if m == 0:
            return np.zeros((m, self.n_out), self.dtype), True
        # one key per call fixes every random number of it (streams per row and tag)
        key = self.rng.key()
        if not self._fusable or STAGED_ONLY or (self._nonideal and work > FUSED_WORK):
            Y = self._staged(M, U, key)
            return Y, not check or all_finite(Y)
        if work > FUSED_WORK:
            return self._rows(M, U, key)
        if M.flags.c_contiguous:
            W, transposed = M, False
        elif M.T.flags.c_contiguous:
            W, transposed = M.T, True
        else:
            W, transposed = np.ascontiguousarray(M), False
        n_out = M.shape[0]
        if self._work.shape[1] < n_out or self._work.shape[1] < U.shape[1]:
            self._work = self._new_work(max(n_out, U.shape[1]))
        if not U.flags.c_contiguous:
            U = np.ascontiguousarray(U)
        Y = np.empty((m, n_out), self.dtype)
        args = (W, transposed, U, Y, self._f, self._flags, self._nl_line, self._noise_line, key,
                self.nm_state, self._c, self._work)
        kernel = kio.managed_mvm_nonideal if self._nonideal else kio.managed_mvm
        finite = kernel(*args)
        # the entry point fits later calls whose W and U have these types (the other
        # arguments are this object's own arrays, of fixed types)
        if (W.flags.carray and U.flags.carray and W.dtype is self.dtype
                and U.dtype is self.dtype):
            self._entry = entry_point(kernel, args)
        return Y, finite

    def _rows(self, M: np.ndarray, U: np.ndarray, key) -> tuple[np.ndarray, bool]:
        """The managed MVM with the row kernels: per bound-management round, one
        ``kio.dac_rows`` call, one BLAS product of the round's rows and ``kio.adc_rows``; the
        next round takes only the rows that failed the bound test. Returns the outputs and
        whether they are all finite."""
        t = self._t
        m = U.shape[0]
        n_out = M.shape[0]
        if not U.flags.c_contiguous:
            U = np.ascontiguousarray(U)
        if self._work.shape[1] < max(n_out, U.shape[1]):  # the kernels' scratch rows
            self._work = self._new_work(max(n_out, U.shape[1]))
        if self._rows_of.size < m:
            self._rows_of = np.arange(m, dtype=np.int64)
        rows = self._rows_of[:m]
        out = np.empty((m, n_out), self.dtype)
        V = np.empty((m, U.shape[1]), self.dtype)
        alpha = np.empty(m, self.dtype)
        scale = np.empty(m, self.dtype)
        passed = np.empty(m, np.bool_)
        bm_on = self._bm != BoundManagementType.NONE
        finite = True
        red = 0.5
        bm_round = 0
        while True:
            red *= 2.0
            if (bm_round == 1 and self._bm == BoundManagementType.ITERATIVE_WORST_CASE
                    and self._nm != NoiseManagementType.ABS_MAX_NP_SUM):
                red = 1.0
            # aihwkit's stop criteria: reduction beyond max_bm_factor, or beyond max_bm_res
            # DAC steps (red = 16 with the defaults); known before the round
            final = not bm_on or int(red) > self.params.max_bm_factor or (
                self._bm_limit is not None and t(red) > self._bm_limit)
            k = rows.size
            Vk = V[:k]
            one_hot = kio.dac_rows(U, rows, Vk, alpha, scale, self._f, self._flags, bm_round,
                                   red, key, self.nm_state, self._c, self._work)
            Y = out if bm_round == 0 else np.empty((k, n_out), self.dtype)
            finite &= self._product_adc(M, Vk, Y, rows, out, alpha, scale, key, bm_round,
                                        final, passed[:k], one_hot)
            if final:
                return out, finite
            rows = rows[~passed[:k]]
            if not rows.size:
                return out, finite
            bm_round += 1

    def _product_adc(self, M, V, Y, rows, out, alpha, scale, key, bm_round, final, passed,
                     one_hot) -> bool:
        """``Y = V @ M.T`` and ``kio.adc_rows`` of one round (see ``SPLIT_WORK``); returns
        whether the outputs finished in it are finite."""
        k = V.shape[0]

        def adc(Y, Y2):
            return kio.adc_rows(Y, Y2, rows, out, alpha, scale, self._f, self._flags,
                                self._nl_line, self._noise_line, key, bm_round, final, passed,
                                self._c, self._work)

        if self._mv_kind != kio.MV_ONE_PASS:
            zero = self._t(0)
            Yneg = np.minimum(V, zero) @ M.T
            np.matmul(np.maximum(V, zero), M.T, out=Y)
            if self._mv_kind == kio.MV_POS_NEG_DIGITAL:
                return adc(Y, Yneg)
            Y += Yneg
            return adc(Y, self._none)
        if k > 1 and one_hot:
            # a batch of one-hot inputs (a drift compensation's identity readout) is read as a
            # gather of columns of M: exactly the product's values (one nonzero term per
            # output) at a fraction of a GEMM's cost
            kio.one_hot_product(M, V, Y)
            return adc(Y, self._none)

        n_out = M.shape[0]
        if n_out < 2 or k * V.shape[1] * n_out < SPLIT_WORK:
            np.matmul(V, M.T, out=Y)
        else:
            # two halves of the outputs (the weights' rows): each GEMM packs only its half of
            # the matrix, so the split adds no work (a split of the batch packs all of it
            # twice: +10-20 % CPU)
            h = n_out // 2
            halves = ((0, h), (h, n_out))

            def product(i):
                a, b = halves[i]
                np.matmul(V, M[a:b].T, out=Y[:, a:b])

            _two_threads(product, len(halves))
            if k >= 2 and k * n_out >= SPLIT_ADC:
                # and the ADC in two halves of the rows (it needs whole rows)
                h = k // 2
                parts = ((0, h), (h, k))
                finite = [True, True]
                works = (self._work, np.zeros((3, n_out), self.dtype))  # one per thread

                def adc_part(i):
                    a, b = parts[i]
                    finite[i] = kio.adc_rows(Y[a:b], self._none, rows[a:b], out, alpha, scale,
                                             self._f, self._flags, self._nl_line,
                                             self._noise_line, key, bm_round, final,
                                             passed[a:b], self._c, works[i])

                _two_threads(adc_part, len(parts))
                return finite[0] and finite[1]
        return adc(Y, self._none)

    def _staged(self, M: np.ndarray, U: np.ndarray, key) -> np.ndarray:
        """The managed MVM with NumPy products, stage by stage over the rows still in play."""
        t = self._t
        m = U.shape[0]
        Y = np.zeros((m, self.n_out), self.dtype)
        rows = np.arange(m, dtype=np.int64)
        nm_on = self._nm != NoiseManagementType.NONE
        alpha = self._nm_scales(U, rows, self._nm_kind)
        if nm_on:
            zero_input = alpha <= 0
            if self.backward or self.params.inp_noise <= 0:
                rows = rows[~zero_input]
        bm_on = self._bm != BoundManagementType.NONE
        scale = np.ones(m, self.dtype)
        red = 0.5
        bm_round = 0
        while rows.size:
            red *= 2.0
            if (bm_round == 1 and self._bm == BoundManagementType.ITERATIVE_WORST_CASE
                    and self._nm != NoiseManagementType.ABS_MAX_NP_SUM):
                alpha[rows] = self._nm_scales(U, rows, kio.NM_ABS_MAX_NP_SUM)
                red = 1.0
            s = np.ones(rows.size, self.dtype)
            if nm_on:
                a = alpha[rows]
                pos = a > 0
                s[pos] = s[pos] / a[pos]
            if bm_on:
                s = s / t(red)
            out, passed = self._analog_mv(M, U, rows, s, _Draws(key, rows, bm_round, self._c))
            if rows.size == m:
                Y = out
            else:
                Y[rows] = out
            scale[rows] = s
            bm_round += 1
            if bm_on:
                # aihwkit's stop criteria: reduction beyond max_bm_factor, or beyond
                # max_bm_res DAC steps (red = 16 with the defaults).
                stop = int(red) > self.params.max_bm_factor or (
                    self._bm_limit is not None and t(red) > self._bm_limit)
                rows = rows[~passed] if not stop else rows[:0]
            else:
                rows = rows[:0]
        if not self.backward:
            factor = self._out_scale / scale
        elif nm_on:
            factor = self._out_scale * np.where(alpha > 0, alpha, t(1))
        else:
            factor = np.full(m, self._out_scale, self.dtype)
        Y *= factor[:, None]
        return Y

    def _nm_scales(self, U, rows, kind) -> np.ndarray:
        t = self._t
        return kio.noise_management(U, rows, kind, self._nm_thres, t(NM_ASSUMED_WMAX),
                                    self._np_bound, self._inp_res, t(self.params.max_bm_res),
                                    t(NM_DECAY), self.nm_state, self._c)

    def _analog_mv(self, M, U, rows, scale, draws: "_Draws"):
        """One analog pass of the rows (spec §4.1-4.3, §5); returns outputs and bound tests."""
        p = self.params
        n = self.n_in
        xi = draws.normals(kio.TAG_INP_NOISE, n) if p.inp_noise > 0 else self._none
        sto = p.inp_sto_round and self._inp_res > 0
        uni = draws.uniforms(kio.TAG_INP_UNIFORM, n) if sto else self._none
        V = kio.prepare_input(U, rows, scale, self._inp_res, self._inp_bound, self._t(p.inp_noise),
                              xi, self._inp_asym, p.inp_asymmetry != 0, p.inp_sto_round, uni,
                              self._c)
        if p.mv_type == AnalogMVType.ONE_PASS:
            Y = _product(V, M)
            self._nonidealities(M, V, Y, draws, kio.TAG_W_NOISE)
            return Y, self._finalize(Y, draws, kio.TAG_OUT_NOISE, kio.TAG_OUT_UNIFORM)
        digital = p.mv_type == AnalogMVType.POS_NEG_SEPARATE_DIGITAL_SUM
        Mneg = M * self.w_asymmetry if p.w_read_asymmetry_dtod > 0 else M
        Vneg = np.minimum(V, self._t(0))
        Yneg = Vneg @ Mneg.T
        self._nonidealities(Mneg, Vneg, Yneg, draws, kio.TAG_NEG_W_NOISE)
        if digital:
            passed_neg = self._finalize(Yneg, draws, kio.TAG_NEG_OUT_NOISE,
                                        kio.TAG_NEG_OUT_UNIFORM)
        Vpos = np.maximum(V, self._t(0))
        Y = Vpos @ M.T
        self._nonidealities(M, Vpos, Y, draws, kio.TAG_W_NOISE)
        if digital:
            passed = self._finalize(Y, draws, kio.TAG_OUT_NOISE, kio.TAG_OUT_UNIFORM)
            Y += Yneg
            return Y, passed & passed_neg
        Y += Yneg
        return Y, self._finalize(Y, draws, kio.TAG_OUT_NOISE, kio.TAG_OUT_UNIFORM)

    def _nonidealities(self, M, V, Y, draws, w_noise_tag) -> None:
        """IR drop, voltage offsets / series resistance, weight read noise (spec §6), in place."""
        p = self.params
        t = self._t
        if p.ir_drop > 0:
            a = self._ir_a_scale * (np.abs(V) @ np.abs(M).T)
            c = a * (a * (t(0.05) * a - t(0.2)) + t(0.5))
            drop = t(p.ir_drop) * ((V * self._ir_factor) @ M.T)
            Y -= c * drop
        if self._has_offsets:
            self._voltage_offsets(V, Y)
        if self._w_noise:
            if p.w_noise_type == WeightNoiseType.ADDITIVE_CONSTANT:
                std = t(p.w_noise) * np.sqrt((V * V).sum(axis=1, keepdims=True))
            else:
                std = t(p.w_noise) * np.sqrt((V * V) @ np.abs(M).T)
            Y += std * draws.normals(w_noise_tag, Y.shape[1])

    def _voltage_offsets(self, V, Y) -> None:
        p = self.params
        t = self._t
        one = t(1)
        rs = t(max(p.r_series, 0.0))
        vo = self.v_offset
        if p.v_offset_w_min == 0:
            if rs <= 0:
                Y *= one - vo
            else:
                Y[...] = (one - vo) * Y / (one + rs * np.abs(Y))
            return
        x_sum = V.sum(axis=1, keepdims=True)
        if rs <= 0:
            y_ref2 = t(-p.v_offset_w_min) * x_sum * t(2)
            Y[...] = Y * (one - vo) - vo * y_ref2
        else:
            y_ref = t(-p.v_offset_w_min) * x_sum
            y_pos = Y + y_ref
            Y[...] = ((one - vo) * y_pos / (one + rs * np.abs(y_pos))
                      - (one + vo) * y_ref / (one + rs * np.abs(y_ref)))

    def _finalize(self, Y, draws, noise_tag, uniform_tag) -> np.ndarray:
        p = self.params
        t = self._t
        nl = self.out_nonlinearity if self._has_nl else self._empty1
        noisy = p.out_noise > 0 or self.out_noise_values.size > 0
        n = Y.shape[1]
        xi = draws.normals(noise_tag, n) if noisy else self._none
        sto = p.out_sto_round and self._out_res > 0
        uni = draws.uniforms(uniform_tag, n) if sto else self._none
        return kio.finalize_output(Y, nl, self.out_nonlinearity_factor[0], self._out_asym,
                                   p.out_asymmetry > 0, self.out_noise_values, t(p.out_noise), xi,
                                   self._out_res, self._out_bound, p.out_sto_round, uni,
                                   self._bm != BoundManagementType.NONE,
                                   p.bm_test_negative_bound, self._c)


def _two_threads(task, n: int) -> None:
    """``task(i)`` for ``i < n`` on this thread and the helper thread (see ``SPLIT_WORK``):
    each takes the next ``i`` until none is left, so a helper that starts late (a busy
    machine) leaves its share to this thread instead of delaying it. The results do not
    depend on which thread ran which ``i``."""
    if numba.get_num_threads() < 2:
        for i in range(n):
            task(i)
        return
    claim = threading.Lock()
    next_i = [0]
    helper_took = [False]
    helper_done = threading.Lock()
    helper_done.acquire()
    errors = []

    def take(by_helper=False):
        with claim:
            i = next_i[0]
            next_i[0] += 1
            if by_helper and i < n:
                helper_took[0] = True
        return i

    def helper():
        i = take(True)
        if i >= n:
            return
        try:
            while i < n:
                task(i)
                i = take(True)
        except BaseException as exc:  # re-raised on the calling thread
            errors.append(exc)
        finally:
            helper_done.release()

    _helper_queue().put(helper)
    try:
        i = take()
        while i < n:
            task(i)
            i = take()
    finally:
        # every index is taken now (an error here: the rest is taken away from the helper),
        # so whether the helper took one is settled; wait for it before returning
        with claim:
            next_i[0] = n
            wait = helper_took[0]
        if wait:
            helper_done.acquire()
    if errors:
        raise errors[0]


_helper = (None, None)


def _helper_queue() -> queue.SimpleQueue:
    """The job queue of this process's one helper thread (a new one after a fork: the
    parent's thread does not exist in the child). A daemon thread and a plain queue: a
    thread pool's futures cost about 15 us of this thread's time per call."""
    global _helper
    jobs, pid = _helper
    if jobs is None or pid != os.getpid():
        jobs = queue.SimpleQueue()

        def run():
            while True:
                jobs.get()()

        threading.Thread(target=run, name="rpusim-io", daemon=True).start()
        _helper = (jobs, os.getpid())
    return jobs


def _product(V: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``V @ M.T``; a batch of one-hot rows (a drift compensation's identity readout) is read
    as a gather of columns of ``M``, exactly the product's values (one nonzero term per
    output) at a fraction of a GEMM's cost."""
    if V.shape[0] > 1 and ((V != 0).sum(axis=1) <= 1).all():
        Y = np.empty((V.shape[0], M.shape[0]), np.result_type(V, M))
        kio.one_hot_product(M, V, Y)
        return Y
    return V @ M.T


class _Draws:
    """The random numbers of one bound-management round of the staged path: row ``r`` of
    each array comes from the stream of batch row ``rows[r]``, as in ``kio.managed_mvm``."""

    def __init__(self, key, rows: np.ndarray, bm_round: int, c: np.ndarray):
        self.key = key
        self.rows = rows
        self.bm_round = bm_round
        self.c = c

    def tag(self, purpose: int) -> int:
        """The stream tag of ``purpose`` (``kio.TAG_*``) in this round: ``kio.tag``'s own
        Python function (its dispatcher costs a microsecond from Python)."""
        return _tag(self.bm_round, purpose)

    def normals(self, purpose: int, n: int) -> np.ndarray:
        return kio.row_draws(self.key, self.rows, self.tag(purpose), n, True, self.c)

    def uniforms(self, purpose: int, n: int) -> np.ndarray:
        return kio.row_draws(self.key, self.rows, self.tag(purpose), n, False, self.c)


_tag = getattr(kio.tag, "py_func", kio.tag)
