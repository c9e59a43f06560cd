"""rpusim.sweep without a cluster: SPEC validation, records and resume, failing runs, the
table, the built-in experiments' configs and determinism (``workers=0`` runs in this process).
The Dask paths are in test_sweep_dask.py."""

import csv
import json
import pathlib
import sys

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rpusim import configs
from rpusim.__main__ import main
from rpusim.sweep import (EXAMPLE_SPEC, SpecError, SpecTypeError, SweepMismatch, build_rpu_config,
                          make_spec, parse_spec, set_config_field, sweep)
from rpusim.sweep.experiments import digits_arrays
from rpusim.sweep.records import RECORDS, write_atomic

sys.path.insert(0, str(pathlib.Path(__file__).parent))  # sweep_tasks, as the workers see it
import sweep_tasks  # noqa: E402

TASK = "sweep_tasks:noisy_quadratic"
GRID = {"x": [0.0, 1.0, 2.0], "scale": [0.1, 1.0]}


def _records(folder):
    return sorted((pathlib.Path(folder) / RECORDS).glob("*.json"))


def _without_timing(rows):
    return [{k: v for k, v in row.items() if k not in ("wall_s", "worker")} for row in rows]


# -- SPEC validation ----------------------------------------------------------------------------
@pytest.mark.parametrize("text, error, named", [
    ('experiment = "demo"\n[grid]\ndevice.dw_mn = [0.1]', SpecError, "device.dw_mn"),
    ('experiment = "demo"\n[grid]\nforward.out_nois = [0.1]', SpecError, "forward.out_nois"),
    ('experiment = "demo"\n[grid]\nepoch = [2]', SpecError, "epoch"),
    ('experiment = "demo"\n[grid]\ndevice.dw_min = ["big"]', SpecTypeError, "device.dw_min"),
    ('experiment = "demo"\n[grid]\ndevice.w_max = [true]', SpecTypeError, "device.w_max"),
    ('experiment = "demo"\n[grid]\nepochs = [1.5]', SpecTypeError, "epochs"),
    ('experiment = "demo"\n[grid]\ndevice.dw_min = 0.1', SpecTypeError, "device.dw_min"),
    ('experiment = "demo"\n[grid]\ndevice.dw_min = []', SpecError, "device.dw_min"),
    ('experiment = "demo"\n[grid]\n', SpecError, "grid is empty"),
    ('experiment = "demo"\n[grid]\nlr = [0.1, 0.2, 0.1]', SpecError, "lr"),
    ('experiment = "demo"\n', SpecError, "grid is empty"),
    ('experiment = "demo"\n[grid]\nalgorithm = ["sgd", "adam"]', SpecError, "algorithm"),
    ('experiment = "demo"\n[grid]\ndevice.dw_min = [-0.1]', SpecError, "dw_min"),
    ('experiment = "demo"\n[grid]\ndevice.class = ["NoSuchDevice"]', SpecError, "device.class"),
    ('experiment = "demo"\n[grid]\ncompound.gamma = [0.1]', SpecError, "compound.gamma"),
    ('experiment = "demo"\n[grid]\nupdate.pulse_type = ["SOMETIMES"]', SpecError, "pulse_type"),
    ('experiment = "demo"\nseeds = [0, 0]\n[grid]\nlr = [0.1]', SpecError, "seeds"),
    ('experiment = "demo"\nseeds = [-1]\n[grid]\nlr = [0.1]', SpecTypeError, "seeds"),
    ('experiment = "demo"\nseeds = 0\n[grid]\nlr = [0.1]', SpecError, "seeds"),
    ('experiment = "nope"\n[grid]\nlr = [0.1]', SpecError, "nope"),
    ('experiment = "no_such_module_xyz:f"\n[grid]\nlr = [0.1]', SpecError, "no_such_module"),
    ('experiment = "sweep_tasks:missing"\n[grid]\nx = [1]', SpecError, "missing"),
    ('experiment = "demo"\ngrid = 3', SpecTypeError, "grid"),
    ('experiment = "demo"\ngrids = {}', SpecError, "grids"),
    ('[grid]\nlr = [0.1]', SpecError, "experiment"),
    ('experiment = "demo"\n[grid\n', SpecError, "TOML"),
    (f'experiment = "{TASK}"\n[grid]\ny = [1]', SpecError, "'y'"),
    (f'experiment = "{TASK}"\n[base]\nz = 1\n[grid]\nx = [1]', SpecError, "'z'"),
    (f'experiment = "{TASK}"\n[grid]\nx = ["a"]', SpecTypeError, "'x'"),
])
def test_bad_spec_is_refused_naming_the_field(text, error, named):
    with pytest.raises(error, match=None) as info:
        parse_spec(text)
    assert named in str(info.value)


