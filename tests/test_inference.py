"""Inference: the noise models against NumPy references fed the kernels' own draws, invariants
(hypothesis), and the tile semantics of programming, drift, compensation and persistence."""

import io
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numba import get_num_threads, set_num_threads

import naive_inference as ref
import rpusim.inference as inf
from rpusim import AnalogTile
from rpusim.configs import InferenceRPUConfig, IOParameters, SingleRPUConfig
from rpusim.kernels import inference as kinf
from rpusim.persistence import state_differences


def _key(seed):
    """The kernel key a model draws first from ``np.random.default_rng(seed)``."""
    return np.random.default_rng(seed).bit_generator.random_raw()


def _targets(shape=(6, 9), g_max=25.0, seed=0):
    g = np.random.default_rng(seed).uniform(0, g_max, shape)
    g[0, :3] = 0.0
    g[1, 0] = g_max
    return g


# -- formulas against the references, draw for draw -----------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pcm_programming_and_nu(dtype):
    model = inf.PCMLikeNoiseModel(g_max=30.0, prog_noise_scale=0.7, drift_scale=1.3)
    g = _targets(g_max=30.0).astype(dtype)
    got = model.apply_programming_noise_to_conductance(g, np.random.default_rng(1))
    xi = ref.row_normals(_key(1), kinf._TAG_PROG, *g.shape)
    want = ref.program(g.astype(float), [0.26348, 1.9650, -1.1731], 30.0, 30.0 / 25.0, 0.7,
                       True, xi)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    nu = model.generate_drift_coefficients(g, np.random.default_rng(2))
    xi = ref.row_normals(_key(2), kinf._TAG_NU, *g.shape)
    np.testing.assert_allclose(nu, ref.pcm_nu(g.astype(float), 30.0, 1.3, xi), rtol=1e-6)


def test_explicit_reference_scales_the_coefficients():
    """aihwkit 1.2.0 crashes here; rpusim scales sigma_p by g_max / g_ref (spec verdict)."""
    model = inf.PCMLikeNoiseModel(prog_coeff=[0.5, 1.0, 0.0], g_max=40.0,
                                  prog_coeff_g_max_reference=20.0)
    g = _targets(g_max=40.0)
    got = model.apply_programming_noise_to_conductance(g, np.random.default_rng(3))
    xi = ref.row_normals(_key(3), kinf._TAG_PROG, *g.shape)
    np.testing.assert_allclose(got, ref.program(g, [0.5, 1.0, 0.0], 40.0, 2.0, 1.0, True, xi),
                               rtol=1e-12)
    assert inf.PCMLikeNoiseModel(prog_coeff_g_max_reference=50.0).prog_coeff_g_max_reference \
        == 25.0  # the default coefficients keep their own reference, as aihwkit
    wan = inf.ReRamWan2022NoiseModel(coeff_g_max_reference=50.0)
    got = wan.apply_programming_noise_to_conductance(g[:, :1] * 0 + 10.0,
                                                     np.random.default_rng(4))
    xi = ref.row_normals(_key(4), kinf._TAG_PROG, g.shape[0], 1)
    np.testing.assert_allclose(got, ref.program(np.full((g.shape[0], 1), 10.0),
                                                wan.coeff_dic[1.0], 25.0, 0.5, 1.0, True, xi))


@pytest.mark.parametrize("t", [0.0, 1.0, 3600.0, 3.15e7])
def test_pcm_drift_and_read_noise(t):
    model = inf.PCMLikeNoiseModel(read_noise_scale=1.5)
    g = _targets()
    nu = np.random.default_rng(5).uniform(0, 0.1, g.shape)
    got = model.apply_drift_noise_to_conductance(g, nu, t, np.random.default_rng(6))
    xi = ref.consumed(ref.row_normals(_key(6), kinf._TAG_READ, *g.shape), g != 0)
    np.testing.assert_allclose(got, ref.pcm_drift_read(g, nu, t, 20.0, 250e-9, 25.0, 1.5, xi),
                               rtol=1e-10, atol=1e-12)


