"""Tiki-taka vs plain analog SGD on SoftBounds devices, as the label noise grows.

A linear map is learned on one analog tile from noisy labels. With plain SGD every noisy
gradient pulse lands on the weight device, whose up and down steps are unbalanced away from its
symmetry point, so the noise drags the weights toward that point: the error stalls at a level
set by the noise. Tiki-taka (``TransferCompound``) takes the pulses on a fast device A and moves
A's slowly varying mean into the weight device C, column by column: the noise cancels on A.

    python examples/tiki_taka_vs_sgd.py [--epochs N] [--quick]
"""

import argparse

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import (SingleRPUConfig, SoftBoundsDevice, TransferCompound,
                            UnitCellRPUConfig)

CONFIGS = {
    "analog SGD": SingleRPUConfig(device=SoftBoundsDevice()),
    # gamma=0: the weight is C alone; transfer one column of A into C after every mini-batch
    "Tiki-taka": UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[SoftBoundsDevice(), SoftBoundsDevice()], gamma=0.0,
        transfer_every=1, units_in_mbatch=True, transfer_lr=0.1, scale_transfer_lr=False)),
}


def weight_error(config, noise, epochs, seed=0, n=256, shape=(4, 8), batch=10, lr=0.1):
    """Mean squared distance between the trained and the true weights."""
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-0.4, 0.4, shape)
    x = rng.uniform(-1, 1, (n, shape[1]))
    y = x @ w_true.T + noise * rng.standard_normal((n, shape[0]))
    tile = AnalogTile(*shape, config, seed=seed)
    tile.set_weights(np.zeros(shape))
    for _ in range(epochs):
        for start in range(0, n, batch):
            xb = x[start:start + batch]
            tile.update(xb, tile.forward(xb) - y[start:start + batch], lr=lr)
    return float(np.mean((tile.get_weights() - w_true) ** 2))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 epochs, two noise levels (CI)")
    args = parser.parse_args()
    epochs = 3 if args.quick else args.epochs
    noises = (0.0, 0.5) if args.quick else (0.0, 0.25, 0.5, 1.0)
    print(f"weight MSE after {epochs} epochs (8 -> 4 map, 256 samples, SoftBoundsDevice "
          f"defaults, default IO)")
    print(f"{'label noise':>11}  " + "  ".join(f"{name:>10}" for name in CONFIGS))
    for noise in noises:
        errors = [weight_error(config, noise, epochs) for config in CONFIGS.values()]
        print(f"{noise:11.2f}  " + "  ".join(f"{e:10.4f}" for e in errors))


if __name__ == "__main__":
    main()
