"""Replay of aihwkit 1.2.0's hardware-aware training goldens (scripts/make_golden_hwa.py)."""

import json
import pathlib

import numpy as np
import pytest

from hwa_config import hwa_config
from rpusim import AnalogTile
from rpusim.configs import IOParameters, config_from_dict

GOLDEN = pathlib.Path(__file__).parent / "golden" / "hwa"
FILES = sorted(GOLDEN.glob("*.npz"))  # the deterministic scenarios


def _check(tile, z, k):
    tol = dict(rtol=1e-5, atol=1e-6)
    out_size, in_size = z["w0"].shape
    np.testing.assert_allclose(tile._model.w, z[f"{k}_analog"], **tol)
    scales = tile._hwa.scales if tile._hwa.scales is not None else np.ones(out_size)
    np.testing.assert_allclose(scales, z[f"{k}_scales"], **tol)
    np.testing.assert_allclose(tile.get_weights(), z[f"{k}_weights"], **tol)
    np.testing.assert_allclose(tile.forward(np.eye(in_size)), z[f"{k}_fwd_train"], **tol)
    np.testing.assert_allclose(tile.forward(np.eye(in_size), is_test=True), z[f"{k}_fwd_test"],
                               **tol)
    np.testing.assert_allclose(tile.backward(np.eye(out_size)), z[f"{k}_bwd"], **tol)


def test_fixtures_exist():
    assert len(FILES) >= 20


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_golden(path):
    with np.load(path) as npz:
        z = {k: npz[k] for k in npz.files}
    meta = json.loads(str(z["meta"][()]))
    config = hwa_config(modifier=config_from_dict(meta["modifier"]),
                        clip=config_from_dict(meta["clip"]),
                        remap=config_from_dict(meta["remap"]),
                        forward=IOParameters(is_perfect=True))
    tile = AnalogTile(*z["w0"].shape, config, seed=0)
    tile.set_weights(z["w0"])
    tile.post_update_step()
    _check(tile, z, 0)
    tile.update(z["x"], z["d"], lr=meta["lr"])
    tile.post_update_step()
    _check(tile, z, 1)


STATS = sorted((GOLDEN / "stats").glob("*.npz"))


def test_stats_fixtures_exist():
    assert len(STATS) >= 10


@pytest.mark.slow
@pytest.mark.parametrize("path", STATS, ids=lambda p: p.stem)
def test_stochastic_modifier_moments_match_aihwkit(path):
    """Per weight level: mean and variance of the held draw within 5 standard errors of the
    difference to aihwkit's (same number of rows on both sides)."""
    with np.load(path) as npz:
        z = {k: npz[k] for k in npz.files}
    meta = json.loads(str(z["meta"][()]))
    rows = meta["rows"]
    config = hwa_config(modifier=config_from_dict(meta["modifier"]),
                        forward=IOParameters(is_perfect=True))
    tile = AnalogTile(rows, len(z["levels"]), config, seed=11)
    tile.set_weights(np.tile(z["levels"], (rows, 1)))
    tile.post_update_step()
    fb = tile.forward(np.eye(len(z["levels"]))).T.astype(np.float64)
    mean, var = fb.mean(axis=0), fb.var(axis=0, ddof=1)
    m4 = ((fb - mean) ** 4).mean(axis=0)
    se_mean = np.sqrt((var + z["var"]) / rows)
    se_var = np.sqrt((np.maximum(m4 - var ** 2, 0) + np.maximum(z["m4"] - z["var"] ** 2, 0))
                     / rows)
    np.testing.assert_array_less(np.abs(mean - z["mean"]), 5 * se_mean + 1e-6)
    np.testing.assert_array_less(np.abs(var - z["var"]), 5 * se_var + 1e-9)
