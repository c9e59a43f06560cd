"""Generate the inference golden fixtures from aihwkit 1.2.0 (the oracle).

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_inference.py [--out tests/golden/inference]

Three kinds of fixture, each ``<out>/<kind>__<name>.npz`` with a JSON ``spec`` entry (the
classes and constructor arguments, which are the same in aihwkit and rpusim) and arrays:

* ``converter__*``: a weight matrix, its conductance slices and the weights converted back;
* ``tile__*``: an inference tile with every noise scale or spread at zero and a perfect forward
  IO (so nothing depends on aihwkit's random numbers): the weights after programming and after
  drifting to several times, alpha, and test-mode outputs for an input batch;
* ``tilestats__*``: alpha and the mean |W| of a tile with the default noisy forward IO after
  each of many independent programmings and drifts of one target (their mean and spread);
* ``stats__*``: a noise model applied to conductance slices of a few fixed values, each
  repeated ``n`` times (programming, drift exponents, drift and read noise at several times):
  the mean and standard deviation per value, which rpusim's draws are compared with in
  distribution (tests/test_golden_inference.py).
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import torch
from aihwkit.inference import (CustomDriftPCMLikeNoiseModel, GlobalDriftCompensation,
                               PCMLikeNoiseModel, ReRamCMONoiseModel, ReRamWan2022NoiseModel,
                               StateIndependentNoiseModel)
from aihwkit.inference.converter.conductance import (CustomPairConductanceConverter,
                                                     DualPairConductanceConverter,
                                                     NPairConductanceConverter,
                                                     SingleDeviceConductanceConverter,
                                                     SinglePairConductanceConverter)
from aihwkit.simulator.configs import InferenceRPUConfig
from aihwkit.simulator.parameters import IOParameters
from aihwkit.simulator.tiles.inference import InferenceTile

ROOT = pathlib.Path(__file__).resolve().parents[1]
CLASSES = {cls.__name__: cls for cls in (
    CustomDriftPCMLikeNoiseModel, PCMLikeNoiseModel, ReRamCMONoiseModel, ReRamWan2022NoiseModel,
    StateIndependentNoiseModel, CustomPairConductanceConverter, DualPairConductanceConverter,
    NPairConductanceConverter, SingleDeviceConductanceConverter, SinglePairConductanceConverter)}


def build(spec: dict):
    """An aihwkit object from ``{"class": name, "kwargs": {...}}`` (nested specs allowed)."""
    kwargs = {k: build(v) if isinstance(v, dict) and "class" in v else v
              for k, v in spec.get("kwargs", {}).items()}
    return CLASSES[spec["class"]](**kwargs)


def weights(shape, seed: int) -> np.ndarray:
    w = np.random.default_rng(seed).uniform(-0.8, 0.8, shape).astype(np.float32)
    w.flat[0] = 0.0  # a zero weight: both devices of a pair idle
    w.flat[1] = 0.8  # the largest |W| is known
    return w


def save(out: pathlib.Path, name: str, spec: dict, **arrays) -> None:
    np.savez(out / f"{name}.npz", spec=np.array(json.dumps(spec)), **arrays)
    print("wrote", name)


# -- converters ----------------------------------------------------------------------------------
CONVERTERS = {
    "single_pair": {"class": "SinglePairConductanceConverter", "kwargs": {}},
    "single_pair_gmin": {"class": "SinglePairConductanceConverter",
                         "kwargs": {"g_max": 30.0, "g_min": 2.5}},
    "npair_3": {"class": "NPairConductanceConverter",
                "kwargs": {"f_lst": [1.0, 2.0, 4.0], "g_max": 20.0, "g_min": 1.0}},
    "dual_pair": {"class": "DualPairConductanceConverter", "kwargs": {"f_lst": [1.0, 3.0]}},
    "single_device": {"class": "SingleDeviceConductanceConverter", "kwargs": {}},
    "single_device_range": {"class": "SingleDeviceConductanceConverter",
                            "kwargs": {"g_max": 50.0, "g_min": 5.0}},
    "custom_pair": {"class": "CustomPairConductanceConverter", "kwargs": {
        "f_lst": [1.0, 2.0],
        "g_lst": [[0.0, 0.0, 0.0, 5.0, 10.0], [10.0, 5.0, 0.0, 0.0, 0.0],
                  [0.0, 0.0, 0.0, 2.5, 5.0], [5.0, 2.5, 0.0, 0.0, 0.0]]}},
}


def make_converters(out: pathlib.Path) -> None:
    for name, spec in CONVERTERS.items():
        w = weights((6, 7), 1)
        conv = build(spec)
        slices, params = conv.convert_to_conductances(torch.from_numpy(w))
        if isinstance(slices, torch.Tensor):  # the single device returns one tensor
            slices = [slices]
        back = conv.convert_back_to_weights(slices if len(slices) > 1 else slices[0], params)
        save(out, f"converter__{name}", {"converter": spec}, weights=w,
             slices=np.stack([s.numpy() for s in slices]), back=back.numpy())


# -- tiles with all noise off ---------------------------------------------------------------------
TILES = {
    "custom_drift_single_pair_gmin": {
        "class": "CustomDriftPCMLikeNoiseModel", "kwargs": {
            "custom_drift_model": {"g_lst": [0.0, 10.0, 30.0], "nu_mean_lst": [0.1, 0.05, 0.02],
                                   "nu_std_lst": [0.0, 0.0, 0.0]},
            "g_converter": CONVERTERS["single_pair_gmin"],
            "prog_noise_scale": 0.0, "read_noise_scale": 0.0},
        "times": [0.0, 1.0, 3600.0, 86400.0 * 365]},
    "custom_drift_dual_pair": {
        "class": "CustomDriftPCMLikeNoiseModel", "kwargs": {
            "custom_drift_model": {"g_lst": [0.0, 25.0], "nu_mean_lst": [0.02, 0.08],
                                   "nu_std_lst": [0.0, 0.0]},
            "g_converter": CONVERTERS["dual_pair"],
            "prog_noise_scale": 0.0, "read_noise_scale": 0.0, "t_0": 5.0},
        "times": [10.0, 1e5]},
    "state_independent_npair": {
        "class": "StateIndependentNoiseModel", "kwargs": {
            "g_converter": CONVERTERS["npair_3"], "prog_noise_scale": 0.0,
            "drift_nu_mean": 0.07, "drift_nu_std": 0.0, "drift_scale": 1.5,
            "read_noise_scale": 0.0},
        "times": [0.0, 100.0, 1e7]},
    "wan2022_no_noise": {
        "class": "ReRamWan2022NoiseModel", "kwargs": {"noise_scale": 0.0},
        "times": [1.0, 86400.0]},
    "cmo_mean_relaxation": {
        "class": "ReRamCMONoiseModel", "kwargs": {
            "prog_noise_scale": 0.0, "read_noise_scale": 0.0,
            "decay_dict": {"mean": [-0.5], "std": [0.0, 0.0]}},
        "times": [0.0, 10.0, 1e4]},
    "pcm_no_drift": {
        "class": "PCMLikeNoiseModel", "kwargs": {
            "prog_noise_scale": 0.0, "read_noise_scale": 0.0, "drift_scale": 0.0,
            "g_max": 40.0},
        "times": [0.0, 3600.0]},
}


def make_tiles(out: pathlib.Path) -> None:
    for name, spec in TILES.items():
        times = spec["times"]
        model_spec = {"class": spec["class"], "kwargs": spec["kwargs"]}
        config = InferenceRPUConfig(forward=IOParameters(is_perfect=True))
        config.noise_model = build(model_spec)
        config.drift_compensation = GlobalDriftCompensation()
        w = weights((5, 8), 2)
        x = np.random.default_rng(3).uniform(-1, 1, (4, 8)).astype(np.float32)
        tile = InferenceTile(5, 8, config)
        tile.set_weights(torch.from_numpy(w))
        tile.program_weights()
        programmed = tile.get_weights()[0].numpy().copy()
        drifted, alphas, outputs = [], [], []
        for t in times:
            tile.drift_weights(t)
            drifted.append(tile.get_weights()[0].numpy().copy())
            alphas.append(float(tile.alpha))
            tile.eval()
            outputs.append(tile.forward(torch.from_numpy(x)).detach().numpy().copy())
            tile.train()
        save(out, f"tile__{name}", {"noise_model": model_spec, "times": times,
                                    "compensation": "GlobalDriftCompensation"},
             weights=w, x=x, programmed=programmed, drifted=np.stack(drifted),
             alpha=np.array(alphas), outputs=np.stack(outputs))


# -- statistics of the noisy paths ----------------------------------------------------------------
STATS = {
    "pcm_default": ({"class": "PCMLikeNoiseModel", "kwargs": {}},
                    [0.0, 1.0, 5.0, 12.5, 25.0], [0.0, 3600.0, 3.15e7]),
    "pcm_gmax40_scales": ({"class": "PCMLikeNoiseModel", "kwargs": {
        "g_max": 40.0, "prog_noise_scale": 0.5, "read_noise_scale": 2.0, "drift_scale": 1.5}},
        [0.0, 4.0, 20.0, 40.0], [10.0, 86400.0]),
    "custom_drift": ({"class": "CustomDriftPCMLikeNoiseModel", "kwargs": {
        "custom_drift_model": {"g_lst": [0.0, 10.0, 25.0], "nu_mean_lst": [0.1, 0.06, 0.03],
                               "nu_std_lst": [0.02, 0.01, 0.005]}}},
        [0.0, 5.0, 10.0, 25.0], [100.0, 1e6]),
    "state_independent": ({"class": "StateIndependentNoiseModel", "kwargs": {}},
                          [0.0, 2.0, 12.5, 25.0], [0.0, 3600.0, 1e8]),
    "wan2022": ({"class": "ReRamWan2022NoiseModel", "kwargs": {}},
                [0.0, 5.0, 12.5, 25.0], [1.0, 86400.0, 172800.0]),
    "cmo": ({"class": "ReRamCMONoiseModel", "kwargs": {}},
            [9.0, 30.0, 60.0, 88.199997], [0.0, 1.0, 3600.0, 1e6]),
}
N_STATS = 20000


def make_stats(out: pathlib.Path) -> None:
    torch.manual_seed(1234)
    for name, (model_spec, g_values, times) in STATS.items():
        model = build(model_spec)
        g = torch.tensor(np.repeat(np.array(g_values, np.float32)[:, None], N_STATS, axis=1))
        g_prog = model.apply_programming_noise_to_conductance(g.clone())
        nu = model.generate_drift_coefficients(g.clone())
        arrays = {"g": np.array(g_values, np.float32),
                  "prog_mean": g_prog.mean(1).numpy(), "prog_std": g_prog.std(1).numpy()}
        if isinstance(nu, torch.Tensor):
            arrays.update(nu_mean=nu.mean(1).numpy(), nu_std=nu.std(1).numpy())
        drift_mean, drift_std = [], []
        for t in times:
            # drift and read noise from the TARGET conductances (a fixed input), with the drawn nu
            g_final = model.apply_drift_noise_to_conductance(g.clone(), nu, t)
            drift_mean.append(g_final.mean(1).numpy())
            drift_std.append(g_final.std(1).numpy())
        save(out, f"stats__{name}", {"noise_model": model_spec, "times": times, "n": N_STATS},
             drift_mean=np.stack(drift_mean), drift_std=np.stack(drift_std), **arrays)


# -- the compensated drift of a whole tile, default (noisy) forward IO ----------------------------
TILE_STATS = {
    "pcm_compensated": ({"class": "PCMLikeNoiseModel", "kwargs": {}}, [1.0, 86400.0, 3.15e7]),
    "state_independent_compensated": ({"class": "StateIndependentNoiseModel", "kwargs": {}},
                                      [3600.0]),
}
N_TILE_STATS = 300


def make_tile_stats(out: pathlib.Path) -> None:
    """alpha and the mean |W| of the drifted weights over independent programmings of one
    target, per time; the default IO makes both readouts noisy."""
    torch.manual_seed(4321)
    for name, (model_spec, times) in TILE_STATS.items():
        config = InferenceRPUConfig()
        config.noise_model = build(model_spec)
        w = weights((16, 24), 5)
        alphas = np.zeros((len(times), N_TILE_STATS))
        mean_abs = np.zeros((len(times), N_TILE_STATS))
        tile = InferenceTile(16, 24, config)
        tile.set_weights(torch.from_numpy(w))
        for rep in range(N_TILE_STATS):
            tile.program_weights()
            for k, t in enumerate(times):
                tile.drift_weights(t)
                alphas[k, rep] = float(tile.alpha)
                mean_abs[k, rep] = float(tile.get_weights()[0].abs().mean())
        save(out, f"tilestats__{name}", {"noise_model": model_spec, "times": times,
                                         "n": N_TILE_STATS},
             weights=w, alpha_mean=alphas.mean(1), alpha_std=alphas.std(1, ddof=1),
             mean_abs_mean=mean_abs.mean(1), mean_abs_std=mean_abs.std(1, ddof=1))


# -- constructor defaults --------------------------------------------------------------------------
def _plain(value):
    if isinstance(value, type):
        return value.__name__
    if isinstance(value, dict):
        return {"__dict__": [[_plain(k), _plain(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {"class": type(value).__name__,
                **{k: _plain(v) for k, v in vars(value).items() if k != "scale_ratio"}}
    if hasattr(value, "name") and hasattr(value, "value"):  # an enum member
        return value.name
    return value


def make_defaults(out: pathlib.Path) -> None:
    """The attributes of default-constructed noise models and compensation, and the fields of
    ``InferenceRPUConfig()`` that the inference tile reads."""
    config = InferenceRPUConfig()
    models = {name: _plain(CLASSES[name]()) for name in (
        "PCMLikeNoiseModel", "StateIndependentNoiseModel", "ReRamWan2022NoiseModel",
        "ReRamCMONoiseModel")}
    models["SinglePairConductanceConverter"] = _plain(SinglePairConductanceConverter())
    models["SingleDeviceConductanceConverter"] = _plain(SingleDeviceConductanceConverter())
    summary = {
        "noise_model": _plain(config.noise_model),
        "drift_compensation": type(config.drift_compensation).__name__,
        "backward.is_perfect": config.backward.is_perfect,
        "update.pulse_type": config.update.pulse_type.name,
        "device": type(config.device).__name__,
        "forward.out_noise": config.forward.out_noise,
    }
    (out / "defaults.json").write_text(json.dumps({"models": models, "config": summary},
                                                  indent=1, sort_keys=True))
    print("wrote defaults.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "tests" / "golden" / "inference"))
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    make_defaults(out)
    make_converters(out)
    make_tiles(out)
    make_stats(out)
    make_tile_stats(out)


if __name__ == "__main__":
    main()
