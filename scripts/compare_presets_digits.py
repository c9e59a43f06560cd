"""Whole training runs of every aihwkit preset on digits: rpusim's test accuracy against
aihwkit 1.2.0's, in distribution.

Each preset trains the digits MLP 64-32-10 (sigmoid, log-softmax, NLL loss, ``AnalogSGD`` at
``--lr``, batch 10, a seeded 80/20 split of scikit-learn's bundled 8x8 digits) for
``--epochs`` epochs from ``--seeds`` seeds in each library (``torch.manual_seed(seed)`` draws
the same initial weights and data order in both; the tiles' own random streams differ). The
table gives the test accuracy and the test loss (NLL: it moves where a preset barely learns
and the accuracy sits near chance), mean +- standard error over the seeds per library, and
Welch's z of each difference. ``|z| > 3`` is flagged: a preset whose physics differ between
the libraries shows up here even where the deterministic fuzzers (``fuzz_golden*.py``) cannot
reach it (stochastic pulses, noisy IO, device-to-device variation). Run from the aihwkit
environment with rpusim importable::

    PYTHONPATH=.:<dir with numba> /tmp/aihwkit-venv/bin/python scripts/compare_presets_digits.py \
        [--seeds 6] [--epochs 2] [--lr 0.5] [--cnn] [--configs] [--drift] [NAME ...]

``NAME``: presets whose name contains it (all presets by default). ``--cnn`` trains the CNN of
``bench_examples.py --presets`` (conv 1->8 k3, tanh, linear 288->10) instead. ``--configs``
compares each device model (``SingleRPUConfig``) and each compound (of two SoftBounds devices,
or one) with its defaults, and the inference and floating-point configs, instead of the
presets. ``--drift`` (inference configs, e.g. ``--configs Inference`` or
``StandardHWATrainingPreset``) programs each trained network once and compares its test
accuracy after 1 s, 1 day and 1 year of drift as well.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rpusim  # noqa: E402,F401  (starts numba's threads keeping torch's count)
from bench_examples import library, preset_workloads  # noqa: E402

BATCH = 10


def digits():
    """``(x_train, y_train, x_test, y_test)``: images (n, 1, 8, 8) in [0, 1]."""
    from sklearn.datasets import load_digits
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    n_train = int(0.8 * len(y))
    return x[perm[:n_train]], y[perm[:n_train]], x[perm[n_train:]], y[perm[n_train:]]


def _sb2(C, compound, **kw):
    return C.UnitCellRPUConfig(device=compound(
        unit_cell_devices=[C.SoftBoundsDevice(), C.SoftBoundsDevice()], **kw))


# ``--configs``: each device model and compound with its defaults, the inference configs (one
# with hardware-aware training: weight noise, clipping, remapping) and floating point (``C``:
# the library's configs)
CONFIGS = {
    **{f"Single{name}": (lambda C, name=name: C.SingleRPUConfig(device=getattr(C, name)()))
       for name in ("ConstantStepDevice", "LinearStepDevice", "SoftBoundsDevice",
                    "SoftBoundsPmaxDevice", "ExpStepDevice", "PowStepDevice",
                    "PiecewiseStepDevice", "SoftBoundsReferenceDevice",
                    "PowStepReferenceDevice", "IdealDevice")},
    "TransferCompound": lambda C: _sb2(C, C.TransferCompound),
    "BufferedTransferCompound": lambda C: _sb2(C, C.BufferedTransferCompound),
    "ChoppedTransferCompound": lambda C: _sb2(C, C.ChoppedTransferCompound),
    "DynamicTransferCompound": lambda C: _sb2(C, C.DynamicTransferCompound),
    "VectorUnitCell": lambda C: _sb2(C, C.VectorUnitCell),
    "ReferenceUnitCell": lambda C: _sb2(C, C.ReferenceUnitCell),
    "OneSidedUnitCell": lambda C: C.UnitCellRPUConfig(device=C.OneSidedUnitCell(
        unit_cell_devices=[C.SoftBoundsDevice()])),
    "MixedPrecisionCompound": lambda C: C.DigitalRankUpdateRPUConfig(
        device=C.MixedPrecisionCompound(device=C.SoftBoundsDevice())),
    "InferenceRPUConfig": lambda C: C.InferenceRPUConfig(),
    "InferenceRPUConfig HWA": lambda C: C.InferenceRPUConfig(
        modifier=C.WeightModifierParameter(type=C.WeightModifierType.ADD_NORMAL, std_dev=0.08),
        clip=C.WeightClipParameter(type=C.WeightClipType.LAYER_GAUSSIAN, sigma=2.5),
        remap=C.WeightRemapParameter(type=C.WeightRemapType.CHANNELWISE_SYMMETRIC)),
    "TorchInferenceRPUConfig": lambda C: C.TorchInferenceRPUConfig(),
    "FloatingPointRPUConfig": lambda C: C.FloatingPointRPUConfig(),
}


def model_of(lib: str, preset: str, cnn: bool, lr: float):
    L, C, P, sgd = library(lib)
    cfg = CONFIGS[preset](C) if preset in CONFIGS else getattr(P, preset)()
    if cnn:
        model = L.AnalogSequential(
            L.AnalogConv2d(1, 8, 3, rpu_config=cfg), nn.Tanh(), nn.Flatten(),
            L.AnalogLinear(8 * 36, 10, rpu_config=cfg), nn.LogSoftmax(dim=1))
    else:
        model = L.AnalogSequential(
            nn.Flatten(), L.AnalogLinear(64, 32, rpu_config=cfg), nn.Sigmoid(),
            L.AnalogLinear(32, 10, rpu_config=cfg), nn.LogSoftmax(dim=1))
    opt = sgd(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    return model, opt


DRIFT_TIMES = {"1 s": 1.0, "1 d": 86400.0, "1 y": 3.15576e7}


def train(lib: str, preset: str, seed: int, epochs: int, data, cnn: bool, lr: float,
          drift: bool = False) -> tuple:
    """``(test accuracy, test loss)`` of one training run; with ``drift``, then the test
    accuracy of the network programmed once and read at each of ``DRIFT_TIMES``."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)
    model, opt = model_of(lib, preset, cnn, lr)
    loss_fn = nn.NLLLoss()
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(y_train), generator=order).split(BATCH):
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        out = model(x_test)
        result = [float((out.argmax(1) == y_test).float().mean()), float(loss_fn(out, y_test))]
        if drift:
            model.program_analog_weights()
            for t in DRIFT_TIMES.values():
                model.drift_analog_weights(t)
                result.append(float((model(x_test).argmax(1) == y_test).float().mean()))
    return tuple(result)


