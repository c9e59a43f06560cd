"""Golden fixtures of hardware-aware training (clip, remap, weight modifiers) from aihwkit 1.2.0.

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_hwa.py [--out tests/golden/hwa]

Each scenario is an ``InferenceTile`` with perfect forward and backward IO, no drift
compensation, and a deterministic modifier (noise scales 0, no drop connect, no stochastic
rounding), so no recorded number depends on aihwkit's random generator. The tile is set to
``w0``, then ``post_update_step()``; record; ``update(x, d)`` with learning rate ``lr``;
``post_update_step()``; record. A record holds the analog weights, the output scales, what
``get_weights()`` returns, the training and test forward of the identity (columns of the read
weights times the scales) and the backward of the identity. Each scenario becomes
``<out>/<name>.npz``: ``meta`` (0-d JSON string: the clip, remap and modifier configs in
rpusim's dict form, ``lr``) and float32 arrays ``w0``, ``x``, ``d``, ``<k>_analog``,
``<k>_scales``, ``<k>_weights``, ``<k>_fwd_train``, ``<k>_fwd_test``, ``<k>_bwd`` for records
``k = 0, 1``. Replayed by ``tests/test_hwa_golden.py``.

The stochastic modifiers (``--moments``, into ``<out>/stats/``) are recorded by their moments:
a tile of ``ROWS`` identical rows (the weight levels ``LEVELS``), one ``post_update_step()``,
and per column the mean, variance and fourth central moment of the training forward's
weights; ``tests/test_hwa_golden.py`` compares rpusim's within 5 standard errors.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import json
import pathlib

import numpy as np
import torch
from aihwkit.simulator.configs import InferenceRPUConfig
from aihwkit.simulator.parameters import (IOParameters, WeightClipParameter,
                                          WeightModifierParameter, WeightRemapParameter)
from aihwkit.simulator.parameters.enums import (WeightClipType, WeightModifierType,
                                                WeightRemapType)
from aihwkit.simulator.tiles.inference import InferenceTile

ROOT = pathlib.Path(__file__).resolve().parents[1]
M, C, R = WeightModifierType, WeightClipType, WeightRemapType


def _plain(obj) -> dict:
    out = {"__class__": type(obj).__name__}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = value.name if isinstance(value, enum.Enum) else value
    return out


def scenarios() -> dict[str, tuple]:
    """name -> (modifier, clip, remap)."""
    mod, clip, remap = WeightModifierParameter, WeightClipParameter, WeightRemapParameter
    none_c, none_r = clip(), remap()
    return {
        "none": (mod(), none_c, none_r),
        "discretize": (mod(type=M.DISCRETIZE, res=0.1), none_c, none_r),
        "discretize_coarse": (mod(type=M.DISCRETIZE, res=1 / 3), none_c, none_r),
        "discretize_assumed_wmax": (mod(type=M.DISCRETIZE, res=0.2, rel_to_actual_wmax=False,
                                        assumed_wmax=0.3), none_c, none_r),
        "discretize_last_column": (mod(type=M.DISCRETIZE, res=0.25, copy_last_column=True),
                                   none_c, none_r),
        "discretize_enable_during_test": (mod(type=M.DISCRETIZE, res=0.2,
                                              enable_during_test=True), none_c, none_r),
        "discretize_add_normal_std0": (mod(type=M.DISCRETIZE_ADD_NORMAL, res=0.125),
                                       none_c, none_r),
        "dorefa": (mod(type=M.DOREFA, res=0.1), none_c, none_r),
        "dorefa_clip": (mod(type=M.DOREFA, res=0.05, dorefa_clip=1.3), none_c, none_r),
        "mult_normal_std0": (mod(type=M.MULT_NORMAL), none_c, none_r),
        "poly_std0": (mod(type=M.POLY), none_c, none_r),
        "prog_noise_std0": (mod(type=M.PROG_NOISE), none_c, none_r),
        "copy": (mod(type=M.COPY), none_c, none_r),
        "drop_connect_p0": (mod(type=M.DROP_CONNECT), none_c, none_r),
        "clip_fixed": (mod(), clip(type=C.FIXED_VALUE, fixed_value=0.3), none_r),
        "clip_gaussian": (mod(), clip(type=C.LAYER_GAUSSIAN, sigma=1.2), none_r),
        "clip_gaussian_capped": (mod(), clip(type=C.LAYER_GAUSSIAN, sigma=2.5,
                                             fixed_value=0.25), none_r),
        "clip_channel_max": (mod(), clip(type=C.AVERAGE_CHANNEL_MAX), none_r),
        "clip_channel_max_capped": (mod(), clip(type=C.AVERAGE_CHANNEL_MAX, fixed_value=0.2),
                                    none_r),
        "remap_layerwise": (mod(), none_c, remap(type=R.LAYERWISE_SYMMETRIC)),
        "remap_layerwise_wmax": (mod(), none_c, remap(type=R.LAYERWISE_SYMMETRIC,
                                                      remapped_wmax=0.5)),
        "remap_channelwise": (mod(), none_c, remap(type=R.CHANNELWISE_SYMMETRIC)),
        "remap_channelwise_wmax": (mod(), none_c, remap(type=R.CHANNELWISE_SYMMETRIC,
                                                        remapped_wmax=2.0)),
        "remap_channelwise_range": (mod(), none_c, remap(type=R.CHANNELWISE_SYMMETRIC,
                                                         max_scale_range=1.5)),
        "remap_channelwise_range_ref": (mod(), none_c, remap(type=R.CHANNELWISE_SYMMETRIC,
                                                             max_scale_range=1.3,
                                                             max_scale_ref=0.9)),
        "clip_remap_discretize": (mod(type=M.DISCRETIZE, res=0.2),
                                  clip(type=C.LAYER_GAUSSIAN, sigma=1.5),
                                  remap(type=R.CHANNELWISE_SYMMETRIC)),
        "clip_remap_dorefa": (mod(type=M.DOREFA, res=0.1),
                              clip(type=C.FIXED_VALUE, fixed_value=0.35),
                              remap(type=R.LAYERWISE_SYMMETRIC)),
    }


def _record(tile, out_size, in_size, prefix, arrays):
    arrays[f"{prefix}_analog"] = tile.tile.get_weights().numpy()
    scales = tile.get_scales()
    arrays[f"{prefix}_scales"] = (np.ones(out_size, np.float32) if scales is None
                                  else scales.detach().numpy().astype(np.float32))
    arrays[f"{prefix}_weights"] = tile.get_weights()[0].numpy()
    with torch.no_grad():
        arrays[f"{prefix}_fwd_train"] = tile.joint_forward(torch.eye(in_size),
                                                           is_test=False).numpy()
        arrays[f"{prefix}_fwd_test"] = tile.joint_forward(torch.eye(in_size),
                                                          is_test=True).numpy()
        arrays[f"{prefix}_bwd"] = tile.backward(torch.eye(out_size)).numpy()


def play(name, modifier, clip, remap, out_dir: pathlib.Path) -> None:
    seed = sum(map(ord, name))
    gen = np.random.default_rng(seed)
    out_size, in_size, lr = 5, 7, 0.1
    w0 = gen.uniform(-0.6, 0.6, (out_size, in_size)).astype(np.float32)
    w0[1] *= 0.2  # rows of different ranges make the channelwise cases differ
    x = gen.uniform(-1, 1, (3, in_size)).astype(np.float32)
    d = gen.uniform(-1, 1, (3, out_size)).astype(np.float32)
    config = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
    config.drift_compensation = None
    config.modifier, config.clip, config.remap = modifier, clip, remap
    tile = InferenceTile(out_size, in_size, config)
    tile.set_weights(torch.from_numpy(w0))
    tile.set_learning_rate(lr)
    arrays = {"w0": w0, "x": x, "d": d}
    tile.post_update_step()
    _record(tile, out_size, in_size, "0", arrays)
    tile.update(torch.from_numpy(x), torch.from_numpy(d))
    tile.post_update_step()
    _record(tile, out_size, in_size, "1", arrays)
    meta = {"aihwkit_version": "1.2.0", "lr": lr, "modifier": _plain(modifier),
            "clip": _plain(clip), "remap": _plain(remap)}
    np.savez(out_dir / f"{name}.npz", meta=np.array(json.dumps(meta)),
             **{k: np.asarray(v, np.float32) for k, v in arrays.items()})


ROWS = 20000
LEVELS = np.array([-1.0, -0.41, -0.05, 0.0, 0.13, 0.5, 0.87], np.float32)


def stochastic_scenarios() -> dict[str, WeightModifierParameter]:
    mod = WeightModifierParameter
    prog = [0.26348, 1.9650, -1.1731]
    return {
        "mult_normal": mod(type=M.MULT_NORMAL, std_dev=0.2),
        "add_normal": mod(type=M.ADD_NORMAL, std_dev=0.1),
        "add_normal_assumed_wmax": mod(type=M.ADD_NORMAL, std_dev=0.1, rel_to_actual_wmax=False,
                                       assumed_wmax=0.4),
        "discretize_sto_round": mod(type=M.DISCRETIZE, res=0.2, sto_round=True),
        "discretize_add_normal": mod(type=M.DISCRETIZE_ADD_NORMAL, res=0.25, std_dev=0.05,
                                     sto_round=True),
        "dorefa_sto_round": mod(type=M.DOREFA, res=0.2, sto_round=True),
        "poly": mod(type=M.POLY, std_dev=0.5),
        "poly_coeffs": mod(type=M.POLY, std_dev=0.3, coeffs=[0.1, 0.0, 0.4]),
        "prog_noise": mod(type=M.PROG_NOISE, std_dev=5.0, coeffs=prog),
        "drop_connect": mod(type=M.DROP_CONNECT, pdrop=0.3),
        "copy_pdrop": mod(type=M.COPY, pdrop=0.2),
        "add_normal_pdrop": mod(type=M.ADD_NORMAL, std_dev=0.05, pdrop=0.25),
    }


def play_moments(name, modifier, out_dir: pathlib.Path) -> None:
    config = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
    config.drift_compensation = None
    config.modifier = modifier
    tile = InferenceTile(ROWS, len(LEVELS), config)
    tile.set_weights(torch.from_numpy(np.tile(LEVELS, (ROWS, 1))))
    tile.post_update_step()
    with torch.no_grad():
        fb = tile.joint_forward(torch.eye(len(LEVELS)), is_test=False).numpy().T
    fb = fb.astype(np.float64)
    mean = fb.mean(axis=0)
    meta = {"aihwkit_version": "1.2.0", "modifier": _plain(modifier), "rows": ROWS}
    np.savez(out_dir / f"{name}.npz", meta=np.array(json.dumps(meta)), levels=LEVELS,
             mean=mean, var=fb.var(axis=0, ddof=1), m4=((fb - mean) ** 4).mean(axis=0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "golden" / "hwa")
    parser.add_argument("--moments", action="store_true",
                        help="only the moments of the stochastic modifiers")
    args = parser.parse_args()
    stats = args.out / "stats"
    stats.mkdir(parents=True, exist_ok=True)
    if not args.moments:
        for name, (modifier, clip, remap) in scenarios().items():
            play(name, modifier, clip, remap, args.out)
            print(name)
    for name, modifier in stochastic_scenarios().items():
        play_moments(name, modifier, stats)
        print(f"stats/{name}")


if __name__ == "__main__":
    main()
