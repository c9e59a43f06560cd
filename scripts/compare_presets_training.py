"""Train a linear map on one tile with algorithm presets, in rpusim or in aihwkit 1.2.0.

The same loop runs in either library: a 6 x 10 tile starts at zero weights and learns
``y = W x + noise`` (200 samples, label noise std 0.3, mini-batches of 10, learning rate 0.1,
8 epochs) with analog forward passes and pulsed updates; the weight MSE against the true ``W``
is averaged over 6 seeds (data seeds equal in both libraries; the tiles' own random streams
differ). Run it once in each environment and compare the columns::

    python scripts/compare_presets_training.py                     # rpusim
    /tmp/aihwkit-venv/bin/python scripts/compare_presets_training.py --library aihwkit
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

PRESETS = ["ReRamSBPreset", "TikiTakaReRamSBPreset", "TTv2ReRamSBPreset",
           "ChoppedTTv2ReRamSBPreset", "AGADReRamSBPreset", "MixedPrecisionReRamSBPreset",
           "EcRamPreset", "TikiTakaEcRamPreset"]
OUT, IN, N_SAMPLES, BATCH, LR, NOISE = 6, 10, 200, 10, 0.1, 0.3


class RpusimTile:
    def __init__(self, name: str, seed: int):
        sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
        from rpusim import AnalogTile, presets
        self.tile = AnalogTile(OUT, IN, getattr(presets, name)(), seed=seed + 100)

    def set_weights(self, w):
        self.tile.set_weights(w)

    def get_weights(self):
        return self.tile.get_weights()

    def step(self, x, y):
        self.tile.update(x, self.tile.forward(x) - y, lr=LR)
        self.tile.post_update_step()


class AihwkitTile:
    def __init__(self, name: str, seed: int):
        import torch
        from aihwkit.simulator import presets
        self.torch = torch
        torch.manual_seed(seed)
        config = getattr(presets, name)()
        self.tile = config.tile_class(OUT, IN, config).tile
        self.tile.set_learning_rate(LR)

    def _t(self, a):
        return self.torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def set_weights(self, w):
        self.tile.set_weights(self._t(w))

    def get_weights(self):
        return self.tile.get_weights().numpy()

    def step(self, x, y):
        d = self.tile.forward(self._t(x), False, False).numpy() - y
        self.tile.update(self._t(x), self._t(d), False)


def weight_mse(tile_class, name: str, seed: int, epochs: int) -> float:
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-0.5, 0.5, (OUT, IN))
    x = rng.uniform(-1, 1, (N_SAMPLES, IN))
    y = x @ w_true.T + NOISE * rng.standard_normal((N_SAMPLES, OUT))
    tile = tile_class(name, seed)
    tile.set_weights(np.zeros((OUT, IN)))
    for _ in range(epochs):
        for start in range(0, N_SAMPLES, BATCH):
            tile.step(x[start:start + BATCH], y[start:start + BATCH])
    return float(np.mean((tile.get_weights() - w_true) ** 2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--library", choices=["rpusim", "aihwkit"], default="rpusim")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=8)
    args = parser.parse_args(argv)
    tile_class = RpusimTile if args.library == "rpusim" else AihwkitTile
    print(f"{args.library}: weight MSE after {args.epochs} epochs, mean +- standard error over "
          f"{args.seeds} seeds")
    for name in PRESETS:
        errors = np.array([weight_mse(tile_class, name, seed, args.epochs)
                           for seed in range(args.seeds)])
        print(f"{name:<30}{errors.mean():8.4f} +- {errors.std(ddof=1) / np.sqrt(len(errors)):.4f}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
