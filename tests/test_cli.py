"""The command line (``python -m rpusim demo`` / ``response``) and the demo's building blocks."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from rpusim.__main__ import main
from rpusim.configs import ConstantStepDevice, SoftBoundsPmaxDevice
from rpusim.demo import default_pulses, make_device, pulse_response, run_demo

ROOT = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path):
    return pathlib.Path(path).read_bytes()[:8] == PNG_MAGIC


def test_demo_prints_table_and_writes_png(tmp_path, capsys):
    assert main(["demo", "--epochs", "2", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "algorithm" in out and "test MSE" in out and "train MSE" in out
    table = out[out.index("results on SoftBoundsDevice"):]
    assert "analog SGD" in table and "Tiki-taka" in table
    # the full config is stated
    assert "SingleRPUConfig(device=SoftBoundsDevice())" in out
    assert "TransferCompound(unit_cell_devices=[SoftBoundsDevice(), SoftBoundsDevice()]" in out
    assert "epoch   2/2" in out  # progress
    assert _is_png(tmp_path / "loss_curves.png")
    rows = (tmp_path / "loss_curves.csv").read_text().splitlines()
    assert len(rows) == 1 + 3  # header, epochs 0..2
    assert rows[0].startswith("epoch,analog SGD test MSE")


def test_demo_one_algorithm_with_device_field(tmp_path, capsys):
    args = ["demo", "--algorithm", "sgd", "--device", "ConstantStepDevice", "--device-field",
            "dw_min=0.002", "--epochs", "1", "--out", str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "ConstantStepDevice(dw_min=0.002)" in out
    assert "Tiki-taka" not in out[out.index("results on"):]


def test_demo_default_setting_shows_tiki_taka_ahead():
    """The claim the demo makes with its defaults (computed here, not remembered)."""
    sink = open(os.devnull, "w")
    with sink:
        result = run_demo(out=None, stream=sink)
    sgd, tiki_taka = result["results"]
    assert sgd["algorithm"] == "analog SGD" and tiki_taka["algorithm"] == "Tiki-taka"
    assert tiki_taka["test MSE"] < 0.5 * sgd["test MSE"]
    assert tiki_taka["train MSE"] < sgd["train MSE"]
    # SGD does learn something: well below the start
    assert sgd["test MSE"] < 0.8 * result["histories"]["analog SGD"]["test MSE"][0]


def test_response_writes_png(tmp_path, capsys):
    out = tmp_path / "sb.png"
    argv = ["response", "SoftBoundsDevice", "--dw_min", "0.01", "--mult_noise", "false",
            "--pulses", "30", "--devices", "3", "--out", str(out)]
    assert main(argv) == 0
    assert _is_png(out)
    text = capsys.readouterr().out
    assert "SoftBoundsDevice(dw_min=0.01, mult_noise=False)" in text and str(out) in text


def test_response_field_with_equals_and_list(tmp_path):
    out = tmp_path / "pw.png"
    argv = ["response", "PiecewiseStepDevice", "--piecewise_up=1.5,1,0.5",
            "--piecewise-down", "0.5,1,1.5", "--pulses", "5",
            "--devices", "2", "--out", str(out)]
    assert main(argv) == 0
    assert _is_png(out)


def test_pulse_response_constant_step_by_hand():
    """No spread, no noise: every pulse moves the weight by exactly dw_min from -0.6."""
    quiet = dict(dw_min=0.1, dw_min_std=0.0, dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
                 up_down_dtod=0.0)
    trace = pulse_response(ConstantStepDevice(**quiet), 3, n_devices=2)
    expected = np.array([-0.6, -0.5, -0.4, -0.3, -0.4, -0.5, -0.6])
    np.testing.assert_allclose(trace, np.repeat(expected[:, None], 2, axis=1), atol=1e-6)


def test_default_pulses_cross_the_range():
    assert default_pulses(ConstantStepDevice(dw_min=0.01)) == 180   # 1.5 * 1.2 / 0.01
    assert default_pulses(SoftBoundsPmaxDevice(p_max=100)) == 150   # 1.5 * p_max
    assert default_pulses(ConstantStepDevice(dw_min=1e-6)) == 5000  # capped
    assert default_pulses(ConstantStepDevice(dw_min=0.5)) == 50      # at least 50


def test_help(capsys):
    for argv, words in ((["--help"], ("demo", "response")),
                        (["demo", "--help"], ("--algorithm", "tiki-taka", "--out", "Tiki-taka")),
                        (["response", "--help"], ("DEVICE", "--pulses", "rpusim[plot]"))):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
        out = capsys.readouterr().out
        assert all(word in out for word in words), (argv, out)


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "rpusim", "--help"], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0 and "python -m rpusim" in result.stdout


@pytest.mark.parametrize("argv, words", [
    (["response", "NoSuchDevice"], ("unknown", "SoftBoundsDevice")),
    (["response", "TransferCompound"], ("compound", "ConstantStepDevice")),
    (["response", "IdealDevice"], ("no pulse response",)),
    (["demo", "--device", "NoSuchDevice", "--out", "unused"], ("unknown", "ExpStepDevice")),
    (["response", "SoftBoundsDevice", "--no_such_field", "1"], ("no field", "dw_min")),
    (["response", "SoftBoundsDevice", "--dw_min", "abc"], ("expects a number", "'abc'")),
    (["response", "SoftBoundsDevice", "--mult_noise", "maybe"], ("boolean",)),
    (["response", "SoftBoundsDevice", "--dw_min", "-1"], ("dw_min",)),
    (["response", "SoftBoundsDevice", "--dw_min"], ("needs a value",)),
    (["response", "SoftBoundsDevice", "--pulses", "0"], (">= 1",)),
    (["demo", "--epochs", "0", "--out", "unused"], ("epochs",)),
])
def test_bad_input_is_a_clean_usage_error(argv, words, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert all(word in err for word in words), err
    assert not (tmp_path / "unused").exists()


def test_make_device_error_names_valid_choices():
    with pytest.raises(ValueError, match="choose one of: .*SoftBoundsDevice"):
        make_device("SoftBounds")


def test_missing_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    out = tmp_path / "r.png"
    assert main(["response", "ConstantStepDevice", "--pulses", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert 'pip install "rpusim[plot]"' in err
    assert not out.exists()

    # the demo still trains and prints its table, says how to get the plot
    assert main(["demo", "--epochs", "1", "--out", str(tmp_path / "demo")]) == 0
    text = capsys.readouterr().out
    assert "results on SoftBoundsDevice" in text and "Tiki-taka" in text
    assert 'pip install "rpusim[plot]"' in text
    assert (tmp_path / "demo" / "loss_curves.csv").exists()
    assert not (tmp_path / "demo" / "loss_curves.png").exists()


def test_response_finds_a_custom_device_through_import(tmp_path):
    """A device model defined in a user's file is usable from the shell with --import."""
    root = pathlib.Path(__file__).resolve().parents[1]
    out = tmp_path / "sigmoid.png"
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(root))
    result = subprocess.run(
        [sys.executable, "-m", "rpusim", "response", "SigmoidDevice", "--pulses", "20",
         "--devices", "2", "--import", str(root / "examples" / "custom_device.py"),
         "--out", str(out)], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.stat().st_size > 0
    unknown = subprocess.run([sys.executable, "-m", "rpusim", "response", "SigmoidDevice"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert unknown.returncode == 2 and "SigmoidDevice" in unknown.stderr