def test_custom_drift_and_state_independent():
    table = {"g_lst": [0.0, 10.0, 25.0], "nu_mean_lst": [0.1, 0.05, 0.02],
             "nu_std_lst": [0.01, 0.02, 0.0]}
    model = inf.CustomDriftPCMLikeNoiseModel(table, drift_scale=2.0)
    g = _targets()
    nu = model.generate_drift_coefficients(g, np.random.default_rng(7))
    xi = ref.row_normals(_key(7), kinf._TAG_NU, *g.shape)
    np.testing.assert_allclose(nu, ref.table_nu(g, table["g_lst"], table["nu_mean_lst"],
                                                table["nu_std_lst"], 2.0, xi), rtol=1e-12)
    si = inf.StateIndependentNoiseModel(prog_coeff=[0.3, 0.1, 0.05], drift_nu_mean=0.08)
    got = si.apply_programming_noise_to_conductance(g, np.random.default_rng(8))
    xi = ref.row_normals(_key(8), kinf._TAG_PROG, *g.shape)
    np.testing.assert_allclose(got, ref.program(g, [0.3, 0.1, 0.05], 25.0, 1.0, 1.0, True, xi))
    nu = si.generate_drift_coefficients(g, np.random.default_rng(9))
    xi = ref.row_normals(_key(9), kinf._TAG_NU, *g.shape)
    np.testing.assert_allclose(nu, np.abs(0.08 + 0.05 * xi))
    got = si.apply_drift_noise_to_conductance(g, nu, 500.0, np.random.default_rng(10))
    xi = ref.consumed(ref.row_normals(_key(10), kinf._TAG_READ, *g.shape), g != 0)
    np.testing.assert_allclose(got, ref.relative_drift_read(g, nu, 500.0, 20.0, 250e-9, 25.0,
                                                            1.0, xi), rtol=1e-10, atol=1e-12)


def test_reram_models():
    wan = inf.ReRamWan2022NoiseModel(noise_scale=0.5)
    g = _targets()
    got = wan.apply_drift_noise_to_conductance(g * 0, g, 86400.0, np.random.default_rng(11))
    xi = ref.row_normals(_key(11), kinf._TAG_PROG, *g.shape)
    np.testing.assert_allclose(got, ref.program(g, wan.coeff_dic[86400.0], 25.0, 1.0, 0.5,
                                                True, xi), rtol=1e-10, atol=1e-12)
    with pytest.raises(ValueError, match="fitted times"):
        wan.apply_drift_noise_to_conductance(g, g, 10.0, np.random.default_rng(0))
    cmo = inf.ReRamCMONoiseModel()
    assert cmo.acceptance_range == 0.2  # not a key: the smallest key, as aihwkit 1.2.0
    g = 9.0 + _targets(g_max=79.0)
    got = cmo.apply_programming_noise_to_conductance(g, np.random.default_rng(12))
    xi = ref.row_normals(_key(12), kinf._TAG_PROG, *g.shape)
    np.testing.assert_allclose(got, ref.program(g, [0.00081107, 0.00106879], 1.0, 1.0, 1.0,
                                                False, xi), rtol=1e-12)
    got = cmo.apply_drift_noise_to_conductance(g, None, 1000.0, np.random.default_rng(13))
    xi = ref.row_normals(_key(13), kinf._TAG_RELAX, g.shape[0], 2 * g.shape[1])
    want = ref.cmo_drift(g, 1000.0, -0.08900206, 0.04201137, 0.41183342, 1.0, 0.0277316483,
                         1e-6, 1.0, 9.0, 88.199997, xi[:, ::2], xi[:, 1::2])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    np.testing.assert_array_equal(cmo.apply_drift_noise_to_conductance(g, None, 0.0, None), g)


# -- converters -----------------------------------------------------------------------------------
_weights = st.integers(0, 2**31 - 1).map(
    lambda s: np.random.default_rng(s).uniform(-2, 2, (4, 5)) *
    np.random.default_rng(s + 1).integers(0, 2, (4, 5)))


