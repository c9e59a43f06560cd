"""Save a training run to disk and resume it: the resumed run is bit-identical.

``tile.save(path)`` writes the tile's full state to an ``.npz`` (no pickle): config, weights,
every hidden parameter (device-to-device draws, the fast device A and the transfer state of a
Tiki-taka compound), counters and the random generator's state. ``AnalogTile.load(path)``
rebuilds it. Training 2 epochs, saving, loading and training 2 more gives exactly the weights of
4 uninterrupted epochs, random pulse trains included.

    python examples/save_and_resume.py
"""

import pathlib
import tempfile

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import SoftBoundsDevice, TransferCompound, UnitCellRPUConfig

CONFIG = UnitCellRPUConfig(device=TransferCompound(
    unit_cell_devices=[SoftBoundsDevice(), SoftBoundsDevice()], gamma=0.0, transfer_every=1,
    units_in_mbatch=True, transfer_lr=0.1, scale_transfer_lr=False))

rng = np.random.default_rng(0)
W_TRUE = rng.uniform(-0.4, 0.4, (3, 5))
X = rng.uniform(-1, 1, (100, 5))
Y = X @ W_TRUE.T + 0.3 * rng.standard_normal((100, 3))


def train(tile, epochs):
    for _ in range(epochs):
        for start in range(0, len(X), 10):
            x = X[start:start + 10]
            tile.update(x, tile.forward(x) - Y[start:start + 10])
            tile.post_update_step()
    return float(np.mean((tile.get_weights() - W_TRUE) ** 2))


def main():
    straight = AnalogTile(3, 5, CONFIG, seed=11)
    straight.set_weights(np.zeros((3, 5)))
    error = train(straight, 4)
    print(f"4 epochs in one go:         weight MSE {error:.6f}")

    first = AnalogTile(3, 5, CONFIG, seed=11)
    first.set_weights(np.zeros((3, 5)))
    print(f"2 epochs, then save:        weight MSE {train(first, 2):.6f}")
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "run.npz"
        first.save(path)
        print(f"saved {path.stat().st_size} bytes: "
              f"{len(first.get_hidden_parameter_names())} hidden parameters and the RNG state")
        resumed = AnalogTile.load(path)
    error = train(resumed, 2)
    print(f"load, then 2 more epochs:   weight MSE {error:.6f}")
    identical = np.array_equal(resumed.get_weights(), straight.get_weights())
    print("resumed weights bit-identical to the uninterrupted run:", identical)
    assert identical
    same_hidden = all(np.array_equal(a, b) for a, b in zip(
        resumed.get_hidden_parameters().values(), straight.get_hidden_parameters().values()))
    print("every hidden parameter identical too:", same_hidden)
    assert same_hidden


if __name__ == "__main__":
    main()
