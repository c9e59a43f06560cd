"""Hardware-aware training, programming onto PCM, and accuracy under conductance drift.

The flow of ``python -m rpusim drift``, written out on the tile API: a 64-32-10 network on
scikit-learn's bundled digits, both weight matrices on AnalogTiles with an InferenceRPUConfig.

1. Train hardware-aware: after every mini-batch ``post_update_step()`` clips the weights
   (2.5 sigma), remaps them into the conductance range (one scale per output) and draws the
   weight noise that the next forward and backward passes see.
2. ``program_weights()``: the trained weights are written onto PCM-like device pairs
   (programming noise); ``drift_weights(t)``: the conductances ``t`` seconds later (drift and
   read noise). ``forward(x, is_test=True)`` reads them, with the global drift compensation's
   alpha applied; dividing by alpha gives the uncompensated outputs.
3. The same network trained without weight noise, for comparison.

    python examples/hwa_training_drift.py [--quick]     (needs scikit-learn)
"""

import argparse

import numpy as np
from sklearn.datasets import load_digits

from rpusim import AnalogTile
from rpusim.configs import (InferenceRPUConfig, WeightClipParameter, WeightModifierParameter,
                            WeightRemapParameter)

YEAR = 365.25 * 86400
TIMES = {"1 s": 1.0, "1 h": 3600.0, "1 day": 86400.0, "1 year": YEAR, "10 years": 10 * YEAR}


def make_config(weight_noise):
    return InferenceRPUConfig(  # PCMLikeNoiseModel and GlobalDriftCompensation by default
        modifier=WeightModifierParameter(type="ADD_NORMAL", std_dev=weight_noise),
        clip=WeightClipParameter(type="LAYER_GAUSSIAN", sigma=2.5),
        remap=WeightRemapParameter(type="CHANNELWISE_SYMMETRIC"))


def layer(tile, x, is_test=False, compensated=True):
    y = tile.forward(x, is_test=is_test)
    return y if compensated else y / tile.get_drift_compensation_alpha()


def predict(tiles, biases, x, is_test=False, compensated=True):
    h = np.tanh(layer(tiles[0], x, is_test, compensated) + biases[0])
    return layer(tiles[1], h, is_test, compensated) + biases[1], h


def train(config, x, y, epochs, seed, lr=0.2, batch=16):
    rng = np.random.default_rng(seed)
    tiles = [AnalogTile(32, 64, config, seed=seed), AnalogTile(10, 32, config, seed=seed + 1)]
    for tile in tiles:
        bound = np.sqrt(6 / (tile.in_size + tile.out_size))
        tile.set_weights(rng.uniform(-bound, bound, (tile.out_size, tile.in_size)))
    biases = [np.zeros(32), np.zeros(10)]
    for _ in range(epochs):
        for idx in np.array_split(rng.permutation(len(x)), len(x) // batch):
            logits, h = predict(tiles, biases, x[idx])
            p = np.exp(logits - logits.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            p[np.arange(len(idx)), y[idx]] -= 1
            d_out = p / len(idx)                       # softmax cross-entropy gradient
            d_hidden = tiles[1].backward(d_out) * (1 - h ** 2)
            tiles[1].update(h, d_out, lr=lr)
            tiles[0].update(x[idx], d_hidden, lr=lr)
            biases[1] -= lr * d_out.sum(axis=0)
            biases[0] -= lr * d_hidden.sum(axis=0)
            for tile in tiles:
                tile.post_update_step()                # clip, remap, new weight-noise draw
    return tiles, biases


def accuracy(tiles, biases, x, y, compensated=True):
    return float(np.mean(predict(tiles, biases, x, True, compensated)[0].argmax(axis=1) == y))


def main(quick=False):
    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    order = np.random.default_rng(0).permutation(len(x))
    test, train_idx = order[:450], order[450:]
    epochs, n_programs = (3, 2) if quick else (15, 5)
    print(f"{len(train_idx)} training and {len(test)} test digits; {epochs} epochs, "
          f"{n_programs} programmings")
    header = "".join(f"{label:>10}" for label in TIMES)
    for name, noise in (("hardware-aware (weight noise 0.08)", 0.08), ("no weight noise", 0.0)):
        tiles, biases = train(make_config(noise), x[train_idx], y[train_idx], epochs, seed=1)
        trained = accuracy(tiles, biases, x[test], y[test])
        results = {True: [], False: []}
        for _ in range(n_programs):
            for tile in tiles:
                tile.program_weights()                 # fresh programming noise each time
            for comp in results:
                results[comp].append([])
            for t in TIMES.values():
                for tile in tiles:
                    tile.drift_weights(t)              # absolute time since programming
                for comp in results:
                    results[comp][-1].append(accuracy(tiles, biases, x[test], y[test], comp))
        print(f"\n{name}: test accuracy {trained:.4f} before programming; after it, mean over "
              f"programmings:\n  {'':22}{header}")
        for comp, label in ((True, "with compensation"), (False, "without compensation")):
            row = "".join(f"{v:10.4f}" for v in np.mean(results[comp], axis=0))
            print(f"  {label:22}{row}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 epochs, 2 programmings")
    main(parser.parse_args().quick)
