"""Whole training runs of analog recurrent networks: rpusim's test error against aihwkit
1.2.0's, in distribution.

``AnalogRNN`` with one cell type (8 hidden units) and an ``AnalogLinear`` read-out learn to
predict the next value of a sum of two sines from the 12 before it (633 windows, batch 10,
``AnalogSGD`` at ``--lr``, ``--epochs`` epochs); ``torch.manual_seed(seed)`` draws the same
initial weights and data order in both libraries, the tiles' own random streams differ. Per
cell and config: the final mean squared error over all windows, mean +- standard error over
``--seeds`` seeds per library, and Welch's z of the difference (``|z| > 3`` flagged). The
deterministic recurrent paths are checked against aihwkit by ``fuzz_golden_rnn.py``; this
reaches the stochastic ones (pulse trains, noisy IO). Run from the aihwkit environment with
rpusim importable::

    PYTHONPATH=.:<dir with numba> /tmp/aihwkit-venv/bin/python scripts/compare_rnn_training.py \
        [--seeds 10] [--epochs 3] [--lr 0.1]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import rpusim  # noqa: E402,F401  (starts numba's threads keeping torch's count)
from bench_examples import library  # noqa: E402
from compare_presets_digits import parse_comparison, welch  # noqa: E402

CONFIGS = {
    "ConstantStep": lambda C: C.SingleRPUConfig(device=C.ConstantStepDevice()),
    "SoftBounds": lambda C: C.SingleRPUConfig(device=C.SoftBoundsDevice()),
    "TransferCompound": lambda C: C.UnitCellRPUConfig(device=C.TransferCompound(
        unit_cell_devices=[C.SoftBoundsDevice(), C.SoftBoundsDevice()])),
}
CASES = [("AnalogLSTMCell", "ConstantStep"), ("AnalogLSTMCell", "SoftBounds"),
         ("AnalogGRUCell", "TransferCompound"), ("AnalogVanillaRNNCell", "ConstantStep")]
WINDOW = 12


def sequences():
    """``(x (n, 12, 1), y (n, 1))``: windows of 0.5 sin t + 0.2 sin 3.1 t and the next value."""
    t = torch.linspace(0, 40, 2000)
    s = 0.5 * torch.sin(t) + 0.2 * torch.sin(3.1 * t)
    starts = range(0, 1900, 3)
    x = torch.stack([s[i:i + WINDOW] for i in starts]).unsqueeze(-1)
    y = torch.stack([s[i + WINDOW] for i in starts]).unsqueeze(-1)
    return x, y


class Net(nn.Module):
    def __init__(self, layers, config, cell: str):
        super().__init__()
        self.rnn = layers.AnalogRNN(getattr(layers, cell), 1, 8, rpu_config=config)
        self.out = layers.AnalogLinear(8, 1, rpu_config=config)

    def forward(self, x):
        y, _ = self.rnn(x.transpose(0, 1))  # (sequence, batch, features)
        return self.out(y[-1])


def train(lib: str, cell: str, config: str, seed: int, epochs: int, lr: float, data) -> float:
    """The final mean squared error of one training run."""
    layers, configs, _, sgd = library(lib)
    x, y = data
    torch.manual_seed(seed)
    model = Net(layers, CONFIGS[config](configs), cell)
    opt = sgd(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    order = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=order).split(10):
            opt.zero_grad()
            ((model(x[idx]) - y[idx]) ** 2).mean().backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        return float(((model(x) - y) ** 2).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.1)
    args = parse_comparison(parser)
    data = sequences()
    print(f"{args.epochs} epochs, {args.seeds} seeds, lr {args.lr}; final MSE, mean +- "
          f"standard error, rpusim / aihwkit, Welch's z", flush=True)
    for cell, config in CASES:
        start = time.perf_counter()
        m_r, s_r, m_a, s_a, z = welch(*([train(lib, cell, config, seed, args.epochs, args.lr,
                                               data) for seed in range(args.seeds)]
                                        for lib in ("rpusim", "aihwkit")))
        print(f"{cell:22s} {config:18s} {m_r:.5f}+-{s_r:.5f} / {m_a:.5f}+-{s_a:.5f}  "
              f"z {z:+5.2f}{'  <--' if abs(z) > 3 else ''}  "
              f"({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
