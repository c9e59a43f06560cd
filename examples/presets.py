"""Training algorithm presets on one device: aihwkit's ReRAM soft-bounds presets compared.

The demo network (8-16-4, tanh hidden layer, one tile per layer; ``python -m rpusim demo``)
learns a random teacher from noisy labels with every algorithm preset that aihwkit pairs
with ``ReRamSBPresetDevice``: plain analog SGD, Tiki-taka, TTv2, chopped TTv2, AGAD and
mixed precision. All share the preset periphery (7-bit DAC, 9-bit ADC, output noise) and
the same data, seeds and learning rate; only the algorithm differs. The table shows the
test MSE against the noise-free targets and the wall time.

    python examples/presets.py [--epochs N] [--lr LR] [--quick]
"""

import argparse
import time

from rpusim.demo import make_teacher_data, train_network
from rpusim.presets import (AGADReRamSBPreset, ChoppedTTv2ReRamSBPreset,
                            MixedPrecisionReRamSBPreset, ReRamSBPreset, TikiTakaReRamSBPreset,
                            TTv2ReRamSBPreset)

PRESETS = [ReRamSBPreset, TikiTakaReRamSBPreset, TTv2ReRamSBPreset, ChoppedTTv2ReRamSBPreset,
           AGADReRamSBPreset, MixedPrecisionReRamSBPreset]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 epochs (CI)")
    args = parser.parse_args()
    epochs = 2 if args.quick else args.epochs
    data = make_teacher_data(seed=args.seed)
    print(f"demo network 8-16-4 on ReRamSBPresetDevice, {epochs} epochs, lr {args.lr}, "
          f"seed {args.seed}, label noise std {data.noise}")
    print(f"{'preset':<28}{'device config':<30}{'test MSE':>9}"
          f"{'train MSE':>10}{'time':>8}")
    for preset in PRESETS:
        config = preset()
        began = time.perf_counter()
        history = train_network(config, data, epochs=epochs, lr=args.lr, seed=args.seed)
        elapsed = time.perf_counter() - began
        algorithm = type(config.device).__name__
        print(f"{preset.__name__:<28}{algorithm:<30}{history['test MSE'][-1]:9.4f}"
              f"{history['train MSE'][-1]:10.4f}{elapsed:7.1f}s")
    print(f"(test MSE at the start: {history['test MSE'][0]:.4f}; the train MSE includes the "
          f"label-noise variance {data.noise ** 2:.2f})")


if __name__ == "__main__":
    main()
