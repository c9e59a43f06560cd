"""The demo: analog training of a small linear regression on built-in (generated) data."""

from __future__ import annotations

import time

import numpy as np

from rpusim import configs
from rpusim.tile import AnalogTile

__all__ = ["make_regression", "train_regression", "run_demo"]


def make_regression(n_samples: int = 512, in_size: int = 8, out_size: int = 2, seed: int = 0):
    """Seeded linear-regression data: ``y = x @ W_true.T`` with ``x`` uniform in [-1, 1)."""
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-0.3, 0.3, (out_size, in_size))
    x = rng.uniform(-1, 1, (n_samples, in_size))
    return x, x @ w_true.T, w_true


def train_regression(rpu_config, x, y, *, epochs: int = 10, batch_size: int = 8,
                     lr: float = 0.1, seed: int = 0, callback=None) -> list[float]:
    """Train one analog tile on ``(x, y)`` with analog SGD; return the loss after each epoch.

    The loss is the mean squared error of the analog forward pass (test mode) over all samples.
    """
    tile = AnalogTile(y.shape[1], x.shape[1], rpu_config, seed=seed)
    tile.set_learning_rate(lr)
    order_rng = np.random.default_rng(seed + 1)

    def loss() -> float:
        return float(np.mean((tile.forward(x, is_test=True) - y) ** 2))

    losses = [loss()]
    for epoch in range(epochs):
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), batch_size):
            idx = order[start:start + batch_size]
            err = tile.forward(x[idx]) - y[idx]
            tile.update(x[idx], err)
            tile.post_update_step()
        losses.append(loss())
        if callback is not None:
            callback(epoch + 1, losses[-1])
    return losses


def run_demo(device: str = "ConstantStepDevice", epochs: int = 10, seed: int = 0,
             lr: float = 0.1) -> list[float]:
    """Train with the named device config at its defaults and print the loss per epoch."""
    device_cls = getattr(configs, device, None)
    if device_cls is None or not isinstance(device_cls, type):
        raise ValueError(f"unknown device {device!r}")
    config = configs.SingleRPUConfig(device=device_cls())
    x, y, _ = make_regression(seed=seed)
    print(f"rpusim demo: linear regression 8 -> 2, {len(x)} samples, {device} "
          f"(aihwkit defaults), analog SGD lr={lr}, seed={seed}")
    start = time.perf_counter()

    def report(epoch, value):
        print(f"  epoch {epoch:3d}  mse {value:.5f}  ({time.perf_counter() - start:.1f} s)",
              flush=True)

    print(f"  epoch   0  mse {float(np.mean(y ** 2)):.5f}  (zero predictor)")
    losses = train_regression(config, x, y, epochs=epochs, lr=lr, seed=seed, callback=report)
    print(f"final mse {losses[-1]:.5f} (initial {losses[0]:.5f})")
    return losses