@given(w=_weights, g_max=st.floats(1.0, 100.0), frac=st.floats(0.0, 0.9))
def test_converters_round_trip_within_range(w, g_max, frac):
    g_min = frac * g_max
    for conv, n in ((inf.SinglePairConductanceConverter(g_max, g_min), 2),
                    (inf.NPairConductanceConverter([1.0, 2.0, 4.0], g_max, g_min), 6),
                    (inf.DualPairConductanceConverter([1.0, 3.0], g_max, g_min), 4),
                    (inf.SingleDeviceConductanceConverter(g_max, g_min), 1)):
        slices, params = conv.convert_to_conductances(w)
        assert len(slices) == n
        for g in slices:
            assert g.min() >= g_min - 1e-9 * g_max and g.max() <= g_max * (1 + 1e-9)
        np.testing.assert_allclose(conv.convert_back_to_weights(slices, params), w,
                                   atol=1e-9 * max(1.0, np.abs(w).max()))


def test_converters_against_references():
    w = np.random.default_rng(14).uniform(-1, 1, (5, 6))
    slices, params = inf.SinglePairConductanceConverter(30.0, 3.0).convert_to_conductances(w)
    want, k = ref.single_pair(w, 30.0, 3.0)
    np.testing.assert_allclose(slices, want)
    assert params["scale_ratio"] == pytest.approx(k)
    slices, params = inf.NPairConductanceConverter([1.0, 2.0], 20.0, 1.0).convert_to_conductances(w)
    want, k = ref.n_pair(w, [1.0, 2.0], 20.0, 1.0)
    np.testing.assert_allclose(slices, want)


@pytest.mark.parametrize("make, match", [
    (lambda: inf.SinglePairConductanceConverter(g_max=5.0, g_min=5.0), "smaller than g_max"),
    (lambda: inf.SinglePairConductanceConverter(g_max=-1.0), "g_max"),
    (lambda: inf.DualPairConductanceConverter([1.0, 2.0, 3.0]), "2 factors"),
    (lambda: inf.NPairConductanceConverter([1.0, 0.0]), "factors > 0"),
    (lambda: inf.CustomPairConductanceConverter([1.0], [[0.0, 25.0]]), "2 \\* len"),
    (lambda: inf.PCMLikeNoiseModel(t_0=0.0), "t_0"),
    (lambda: inf.PCMLikeNoiseModel(prog_coeff=[]), "prog_coeff"),
    (lambda: inf.CustomDriftPCMLikeNoiseModel(
        {"g_lst": [1.0, 25.0], "nu_mean_lst": [0.1, 0.1], "nu_std_lst": [0.0, 0.0]}), "cover"),
    (lambda: inf.ReRamWan2022NoiseModel(coeff_dic={1.0: "x"}), "coeff_dic"),
    (lambda: InferenceRPUConfig(noise_model="PCM").validate(), "noise_model"),
])
def test_bad_configs_raise(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_custom_pair_that_does_not_invert_raises():
    with pytest.raises(ArithmeticError):
        inf.CustomPairConductanceConverter([1.0], [[0.0, 0.0, 10.0, 10.0, 25.0],
                                                   [25.0, 10.0, 10.0, 0.0, 0.0]])


# -- invariants -----------------------------------------------------------------------------------
@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0.0, 1e9), scale=st.floats(0.0, 3.0))
def test_drift_never_increases_conductance(seed, t, scale):
    rng = np.random.default_rng(seed)
    g = rng.uniform(0, 25, (5, 7))
    nu = rng.uniform(0, 0.2, g.shape)
    out = np.empty_like(g)
    kinf.drift_read(g, nu, t, 20.0, 250e-9, 25.0, 0.0, kinf.READ_PCM, np.uint64(seed), out)
    assert np.all(np.abs(out) <= np.abs(g))
    model = inf.StateIndependentNoiseModel(read_noise_scale=0.0, drift_scale=scale)
    nu = model.generate_drift_coefficients(g, rng)
    assert np.all(nu >= 0)
    assert np.all(model.apply_drift_noise_to_conductance(g, nu, t, rng) <= g)


def _perfect_tile(shape=(5, 8), seed=0, **kwargs):
    config = InferenceRPUConfig(forward=IOParameters(is_perfect=True), **kwargs)
    return AnalogTile(*shape, config, seed=seed)


