"""Every script in examples/ runs (short settings), so none rots."""

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# short settings for the scripts that train
QUICK_ARGS = {
    "numpy_training_loop.py": ["--epochs", "2"],
    "tiki_taka_vs_sgd.py": ["--quick"],
    "custom_device.py": ["--quick"],
    "device_response.py": ["--quick"],
    "save_and_resume.py": [],
    "digits_cnn.py": ["--quick"],
    "presets.py": ["--quick"],
    "hwa_training_drift.py": ["--quick"],
}


@pytest.mark.slow
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    text = script.read_text()
    if "import torch" in text or "rpusim.torch" in text:
        pytest.importorskip("torch")  # the torch extra is optional
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, str(script), *QUICK_ARGS.get(script.name, [])],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.strip(), "an example should print what it shows"