def test_refused_spec_sends_no_work_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('experiment = "digits"\n[grid]\ndevice.dw_min = [0.01, "x"]\n')
    out = tmp_path / "out"
    assert main(["sweep", str(spec), "--out", str(out), "--workers", "0"]) == 2
    assert "device.dw_min" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("args, message", [
    (["sweep"], "a SPEC file is needed"),
    (["sweep", "x.toml", "--example"], "--example takes no SPEC"),
    (["sweep", "x.toml", "--workers", "-1"], "--workers must be >= 0"),
    (["sweep", "x.toml", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
    (["sweep", "x.toml", "--bogus"], "unrecognized arguments"),
])
def test_cli_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_cli_refuses_a_folder_of_another_sweep(tmp_path, capsys):
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(f'experiment = "{TASK}"\n[grid]\nx = [0.0]\n')
    second.write_text(f'experiment = "{TASK}"\n[grid]\nx = [5.0]\n')
    assert main(["sweep", str(first), "--out", str(tmp_path / "o"), "--workers", "0"]) == 0
    assert main(["sweep", str(second), "--out", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "different sweep" in capsys.readouterr().err


def test_example_spec_is_valid_and_worth_distributing(capsys):
    assert main(["sweep", "--example"]) == 0
    printed = capsys.readouterr().out
    assert printed == EXAMPLE_SPEC
    spec = parse_spec(printed)
    points = spec.points()
    assert 8 <= len(points) <= 20
    assert spec.experiment.name == "digits" and list(spec.grid) == ["device.dw_min", "algorithm"]
    assert len({p.key for p in points}) == len(points)


def test_numpy_grid_values_become_plain_numbers():
    spec = make_spec(TASK, {"x": np.linspace(0.0, 1.0, 3), "scale": [np.float32(0.5)]})
    assert spec.grid == {"x": [0.0, 0.5, 1.0], "scale": [0.5]}
    assert all(type(v) is float for values in spec.grid.values() for v in values)
    with pytest.raises(SpecTypeError, match="'x'"):
        parse_spec(f'experiment = "{TASK}"\n[grid]\nx = [1979-05-27]')


def test_dotted_quoted_and_table_keys_are_the_same_path():
    texts = ['experiment = "demo"\n[grid]\ndevice.dw_min = [0.01]',
             'experiment = "demo"\n[grid]\n"device.dw_min" = [0.01]',
             'experiment = "demo"\n[grid.device]\ndw_min = [0.01]']
    keys = [[p.key for p in parse_spec(t).points()] for t in texts]
    assert keys[0] == keys[1] == keys[2]


def test_points_order_and_seeds():
    spec = parse_spec(f'experiment = "{TASK}"\nseeds = 2\n[base]\nscale = 0.5\n'
                      f'[grid]\nx = [1.0, 2.0]\nsleep = [0.0, 0.01]')
    points = spec.points()
    assert [(p.params["x"], p.params["sleep"], p.seed) for p in points] == [
        (1.0, 0.0, 0), (1.0, 0.0, 1), (1.0, 0.01, 0), (1.0, 0.01, 1),
        (2.0, 0.0, 0), (2.0, 0.0, 1), (2.0, 0.01, 0), (2.0, 0.01, 1)]
    assert all(p.params["scale"] == 0.5 for p in points)
    assert [p.index for p in points] == [0, 0, 1, 1, 2, 2, 3, 3]


_values = st.one_of(st.integers(-5, 5), st.floats(-2, 2, allow_nan=False), st.booleans(),
                   st.text("abc", max_size=3))


@given(grid=st.dictionaries(st.sampled_from(["a", "b.c", "d.e.f"]),
                            st.lists(_values, min_size=1, max_size=3, unique_by=json.dumps),
                            min_size=1),
       seeds=st.lists(st.integers(0, 9), min_size=1, max_size=3, unique=True))
def test_points_are_every_combination_once_per_seed(grid, seeds):
    points = make_spec("sweep_tasks:undeclared", grid, seeds=seeds).points()
    combos = list(itertools.product(*grid.values()))
    assert len(points) == len(combos) * len(seeds)
    assert len({p.key for p in points}) == len(points)
    for k, point in enumerate(points):
        assert point.seed == seeds[k % len(seeds)] and point.index == k // len(seeds)
        assert tuple(point.params[path] for path in grid) == combos[point.index]


# -- configs from field paths -------------------------------------------------------------------
@pytest.mark.parametrize("algorithm, compound", [
    ("sgd", None), ("tiki-taka", configs.TransferCompound),
    ("ttv2", configs.BufferedTransferCompound), ("c-ttv2", configs.ChoppedTransferCompound),
    ("agad", configs.DynamicTransferCompound),
    ("mixed-precision", configs.MixedPrecisionCompound)])
def test_build_rpu_config_sets_every_path(algorithm, compound):
    params = {"algorithm": algorithm, "device.class": "ConstantStepDevice",
              "device.dw_min": 0.02, "device.up_down": 0.1, "forward.out_noise": 0.0,
              "backward.inp_res": 0.01, "update.desired_bl": 7,
              "update.pulse_type": "DETERMINISTIC_IMPLICIT"}
    if compound is not None and algorithm != "mixed-precision":
        params["compound.transfer_every"] = 3.0
    config = build_rpu_config(params)
    devices = ([config.device] if compound is None else
               [config.device.device] if algorithm == "mixed-precision" else
               config.device.unit_cell_devices)
    assert compound is None or type(config.device) is compound
    for device in devices:
        assert type(device) is configs.ConstantStepDevice
        assert (device.dw_min, device.up_down) == (0.02, 0.1)
    assert config.forward.out_noise == 0.0 and config.backward.inp_res == 0.01
    assert config.update.desired_bl == 7
    assert config.update.pulse_type is configs.PulseType.DETERMINISTIC_IMPLICIT
    if "compound.transfer_every" in params:
        assert config.device.transfer_every == 3.0


def test_set_config_field_checks_kind_and_names_valid_fields():
    config = configs.SingleRPUConfig()
    set_config_field(config, "forward.w_noise", 0.02)
    assert config.forward.w_noise == 0.02
    with pytest.raises(ValueError, match="out_noise"):
        set_config_field(config, "forward.out_nose", 0.1)  # the valid names are listed
    with pytest.raises(TypeError, match="forward"):
        set_config_field(config, "forward", 0.1)  # a sub-config, not a value
    with pytest.raises(TypeError, match="boolean"):
        set_config_field(config, "forward.is_perfect", 1)
    with pytest.raises(ValueError, match="has no fields"):
        set_config_field(config, "forward.w_noise.x", 1.0)
    assert config.forward.is_perfect is False  # refused values change nothing


# -- records, resume, changed SPEC --------------------------------------------------------------
def test_rerun_skips_finished_runs_and_recomputes_missing(tmp_path):
    out = tmp_path / "run"
    first = sweep(TASK, GRID, seeds=2, out=out, workers=0, plot=False)
    assert (first.computed, first.skipped, first.failed) == (12, 0, 0)
    assert len(_records(out)) == 12
    again = sweep(TASK, GRID, seeds=2, out=out, workers=0, plot=False)
    assert (again.computed, again.skipped) == (0, 12)
    assert again.rows == first.rows  # wall time and worker come from the records
    _records(out)[3].unlink()
    resumed = sweep(TASK, GRID, seeds=2, out=out, workers=0, plot=False)
    assert (resumed.computed, resumed.skipped) == (1, 11)
    assert _without_timing(resumed.rows) == _without_timing(first.rows)


def test_rerun_says_how_many_it_skipped(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text(f'experiment = "{TASK}"\nseeds = 2\n[grid]\nx = [0.0, 3.0]\n')
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--workers", "0"]) == 0
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--workers", "0"]) == 0
    out = capsys.readouterr().out
    assert "skipping 4 finished runs" in out and "0 computed, 4 skipped" in out


@pytest.mark.parametrize("change", [
    {"grid": {"x": [0.0, 1.0, 2.5], "scale": [0.1, 1.0]}},  # a changed value
    {"seeds": 3},                                            # another seed
    {"base": {"sleep": 0.0}},                                # a changed base
    {"experiment": "sweep_tasks:undeclared"},                # another function
])
def test_changed_spec_is_refused_and_results_never_mix(tmp_path, change):
    out = tmp_path / "run"
    sweep(TASK, GRID, seeds=2, out=out, workers=0, plot=False)
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    kwargs = {"grid": GRID, "seeds": 2, **change}
    with pytest.raises(SweepMismatch, match="different sweep"):
        sweep(kwargs.pop("experiment", TASK), kwargs.pop("grid"), out=out, workers=0, **kwargs)
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_damaged_record_is_recomputed_with_a_warning(tmp_path):
    out = tmp_path / "run"
    first = sweep(TASK, GRID, out=out, workers=0, plot=False)
    _records(out)[0].write_text('{"key": ')  # as if edited by hand
    with pytest.warns(UserWarning, match="unreadable record"):
        again = sweep(TASK, GRID, out=out, workers=0, plot=False)
    assert (again.computed, again.skipped) == (1, 5)
    assert _without_timing(again.rows) == _without_timing(first.rows)


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "record.json"
    write_atomic(target, "old")

    def crash(fd):
        raise OSError("disk full")
    monkeypatch.setattr("os.fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


# -- failing runs, the table --------------------------------------------------------------------
def test_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    out = tmp_path / "run"
    result = sweep(TASK, GRID, base={"fail_at": 2.0}, seeds=2, out=out, workers=0, plot=False)
    assert (result.computed, result.failed) == (12, 4)
    failed = [r for r in result.rows if r["status"] == "error"]
    assert {r["x"] for r in failed} == {2.0} and len(failed) == 4
    assert all("RuntimeError: diverged at x=2.0" in r["error"] and r["loss"] is None
               for r in failed)
    assert all(r["status"] == "ok" and r["error"] is None for r in result.rows if r["x"] != 2.0)
    record = json.loads(next(p for p in _records(out)
                             if json.loads(p.read_text())["status"] == "error").read_text())
    assert "Traceback" in record["traceback"] and "diverged" in record["traceback"]
    assert "FAILED: RuntimeError: diverged" in capsys.readouterr().out
    again = sweep(TASK, GRID, base={"fail_at": 2.0}, seeds=2, out=out, workers=0, plot=False)
    assert (again.computed, again.skipped, again.failed) == (0, 12, 4)
    retried = sweep(TASK, GRID, base={"fail_at": 2.0}, seeds=2, out=out, workers=0, plot=False,
                    retry_failed=True)
    assert (retried.computed, retried.failed) == (4, 4)


def test_experiment_returning_no_dict_is_a_failed_run(tmp_path):
    result = sweep("builtins:len", {"x": [1]}, workers=0, plot=False)
    assert result.rows[0]["status"] == "error" and "TypeError" in result.rows[0]["error"]


def test_table_and_csv_hold_parameters_seed_metrics_time_worker(tmp_path):
    out = tmp_path / "run"
    result = sweep(TASK, GRID, base={"sleep": 0.0}, seeds=[3, 5], out=out, workers=0)
    assert result.columns == ["point", "sleep", "x", "scale", "seed", "status", "loss", "noise",
                              "wall_s", "worker", "error"]
    assert len(result.rows) == 12
    for row in result.rows:  # each run got its own parameters and seed
        noise = np.random.default_rng(row["seed"]).standard_normal()
        assert row["noise"] == noise
        assert row["loss"] == (row["x"] - 1.0) ** 2 + row["scale"] * noise
        assert row["worker"] == "local" and row["wall_s"] >= 0
    with open(out / "results.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert list(rows[0]) == result.columns
    assert [float(r["loss"]) for r in rows] == [r["loss"] for r in result.rows]  # every bit
    assert [int(r["seed"]) for r in rows] == [3, 5] * 6
    pytest.importorskip("matplotlib")
    assert result.plot == out / "sweep.png"
    assert result.plot.read_bytes()[:4] == b"\x89PNG"


# -- the built-in experiments -------------------------------------------------------------------
def test_builtin_experiments_depend_only_on_params_and_seed(tmp_path):
    """The same runs in another order (reversed grid values and seeds) give the same metrics,
    and different seeds give different ones."""
    base = {"epochs": 1, "hidden": 8, "n_samples": 64}
    forward = sweep("demo", {"algorithm": ["sgd", "tiki-taka"], "device.dw_min": [0.01, 0.002]},
                    base=base, seeds=[0, 1], workers=0, plot=False)
    backward = sweep("demo", {"algorithm": ["tiki-taka", "sgd"],
                              "device.dw_min": [0.002, 0.01]},
                     base=base, seeds=[1, 0], workers=0, plot=False)

    def by_run(rows):
        return {(r["algorithm"], r["device.dw_min"], r["seed"]): r["test_mse"] for r in rows}
    assert by_run(forward.rows) == by_run(backward.rows)
    assert forward.failed == 0
    assert len(set(by_run(forward.rows).values())) == 8


def test_digits_experiment_learns(tmp_path):
    pytest.importorskip("sklearn")
    result = sweep("digits", {"algorithm": ["tiki-taka"]},
                   base={"epochs": 2, "device.dw_min": 0.01}, workers=0, plot=False)
    row = result.rows[0]
    assert row["status"] == "ok"
    assert 0.5 < row["test_accuracy"] <= 1.0  # chance is 0.1
    assert 0 < row["test_loss"] < np.log(10)  # below the loss of a uniform guess


def test_digits_are_scikit_learns():
    datasets = pytest.importorskip("sklearn.datasets")
    images, labels = digits_arrays()
    reference = datasets.load_digits()
    assert np.array_equal(images, reference.data) and np.array_equal(labels, reference.target)


def test_plot_points_are_mean_and_spread_over_seeds():
    from rpusim.sweep.report import _series
    rows = [{"status": "ok", "x": 1, "line": "a", "m": 1.0},
            {"status": "ok", "x": 1, "line": "a", "m": 3.0},
            {"status": "ok", "x": 1, "line": "b", "m": 10.0},
            {"status": "error", "x": 2, "line": "a", "m": None},
            {"status": "ok", "x": 2, "line": "a", "m": 4.0}]
    mean, spread = _series(rows, "m", "x", [1, 2], lambda row: row["line"] == "a")
    assert mean.tolist() == [2.0, 4.0]
    assert spread.tolist() == [np.sqrt(2.0), 0.0]  # sample std of (1, 3); one value: none