@given(seed=st.integers(0, 2**31 - 1), t=st.floats(0.0, 1e8))
def test_compensation_restores_the_mean_readout(seed, t):
    tile = _perfect_tile(seed=seed)
    tile.set_weights(np.random.default_rng(seed).uniform(-1, 1, (5, 8)))
    tile.program_weights()
    baseline = ref.global_readout(tile.forward(np.eye(8), is_test=True))
    tile.drift_weights(t)
    np.testing.assert_allclose(ref.global_readout(tile.forward(np.eye(8), is_test=True)),
                               baseline, rtol=1e-5)
    assert tile.get_drift_compensation_alpha() == pytest.approx(
        baseline / ref.global_readout(tile.get_weights()), rel=1e-5)


def test_per_column_compensation():
    tile = _perfect_tile(drift_compensation=inf.PerColumnDriftCompensation())
    tile.program_weights()
    baseline = np.abs(tile.get_weights()).mean(axis=1)
    tile.drift_weights(1e6)
    alpha = tile.get_drift_compensation_alpha()
    assert alpha.shape == (5,)
    np.testing.assert_allclose(np.abs(tile.forward(np.eye(8), is_test=True)).mean(axis=0),
                               baseline, rtol=1e-5)


# -- the tile -------------------------------------------------------------------------------------
def test_programming_keeps_the_target():
    tile = AnalogTile(4, 6, InferenceRPUConfig(), seed=3)
    w = tile.get_weights()
    tile.program_weights()
    first = tile.get_weights()
    assert not np.array_equal(first, w)
    np.testing.assert_array_equal(tile.get_target_weights(), w)
    tile.update(np.ones(6), np.ones(4), lr=0.01)  # trains the programmed weights
    tile.program_weights()  # reprograms the same target
    np.testing.assert_array_equal(tile.get_target_weights(), w)
    assert np.abs(tile.get_weights() - w).max() < 0.2 * np.abs(w).max()
    assert not np.array_equal(tile.get_weights(), first)


def test_drift_is_absolute_and_redraws_read_noise():
    quiet = _perfect_tile(noise_model=inf.PCMLikeNoiseModel(read_noise_scale=0.0))
    quiet.drift_weights(100.0)  # programs first
    at_100 = quiet.get_weights()
    quiet.drift_weights(1e6)
    quiet.drift_weights(100.0)
    np.testing.assert_array_equal(quiet.get_weights(), at_100)  # not cumulative
    noisy = _perfect_tile()
    noisy.program_weights()
    noisy.drift_weights(100.0)
    a = noisy.get_weights()
    noisy.drift_weights(100.0)
    assert not np.array_equal(noisy.get_weights(), a)


