"""The calls aihwkit's example scripts make, on rpusim (issue 19), in tests of our own.

aihwkit's scripts are not copied here; ``scripts/run_aihwkit_examples.py`` runs them from a
clone. These tests cover the same calls: the import rewriting of the runner, tile modules and
``tile_class``, torch tensors through tiles, ``build_config``, ``RPUDataType``,
``AnalogMatrix``, the device plots, ``analog_summary``, the layer tiles' tensor attributes,
tensor-aware converters, ``program_analog_weights(noise_model=...)`` and the time-dependent IR
drop of ``TorchInferenceRPUConfigIRDropT`` (replayed against goldens of aihwkit 1.2.0).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rpusim import (AnalogTile, FloatingPointTile, InferenceTile, TileModule,  # noqa: E402
                    TorchInferenceTile, TorchTransferTile)
from rpusim import configs as C  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
GOLDEN_IRDROP = sorted((ROOT / "tests" / "golden" / "irdrop").glob("*.npz"))


def _runner():
    spec = importlib.util.spec_from_file_location("run_aihwkit_examples",
                                                  ROOT / "scripts" / "run_aihwkit_examples.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# -- the runner's rewriting --------------------------------------------------------------------
@pytest.mark.parametrize("aihwkit, rpusim", [
    ("aihwkit.simulator.configs", "rpusim.configs"),
    ("aihwkit.simulator.configs.utils", "rpusim.configs"),
    ("aihwkit.simulator.parameters.enums", "rpusim.configs"),
    ("aihwkit.simulator.presets", "rpusim.presets"),
    ("aihwkit.simulator.tiles.transfer", "rpusim"),
    ("aihwkit.simulator", "rpusim"),
    ("aihwkit.nn.conversion", "rpusim.torch"),
    ("aihwkit.optim", "rpusim.torch"),
    ("aihwkit.utils.analog_info", "rpusim.torch"),
    ("aihwkit.inference.converter.conductance", "rpusim.inference"),
    ("aihwkit.utils.visualization", "rpusim.plotting"),
    ("aihwkit.linalg.matrix", "rpusim.linalg"),
    ("aihwkit.utils.fitting", "rpusim.utils"),
])
def test_migration_map_longest_prefix(aihwkit, rpusim):
    assert _runner().map_module(aihwkit) == rpusim


def test_rewrite_changes_imports_and_cuda_probe_only():
    source = (
        "import os\n"
        "from aihwkit.nn import AnalogLinear\n"
        "from aihwkit.simulator.configs import (\n"
        "    SingleRPUConfig,\n"
        "    ConstantStepDevice,\n"
        ")\n"
        "from aihwkit.simulator.rpu_base import cuda\n"
        "import aihwkit.inference.noise.pcm as pcm\n"
        "if cuda.is_compiled():\n"
        "    x = 1  # aihwkit.nn stays in comments\n"
        "USE = cuda.is_compiled() and True\n")
    expected = (
        "import os\n"
        "from rpusim.torch import AnalogLinear\n"
        "from rpusim.configs import (\n"
        "    SingleRPUConfig,\n"
        "    ConstantStepDevice,\n"
        ")\n"
        "import rpusim.inference as pcm\n"
        "if False:\n"
        "    x = 1  # aihwkit.nn stays in comments\n"
        "USE = False and True\n")
    assert _runner().rewrite_source(source) == expected


def test_rewrite_refuses_a_bare_dotted_import():
    with pytest.raises(ValueError, match="not rewritable"):
        _runner().rewrite_source("import aihwkit.nn\nm = aihwkit.nn.AnalogLinear(1, 1)\n")


def test_runner_reports_pass_and_fail(tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    (folder / "01_ok.py").write_text(
        "from aihwkit.simulator.configs import SingleRPUConfig\n"
        "from aihwkit.simulator.rpu_base import cuda\n"
        "print('device', type(SingleRPUConfig().device).__name__, cuda.is_compiled())\n")
    (folder / "02_bad.py").write_text("from aihwkit.nn import NoSuchLayer\n")
    runner = _runner()
    out = tmp_path / "report.json"
    code = runner.main([str(folder), "--only", "01,02", "--workdir", str(tmp_path / "w"),
                        "--timeout", "300", "--json", str(out)])
    records = {r["example"]: r for r in json.loads(out.read_text())}
    assert code == 1
    assert records["01_ok"]["status"] == "pass"
    assert records["01_ok"]["last_line"] == "device ConstantStepDevice False"
    assert records["02_bad"]["status"] == "fail"
    assert records["02_bad"]["reason"].startswith("ImportError: cannot import name 'NoSuchLayer'")


# -- configs: runtime, data type, build_config -------------------------------------------------
def test_runtime_data_type_sets_tile_precision_and_is_not_compared():
    config = C.SingleRPUConfig()
    config.runtime.data_type = C.RPUDataType.DOUBLE
    assert AnalogTile(2, 3, config, seed=0).dtype == np.float64
    assert AnalogTile(2, 3, config, seed=0, dtype=np.float32).dtype == np.float32
    assert config == C.SingleRPUConfig()
    assert C.RPUDataType.FLOAT.as_torch() is torch.float32
    assert C.RPUDataType.DOUBLE.as_numpy() == np.float64
    config.runtime.data_type = C.RPUDataType.HALF
    with pytest.raises(TypeError, match="HALF"):
        AnalogTile(2, 3, config)


def test_runtime_survives_save_and_load(tmp_path):
    config = C.SingleRPUConfig()
    config.runtime.data_type = C.RPUDataType.DOUBLE
    tile = AnalogTile(2, 3, config, seed=1)
    tile.save(tmp_path / "t.npz")
    loaded = AnalogTile.load(tmp_path / "t.npz")
    assert loaded.rpu_config.runtime.data_type is C.RPUDataType.DOUBLE
    assert loaded.dtype == np.float64


@pytest.mark.parametrize("algorithm, config_class, device_class", [
    ("sgd", C.SingleRPUConfig, C.SoftBoundsReferenceDevice),
    ("tiki-taka", C.UnitCellRPUConfig, C.TransferCompound),
    ("ttv2", C.UnitCellRPUConfig, C.ChoppedTransferCompound),
    ("c-ttv2", C.UnitCellRPUConfig, C.ChoppedTransferCompound),
    ("AGAD", C.UnitCellRPUConfig, C.DynamicTransferCompound),
    ("mixed-precision", C.DigitalRankUpdateRPUConfig, C.MixedPrecisionCompound),
])
def test_build_config_algorithms(algorithm, config_class, device_class):
    device = C.SoftBoundsReferenceDevice(dw_min=0.1)
    config = C.build_config(algorithm, device, construction_seed=7)
    assert type(config) is config_class
    assert type(config.device) is device_class
    AnalogTile(3, 3, config, seed=0).update(np.ones(3), np.ones(3))
    devices = getattr(config.device, "unit_cell_devices", None) or [
        getattr(config.device, "device", config.device)]
    assert all(d is not device for d in devices)
    assert all(dataclasses.replace(d, construction_seed=0) == device for d in devices)
    seeds = {getattr(config.device, "construction_seed", None),
             getattr(devices[0], "construction_seed", None)}
    assert 7 in seeds


def test_build_config_settings_of_ttv2_and_sgd_vector():
    config = C.build_config("ttv2", C.SoftBoundsReferenceDevice, C.IOParameters)
    device = config.device
    assert device.in_chop_prob == 0.0 and device.auto_scale is False
    assert device.units_in_mbatch is False
    assert device.transfer_update.desired_bl == 1
    assert device.transfer_update.update_management is False
    assert device.transfer_forward.noise_management == C.NoiseManagementType.NONE
    assert config.update.desired_bl == 5
    vector = C.build_config("sgd", C.ConstantStepDevice(), n_devices=3)
    assert isinstance(vector.device, C.VectorUnitCell)
    assert len(vector.device.unit_cell_devices) == 3
    assert vector.device.update_policy == C.VectorUnitCellUpdatePolicy.SINGLE_RANDOM
    with pytest.raises(ValueError, match="algorithm must be one of"):
        C.build_config("ttv9", C.ConstantStepDevice())


# -- torch tensors through the tile ------------------------------------------------------------
def test_tile_takes_tensors_and_returns_them_from_the_mvms():
    config = C.SingleRPUConfig(device=C.ConstantStepDevice())
    a, b = AnalogTile(3, 4, config, seed=5), AnalogTile(3, 4, config, seed=5)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    ya, yb = a.forward(x), b.forward(xt)
    assert isinstance(ya, np.ndarray) and isinstance(yb, torch.Tensor)
    np.testing.assert_array_equal(ya, yb.numpy())
    d = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(a.backward(d), b.backward(torch.tensor(d)).numpy())
    a.update(x, d)
    b.update(xt, torch.tensor(d))
    np.testing.assert_array_equal(a.get_weights(), b.get_weights())
    b.set_weights(torch.zeros(3, 4))
    assert not b.get_weights().any()
    assert b.tile is b


# -- tile modules ------------------------------------------------------------------------------
def test_each_config_class_names_its_tile_module():
    assert C.SingleRPUConfig().tile_class is TileModule
    assert C.FloatingPointRPUConfig().tile_class is FloatingPointTile
    assert C.InferenceRPUConfig().tile_class is InferenceTile
    assert C.TorchInferenceRPUConfig().tile_class is TorchInferenceTile
    config = C.SingleRPUConfig()
    config.tile_class = FloatingPointTile  # a choice on the instance only
    assert config.compatible_with("FloatingPointTile")
    assert C.SingleRPUConfig().tile_class is TileModule
    assert isinstance(config.create_tile(2, 3), FloatingPointTile)


def test_tile_module_interface_as_aihwkit_scripts_use_it():
    config = C.build_config("mp", C.SoftBoundsReferenceDevice(dw_min=0.1), construction_seed=3)
    tile = config.tile_class(4, 4, config, seed=2)
    tile.set_weights(0.01 * torch.arange(16.0).reshape(4, 4))
    tile.set_learning_rate(0.1)
    dest = {}
    tile.state_dict(dest)
    twin = config.tile_class(4, 4, config, seed=99)
    twin.load_state_dict(dest)
    x, d = torch.ones(1, 4), torch.full((1, 4), 0.5)
    for t in (tile, twin):
        t.update(x, d)
    np.testing.assert_array_equal(tile.tile.get_weights(), twin.tile.get_weights())
    hidden = tile.get_hidden_parameters()
    assert list(hidden) == tile.tile.get_hidden_parameter_names()
    for name, value in hidden.items():
        np.testing.assert_array_equal(value.cpu().numpy(),
                                      tile.tile.get_hidden_parameters()[name])
    weight, bias = tile.get_weights()
    assert isinstance(weight, torch.Tensor) and bias is None
    with pytest.raises(ValueError, match="CPU only"):
        tile.cuda()
    assert tile.to(torch.device("cpu")) is tile
    with pytest.raises(ValueError, match="no .*analog_tile_state"):
        twin.load_state_dict({})


def test_tile_module_analog_bias_and_transposed_io():
    tile = FloatingPointTile(2, 3, bias=True, in_trans=True, out_trans=True)
    w = torch.tensor([[1.0, 2.0, 3.0], [-1.0, 0.0, 1.0]])
    tile.set_weights(w, torch.tensor([0.5, -0.5]))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (in, batch)
    y = tile(x)
    np.testing.assert_allclose(y.numpy(), (w @ x + torch.tensor([[0.5], [-0.5]])).numpy())
    z = tile.backward(torch.ones(2, 2))
    np.testing.assert_allclose(z.numpy(), (w.T @ torch.ones(2, 2)).numpy())
    weight, bias = tile.get_weights()
    np.testing.assert_array_equal(bias.numpy(), [0.5, -0.5])
    with pytest.raises(ValueError, match="no analog bias"):
        FloatingPointTile(2, 3).set_weights(w, torch.zeros(2))


def test_tile_module_classes_check_their_configs():
    with pytest.raises(ValueError, match="transfer compound"):
        TorchTransferTile(2, 2, C.SingleRPUConfig())
    assert isinstance(TorchTransferTile(2, 2).rpu_config.device, C.ChoppedTransferCompound)
    with pytest.raises(TypeError, match="InferenceRPUConfig"):
        InferenceTile(2, 2, C.SingleRPUConfig())
    assert isinstance(FloatingPointTile(2, 2).rpu_config, C.FloatingPointRPUConfig)


# -- AnalogMatrix ------------------------------------------------------------------------------
def test_analog_matrix_products_and_rank_update_on_floating_point():
    from rpusim.linalg import AnalogMatrix
    rng = np.random.default_rng(1)
    m = rng.normal(0, 0.1, (5, 7)).astype(np.float32)
    matrix = AnalogMatrix(torch.tensor(m), C.FloatingPointRPUConfig(), device="cpu")
    x, d = rng.normal(size=(3, 7)), rng.normal(size=(3, 5))
    assert matrix.shape == (5, 7)
    np.testing.assert_allclose(matrix @ x, x @ m.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d @ matrix, d @ m, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matrix.matmat(x.T), m @ x.T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matrix.matvec(x[0]), m @ x[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(matrix.rmatvec(d[0][:, None]), (m.T @ d[0])[:, None],
                               rtol=1e-5, atol=1e-6)
    y = matrix @ torch.tensor(x, dtype=torch.float32)
    assert isinstance(y, torch.Tensor)
    matrix.ger(x, d, 0.01)
    np.testing.assert_allclose(matrix.tile.get_weights(), m + 0.01 * d.T @ x, atol=1e-6)
    with pytest.raises(ValueError, match="CPU only"):
        AnalogMatrix(m, C.FloatingPointRPUConfig(), device="cuda")


def test_analog_matrix_is_a_scipy_linear_operator_and_programs_realistically():
    from rpusim.linalg import AnalogMatrix
    sparse_linalg = pytest.importorskip("scipy.sparse.linalg")
    m = np.array([[0.3, -0.2, 0.1], [0.05, 0.2, -0.3]])
    op = sparse_linalg.aslinearoperator(AnalogMatrix(m, C.FloatingPointRPUConfig()))
    np.testing.assert_allclose(op.matvec(np.ones(3)), m @ np.ones(3), atol=1e-6)
    np.testing.assert_allclose(op.rmatvec(np.ones(2)), m.T @ np.ones(2), atol=1e-6)
    config = C.SingleRPUConfig(device=C.ConstantStepDevice(dw_min=0.001, dw_min_dtod=0.0,
                                                           dw_min_std=0.0),
                               forward=C.IOParameters(is_perfect=True))
    programmed = AnalogMatrix(m, config, realistic=True, seed=0)
    error = np.abs(programmed.tile.get_weights() - m).mean()
    assert error / np.abs(m).max() < 0.01
    module = TileModule(2, 3, config, seed=1)
    module.set_weights(torch.tensor(m), realistic=True)
    assert np.abs(module.tile.get_weights() - m).mean() / np.abs(m).max() < 0.01
    assert module.get_learning_rate() == pytest.approx(0.1)


# -- device plots ------------------------------------------------------------------------------
def test_pulse_response_and_step_statistics_of_a_constant_step_device():
    from rpusim.plotting import (compute_pulse_response, compute_pulse_statistics,
                                 estimate_n_steps, get_tile_for_plotting)
    device = C.ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down=0.0,
                                  up_down_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0)
    config = C.SingleRPUConfig(device=device, forward=C.IOParameters(is_perfect=True))
    assert estimate_n_steps(config) == 120  # (0.6 - -0.6) / 0.01
    tile = get_tile_for_plotting(config, n_traces=2, w_init=0.0, seed=0)
    direction = np.array([1, 1, 1, -1, -1])
    trace = compute_pulse_response(tile, direction)
    np.testing.assert_allclose(trace[:, :, 0], [[0.01] * 2, [0.02] * 2, [0.03] * 2,
                                                [0.02] * 2, [0.01] * 2], atol=1e-6)
    nodes = np.array([0.0, 0.01, 0.02])
    mean, std = compute_pulse_statistics(nodes, trace, direction, up_direction=True)
    # the up steps that start a run of up pulses (from 0.01 and 0.02) are all +0.01
    np.testing.assert_allclose(mean[1:, 0, 0], 0.01, atol=1e-6)
    np.testing.assert_allclose(std[1:, 0, 0], 0.0, atol=1e-6)


def test_plot_device_figures(monkeypatch):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rpusim.plotting import plot_device, plot_device_compact
    fig = plot_device_compact(C.PiecewiseStepDevice(piecewise_up=[1.5, 1.0, 0.5],
                                                    piecewise_down=[0.5, 1.0, 1.5]),
                              n_steps=50, seed=0)
    assert [ax.get_xlabel() for ax in fig.get_axes()] == [
        "Pulse number \\#", "Up pulse size", "Down pulse size"]
    assert len(fig.get_axes()[0].get_lines()) == 3
    plot_device(C.OneSidedUnitCell(unit_cell_devices=[C.SoftBoundsDevice()]), n_steps=20,
                n_loops=1, seed=0)
    assert len(plt.gcf().get_axes()) == 4
    plt.close("all")


def test_compound_sub_device_update_under_pulse_type_none_is_exact():
    transfer = C.TransferCompound(
        unit_cell_devices=[C.ConstantStepDevice(), C.ConstantStepDevice()],
        transfer_update=C.UpdateParameters(pulse_type=C.PulseType.NONE), transfer_every=1)
    tile = AnalogTile(2, 1, C.UnitCellRPUConfig(device=transfer), seed=0)
    before = tile.get_hidden_parameters()["hidden_weights_1"].copy()
    tile.update(-np.ones((1, 1)), np.ones((1, 2)), lr=1.0)
    fast = tile.get_hidden_parameters()["hidden_weights_0"]
    slow = tile.get_hidden_parameters()["hidden_weights_1"]
    assert not np.array_equal(slow, before)
    assert np.isfinite(fast).all() and np.isfinite(slow).all()


# -- layers: analog_summary, tile attributes, inference helpers ---------------------------------
def test_analog_summary_counts_tiles_and_reuse(capsys):
    from torch import nn
    from rpusim.torch import AnalogInfo, analog_summary, convert_to_analog
    config = C.SingleRPUConfig()
    config.mapping.max_input_size = 16
    config.mapping.max_output_size = 16
    model = convert_to_analog(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(),
                                            nn.Linear(2 * 4 * 4, 20), nn.Tanh()), config)
    info = analog_summary(model, (3, 1, 6, 6))
    assert isinstance(info, AnalogInfo)
    printed = capsys.readouterr().out
    assert printed.strip() == repr(info).strip()
    conv, flatten, linear, tanh = info.layer_summary
    assert (conv.isanalog, conv.num_tiles, conv.reuse_factor) == (True, 1, 3 * 4 * 4)
    assert conv.input_size == [3, 1, 6, 6] and conv.output_size == [3, 2, 4, 4]
    # 32 inputs over tiles of at most 16, 20 outputs over tiles of at most 16: 2 x 2 tiles
    assert (linear.num_tiles, linear.reuse_factor) == (4, 3)
    shapes = sorted(t.tile_summary_dict()["log_shape"] for t in linear.tiles_info)
    assert shapes == ["(10, 16)", "(10, 16)", "(10, 16)", "(10, 16)"]
    assert not flatten.isanalog and not tanh.isanalog
    assert (info.total_tile_number, info.total_nb_analog) == (5, 2)
    assert "Total number of tiles: 5" in printed


def test_layer_tiles_offer_alpha_and_drift_coefficients_as_tensors():
    from rpusim.inference import GlobalDriftCompensation, PCMLikeNoiseModel
    from rpusim.torch import AnalogLinear
    config = C.InferenceRPUConfig(noise_model=PCMLikeNoiseModel(),
                                  drift_compensation=GlobalDriftCompensation())
    layer = AnalogLinear(4, 3, bias=False, rpu_config=config)
    tile = next(layer.analog_tiles())
    assert tile.tile is tile
    assert float(tile.alpha) == 1.0 and tile.drift_noise_parameters is None
    layer.eval()
    layer.drift_analog_weights(100.0)
    alpha = tile.alpha
    assert isinstance(alpha, torch.Tensor) and alpha.dim() == 0
    assert format(alpha.cpu().numpy(), "1.3f")  # as aihwkit's example 5 prints it
    nu = layer.analog_module.drift_noise_parameters
    assert len(nu) == 2 and all(n.shape == (3, 4) for n in nu)
    training = next(AnalogLinear(4, 3, rpu_config=C.SingleRPUConfig()).analog_tiles())
    with pytest.raises(AttributeError, match="InferenceRPUConfig"):
        training.alpha


def test_program_analog_weights_with_a_given_noise_model():
    from rpusim.inference import PCMLikeNoiseModel
    from rpusim.torch import AnalogLinear
    layer = AnalogLinear(5, 4, bias=False, rpu_config=C.InferenceRPUConfig())
    target = layer.analog_module.tiles[0][0].get_weights()
    layer.eval()
    quiet = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0, drift_scale=0.0)
    layer.program_analog_weights(noise_model=quiet)
    tile = next(layer.analog_tiles())
    assert tile.rpu_config.noise_model == quiet
    np.testing.assert_allclose(tile.get_weights(), target, atol=1e-6)
    with pytest.raises(TypeError, match="noise model"):
        layer.program_analog_weights(noise_model="pcm")


def test_modifier_type_none_means_no_modifier():
    config = C.InferenceRPUConfig()
    config.modifier.type = None
    tile = AnalogTile(2, 2, config, seed=0)
    assert tile.rpu_config.modifier.type == C.WeightModifierType.NONE


def test_converters_take_tensors_and_return_tensors():
    from rpusim.inference import DualPairConductanceConverter, SinglePairConductanceConverter
    w = np.random.default_rng(2).uniform(-1, 1, (3, 4)).astype(np.float32)
    for converter in (SinglePairConductanceConverter(g_min=0.1, g_max=15.0),
                      DualPairConductanceConverter(f_lst=[1.0, 3.0], g_min=0.1, g_max=15.0)):
        g_np, params_np = converter.convert_to_conductances(w)
        g_t, params_t = converter.convert_to_conductances(torch.tensor(w))
        assert all(isinstance(g, torch.Tensor) for g in g_t)
        for a, b in zip(g_np, g_t):
            np.testing.assert_array_equal(a, b.numpy())
        back = converter.convert_back_to_weights(g_t, params_t)
        assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
        assert torch.allclose(back, torch.tensor(w), atol=1e-4)
        assert isinstance(converter.convert_back_to_weights(g_np, params_np), np.ndarray)


# -- time-dependent IR drop --------------------------------------------------------------------
def _irdrop_tile(record: dict, weights: np.ndarray) -> AnalogTile:
    from rpusim.inference import (DualPairConductanceConverter, PCMLikeNoiseModel,
                                  SinglePairConductanceConverter)
    config = C.TorchInferenceRPUConfigIRDropT()
    converter = (DualPairConductanceConverter(f_lst=[1.0, 3.0], g_min=0.1, g_max=15.0)
                 if record["converter"] == "dual" else
                 SinglePairConductanceConverter(g_min=0.1, g_max=15.0))
    config.noise_model = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0,
                                           drift_scale=0.0, g_converter=converter)
    config.drift_compensation = None
    config.mapping.max_input_size = record["phys_input_size"]
    config.forward.bound_management = C.BoundManagementType.NONE
    for key, value in record.items():
        if key in ("converter", "phys_input_size", "g_min", "g_max"):
            continue
        setattr(config.forward, key,
                getattr(C.AnalogMVType, value) if key == "mv_type" else value)
    tile = AnalogTile(*weights.shape, config, seed=0)
    tile.set_weights(weights)
    return tile


@pytest.mark.parametrize("path", GOLDEN_IRDROP, ids=[p.stem for p in GOLDEN_IRDROP])
def test_time_dependent_ir_drop_matches_aihwkit(path):
    data = np.load(path)
    tile = _irdrop_tile(json.loads(str(data["config"])), data["weights"])
    y = tile.forward(data["x"], is_test=True)
    np.testing.assert_allclose(y, data["y"], rtol=0, atol=2e-5)


def test_time_dependent_ir_drop_only_in_test_mode():
    data = np.load(ROOT / "tests" / "golden" / "irdrop" / "one_pass.npz")
    record = json.loads(str(data["config"]))
    tile = _irdrop_tile(record, data["weights"])
    without = _irdrop_tile(dict(record, ir_drop=0.0), data["weights"])
    train = tile.forward(data["x"], is_test=False)
    np.testing.assert_array_equal(train, without.forward(data["x"], is_test=True))
    assert np.abs(tile.forward(data["x"], is_test=True) - train).max() > 1e-3


def test_time_dependent_ir_drop_configuration_checks():
    config = C.TorchInferenceRPUConfigIRDropT()
    config.forward.w_noise = 0.01
    config.forward.w_noise_type = C.WeightNoiseType.ADDITIVE_CONSTANT
    with pytest.raises(ValueError, match="weight read noise"):
        AnalogTile(4, 4, config)
    config = C.TorchInferenceRPUConfigIRDropT()
    config.forward.ir_drop_segments = 7
    with pytest.raises(ValueError, match="must divide"):
        AnalogTile(4, 4, config)
    plain = C.InferenceRPUConfig(forward=C.IOParametersIRDropT(mv_type=C.AnalogMVType.BIT_WISE))
    with pytest.raises(ValueError, match="TorchInferenceRPUConfigIRDropT"):
        AnalogTile(4, 4, plain)
    # read by other tiles as IOParameters: the time-independent IR drop
    AnalogTile(4, 4, C.InferenceRPUConfig(forward=C.IOParametersIRDropT()), seed=0).forward(
        np.ones(4))


def test_utils_package_names():
    import rpusim.plotting
    import rpusim.torch.analog_info
    import rpusim.utils as utils
    assert utils.visualization is rpusim.plotting
    assert utils.analog_info is rpusim.torch.analog_info
    assert utils.plot_device is rpusim.plotting.plot_device
    assert utils.analog_summary is rpusim.torch.analog_info.analog_summary
    with pytest.raises(AttributeError, match="no attribute 'fit_measurements'"):
        utils.fit_measurements