def welch(a: list[float], b: list[float]) -> tuple[float, float, float, float, float]:
    """Means and standard errors of the finite values of ``a`` and ``b``, and Welch's z of the
    difference (NaN where a side has fewer than two finite values)."""
    stats = []
    for v in (a, b):
        v = [x for x in v if math.isfinite(x)]
        stats += ([statistics.fmean(v), statistics.stdev(v) / math.sqrt(len(v))] if len(v) > 1
                  else [math.nan, math.nan])
    m_a, s_a, m_b, s_b = stats
    spread = math.hypot(s_a, s_b)
    z = (m_a - m_b) / spread if spread > 0 else (0.0 if m_a == m_b else math.inf)
    return m_a, s_a, m_b, s_b, z


def parse_comparison(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """The arguments of a comparison script (``parser`` has ``--seeds``), checked: at least
    two seeds, aihwkit importable. Sets torch to one thread, as the benchmarks do."""
    args = parser.parse_args()
    if args.seeds < 2:
        parser.error("--seeds must be at least 2 (a standard error needs two runs)")
    try:
        import aihwkit  # noqa: F401
    except ImportError:
        parser.error("aihwkit is not importable: run this from aihwkit's environment with "
                     "rpusim on PYTHONPATH (see the docstring)")
    torch.set_num_threads(1)
    return args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--cnn", action="store_true")
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--configs", action="store_true",
                        help="each device model and compound with its defaults, not the presets")
    parser.add_argument("--drift", action="store_true",
                        help="inference configs: program the trained network and compare the "
                             "accuracy after drift")
    args = parse_comparison(parser)
    data = digits()
    presets = (list(CONFIGS) if args.configs
               else sorted({w.rsplit(" ", 1)[0] for w in preset_workloads()}))
    presets = [p for p in presets if not args.names or any(n in p for n in args.names)]
    if not presets:
        parser.error(f"no {'config' if args.configs else 'preset'} name contains any of "
                     f"{args.names}")
    print(f"{'CNN' if args.cnn else 'MLP'}, {args.epochs} epochs, {args.seeds} seeds, "
          f"lr {args.lr}, batch {BATCH}; test accuracy and loss"
          f"{' (then accuracy after drift)' if args.drift else ''}, mean +- standard error, "
          f"rpusim / aihwkit, Welch's z", flush=True)
    flagged = []
    for preset in presets:
        start = time.perf_counter()
        runs = {}
        for lib in ("rpusim", "aihwkit"):
            try:
                runs[lib] = [train(lib, preset, seed, args.epochs, data, args.cnn, args.lr,
                                   args.drift) for seed in range(args.seeds)]
            except Exception as err:  # a run that stops is a finding: report it, go on
                print(f"{preset:34s}  {lib} stopped: {type(err).__name__}: {err}  <--",
                      flush=True)
                break
        if len(runs) < 2:
            flagged.append(preset)
            continue
        line = f"{preset:34s}"
        flag = False
        measures = ["accuracy", "loss"] + ([f"{t}" for t in DRIFT_TIMES] if args.drift else [])
        for i, what in enumerate(measures):
            m_r, s_r, m_a, s_a, z = welch(*([run[i] for run in runs[lib]]
                                            for lib in ("rpusim", "aihwkit")))
            line += f"  {what} {m_r:.3f}+-{s_r:.3f} / {m_a:.3f}+-{s_a:.3f} z {z:+5.1f}"
            flag = flag or abs(z) > 3
        bad = {lib: sum(not math.isfinite(run[1]) for run in runs[lib]) for lib in runs}
        if any(bad.values()):
            line += f"  (non-finite loss in {bad['rpusim']} / {bad['aihwkit']} runs)"
            flag = flag or bad["rpusim"] > bad["aihwkit"]
        if flag:
            flagged.append(preset)
        print(f"{line}{'  <--' if flag else ''}  ({time.perf_counter() - start:.0f} s)",
              flush=True)
    print(f"flagged: {', '.join(flagged) if flagged else 'none'} ({len(presets)} "
          f"{'configs' if args.configs else 'presets'})")


if __name__ == "__main__":
    main()