def test_alpha_scales_test_outputs_only():
    tile = _perfect_tile()
    tile.program_weights()
    tile.drift_weights(86400.0)
    alpha = tile.get_drift_compensation_alpha()
    assert alpha > 1.0
    x = np.random.default_rng(0).uniform(-1, 1, (3, 8))
    w = tile.get_weights()
    np.testing.assert_allclose(tile.forward(x), x @ w.T, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(tile.forward(x, is_test=True), alpha * (x @ w.T), rtol=1e-5,
                               atol=1e-7)
    off = _perfect_tile(drift_compensation=None)
    off.drift_weights(86400.0)
    assert off.get_drift_compensation_alpha() == 1.0
    np.testing.assert_array_equal(off.forward(x, is_test=True), off.forward(x))


def test_set_weights_starts_a_new_target():
    tile = _perfect_tile()
    tile.program_weights()
    tile.drift_weights(1e5)
    new = np.full((5, 8), 0.3, np.float32)
    tile.set_weights(new)
    assert tile.get_drift_compensation_alpha() == 1.0
    np.testing.assert_array_equal(tile.get_target_weights(), new)
    tile.drift_weights(10.0)  # programs the new target first
    np.testing.assert_array_equal(tile.get_target_weights(), new)
    assert np.abs(tile.get_weights() - 0.3).max() < 0.1


def test_same_seed_same_bits_any_thread_count():
    def run(threads):
        before = get_num_threads()
        set_num_threads(threads)
        try:
            tile = AnalogTile(40, 30, InferenceRPUConfig(), seed=9)
            tile.program_weights()
            tile.drift_weights(3600.0)
            return tile.get_weights(), tile.forward(np.ones((2, 30)), is_test=True)
        finally:
            set_num_threads(before)
    (w1, y1), (w2, y2) = run(1), run(get_num_threads())
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("model", [inf.PCMLikeNoiseModel(), inf.ReRamCMONoiseModel(),
                                   inf.CustomDriftPCMLikeNoiseModel(
                                       {"g_lst": [0.0, 30.0], "nu_mean_lst": [0.1, 0.02],
                                        "nu_std_lst": [0.01, 0.01]}),
                                   inf.StateIndependentNoiseModel(
                                       g_converter=inf.NPairConductanceConverter([1.0, 4.0]))])
def test_programmed_state_persists_and_drifts_to_the_same_bits(model):
    tile = AnalogTile(6, 7, InferenceRPUConfig(noise_model=model), seed=4)
    tile.program_weights()
    tile.drift_weights(1000.0)
    buffer = io.BytesIO()
    tile.save(buffer)
    buffer.seek(0)
    loaded = AnalogTile.load(buffer)
    assert state_differences(tile.state_dict(), loaded.state_dict()) == []
    for t in (tile, loaded):
        t.drift_weights(5e4)
    np.testing.assert_array_equal(tile.get_weights(), loaded.get_weights())
    assert tile.get_drift_compensation_alpha() == loaded.get_drift_compensation_alpha()
    x = np.ones((2, 7))
    np.testing.assert_array_equal(tile.forward(x, is_test=True), loaded.forward(x, is_test=True))


def test_damaged_inference_state_is_refused():
    tile = _perfect_tile()
    tile.program_weights()
    state = tile.state_dict()
    state["inference/programmed"] = state["inference/programmed"][:2]
    with pytest.raises(ValueError, match="programmed"):
        AnalogTile.from_state_dict(state)
    state = tile.state_dict()
    del state["inference/n_slices"]
    with pytest.raises(ValueError, match="n_slices"):
        AnalogTile.from_state_dict(state)


def test_bad_calls_raise_and_change_nothing():
    pulsed = AnalogTile(3, 4, SingleRPUConfig(), seed=0)
    with pytest.raises(ValueError, match="InferenceRPUConfig"):
        pulsed.program_weights()
    with pytest.raises(ValueError, match="t_inference"):
        pulsed.drift_weights(t_inference=10.0)
    tile = _perfect_tile(noise_model=inf.ReRamWan2022NoiseModel())
    before = tile.state_dict()
    for call in (lambda: tile.drift_weights(-1.0), lambda: tile.drift_weights(float("nan")),
                 lambda: tile.drift_weights(1.0, t_inference=1.0),
                 lambda: tile.drift_weights(5.0)):  # not a fitted time: fails after programming
        with pytest.raises(ValueError):
            call()
        assert state_differences(before, tile.state_dict()) == []


# -- models written by a user ---------------------------------------------------------------------
@dataclass
class ShrinkingNoiseModel(inf.BaseNoiseModel):
    """A user model: additive programming noise, exponential decay toward 0 with time."""

    g_converter: inf.BaseConductanceConverter = None
    sigma: float = 0.5
    tau: float = 1e4

    def __post_init__(self):
        if self.g_converter is None:
            self.g_converter = inf.SinglePairConductanceConverter()

    def apply_programming_noise_to_conductance(self, g_target, rng):
        return np.maximum(g_target + self.sigma * rng.standard_normal(g_target.shape), 0)

    def generate_drift_coefficients(self, g_target, rng):
        return rng.uniform(0.5, 1.5, g_target.shape)

    def apply_drift_noise_to_conductance(self, g_prog, drift_coefficients, t_inference, rng):
        return g_prog * np.exp(-t_inference * drift_coefficients / self.tau)


def test_user_noise_model_works_like_a_builtin():
    tile = AnalogTile(4, 5, InferenceRPUConfig(noise_model=ShrinkingNoiseModel()), seed=1)
    w = tile.get_weights()
    tile.program_weights()
    programmed = tile.get_weights()
    assert 0 < np.abs(programmed - w).max() < 0.1
    tile.drift_weights(1e4)
    assert np.abs(tile.get_weights()).mean() < np.abs(programmed).mean()
    assert tile.get_drift_compensation_alpha() > 1.0
    loaded = AnalogTile.from_state_dict(tile.state_dict())
    for t in (tile, loaded):
        t.drift_weights(2e4)
    np.testing.assert_array_equal(tile.get_weights(), loaded.get_weights())
    again = AnalogTile(4, 5, InferenceRPUConfig(noise_model=ShrinkingNoiseModel()), seed=1)
    again.program_weights()
    np.testing.assert_array_equal(again.get_weights(), programmed)


def test_user_model_returning_bad_weights_changes_nothing():
    @dataclass
    class Broken(ShrinkingNoiseModel):
        def apply_programming_noise_to_conductance(self, g_target, rng):
            return g_target * np.nan

    tile = AnalogTile(3, 4, InferenceRPUConfig(noise_model=Broken()), seed=0)
    before = tile.state_dict()
    with pytest.raises(ValueError, match="NaN"):
        tile.program_weights()
    assert state_differences(before, tile.state_dict()) == []


def test_incomplete_user_model_is_refused():
    class Incomplete(inf.BaseNoiseModel):
        pass

    with pytest.raises(TypeError):
        Incomplete()


def test_program_weights_aihwkit_arguments():
    tile = _perfect_tile(noise_model=inf.PCMLikeNoiseModel(prog_noise_scale=0.0))
    w = tile.get_weights()
    tile.program_weights()
    np.testing.assert_allclose(tile.get_weights(), w, rtol=1e-6)
    tile.set_hidden_parameters({})  # no hidden parameters: nothing happens
    tile.update(np.ones(8), np.ones(5), lr=0.01)
    trained = tile.get_weights()
    tile.program_weights(from_reference=False)  # the trained weights are the new target
    np.testing.assert_array_equal(tile.get_target_weights(), trained)
    tile.program_weights(noise_model=inf.StateIndependentNoiseModel())
    assert isinstance(tile.rpu_config.noise_model, inf.StateIndependentNoiseModel)
    assert not np.allclose(tile.get_weights(), trained, atol=1e-3)
    with pytest.raises(TypeError, match="noise_model"):
        tile.program_weights(noise_model="PCM")


@dataclass
class AihwkitStyleModel(inf.BaseNoiseModel):
    """Per-slice methods with aihwkit's signatures (no rng): drawn from NumPy's global state."""

    g_converter: inf.BaseConductanceConverter = None

    def __post_init__(self):
        if self.g_converter is None:
            self.g_converter = inf.SinglePairConductanceConverter()

    def apply_programming_noise_to_conductance(self, g_target):
        return np.maximum(g_target + 0.1 * np.random.standard_normal(g_target.shape), 0)

    def apply_drift_noise_to_conductance(self, g_prog, drift_noise_param, t_inference):
        return g_prog * 0.5


def test_aihwkit_style_calls_work():
    w = np.random.default_rng(0).uniform(-1, 1, (3, 4))
    programmed, coefficients = inf.PCMLikeNoiseModel().apply_programming_noise(w)  # no rng
    assert programmed.shape == w.shape and len(coefficients) == 2
    tile = AnalogTile(3, 4, InferenceRPUConfig(noise_model=AihwkitStyleModel()), seed=0)
    tile.program_weights()
    programmed = tile.get_weights()
    tile.drift_weights(10.0)
    np.testing.assert_allclose(tile.get_weights(), 0.5 * programmed, rtol=1e-6, atol=1e-7)


def test_identity_readout_equals_the_product():
    """The compensation's identity readout goes through the one-hot gather of the IO product
    (rpusim.io._product): the same outputs as a general product, row by row."""
    from rpusim.io import _product
    rng = np.random.default_rng(15)
    M = rng.uniform(-1, 1, (70, 90)).astype(np.float32)
    V = (np.eye(90, dtype=np.float32) * rng.uniform(-1, 1, 90).astype(np.float32))[:60]
    V[5] = 0.0
    np.testing.assert_array_equal(_product(V, M), np.stack([V[k] @ M.T for k in range(60)]))
    V[7, 3] = 0.5  # two nonzeros in a row: the general product
    np.testing.assert_array_equal(_product(V, M), V @ M.T)
    quiet = InferenceRPUConfig(forward=IOParameters(out_noise=0.0))
    tile = AnalogTile(200, 300, quiet, seed=2)
    batch = tile.forward(np.eye(300), is_test=True)
    rows = np.stack([tile.forward(np.eye(300)[k], is_test=True) for k in range(0, 300, 37)])
    np.testing.assert_array_equal(batch[::37], rows)
