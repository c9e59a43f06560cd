"""``python -m rpusim drift``: hardware-aware training on digits, then accuracy under drift."""

import os
import pathlib

import numpy as np
import pytest

from rpusim.__main__ import main
from rpusim.drift_demo import (TIMES, AnalogMLP, drift_accuracy, hwa_config, load_digits_data,
                               run_drift)

pytest.importorskip("sklearn")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_drift_cli_prints_progress_table_and_writes_files(tmp_path, capsys):
    args = ["drift", "--epochs", "2", "--programs", "2", "--hidden", "16", "--out",
            str(tmp_path)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "InferenceRPUConfig(" in out and "ADD_NORMAL" in out  # the config is stated
    assert "epoch   2/2" in out and "programming 2/2" in out  # progress
    table = out[out.index("test accuracy after programming"):]
    for label in TIMES:
        assert label in table
    assert (tmp_path / "drift_accuracy.png").read_bytes()[:8] == PNG_MAGIC
    rows = (tmp_path / "drift_accuracy.csv").read_text().splitlines()
    assert len(rows) == 1 + len(TIMES)
    assert rows[0].startswith("t_inference_s,label,compensated_mean")
    assert rows[-1].startswith(f"{10 * 365.25 * 86400:.6g},10 years,")


@pytest.mark.parametrize("args, words", [
    (["--epochs", "0"], "epochs"),
    (["--programs", "0"], "n_programs"),
    (["--weight-noise", "-1"], "std_dev"),
    (["--lr", "nan"], "lr"),
    (["--bogus"], "unrecognized"),
])
def test_drift_cli_rejects_bad_arguments(args, words, capsys, tmp_path):
    with pytest.raises(SystemExit) as info:
        main(["drift", *args, "--out", str(tmp_path)])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_uncompensated_readout_is_the_tile_without_compensation():
    """Dividing by alpha gives exactly what a tile without drift compensation reads."""
    data = load_digits_data()
    model = AnalogMLP(hwa_config(), hidden=8, seed=3)
    model.program()
    model.drift(3600.0)
    tile = model.tiles[0]
    alpha = tile.get_drift_compensation_alpha()
    assert alpha > 1  # drift shrinks the readout, compensation scales it back up
    state = tile.state_dict()
    x = data.x_test[:5]
    y_comp = tile.forward(x, is_test=True)
    tile.load_state_dict(state)
    np.testing.assert_allclose(model._layer(0, x, True, compensated=False), y_comp / alpha,
                               rtol=1e-6)


def test_drift_accuracy_shapes_and_range():
    data = load_digits_data()
    model = AnalogMLP(hwa_config(), hidden=8, seed=0)
    acc = drift_accuracy(model, data, {"1 s": 1.0, "1 year": 3.15e7}, n_programs=2)
    for key in ("compensated", "uncompensated"):
        assert acc[key].shape == (2, 2)
        assert np.all((acc[key] >= 0) & (acc[key] <= 1))


@pytest.mark.slow
def test_default_run_compensation_holds_accuracy_after_ten_years():
    """The claim the README makes with the defaults, computed here: after 10 years the
    compensated accuracy stays within 2 points of the trained one and beats the
    uncompensated one in every programming."""
    with open(os.devnull, "w") as sink:
        result = run_drift(out=None, stream=sink)
    comp, uncomp = result["accuracy"]["compensated"], result["accuracy"]["uncompensated"]
    trained = result["history"][-1]
    assert trained > 0.94
    assert comp[:, -1].mean() > trained - 0.02
    assert np.all(comp[:, -1] > uncomp[:, -1])
