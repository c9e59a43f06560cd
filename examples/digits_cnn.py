"""A small analog CNN on scikit-learn's 8x8 digits: analog SGD vs Tiki-taka on SoftBounds devices.

The network is conv 1->8 (3x3) -> tanh -> conv 8->16 (3x3) -> tanh -> linear 256->10, every
weight on an analog tile. It is trained twice from the same initial weights: with plain analog
SGD on SoftBounds devices, and with Tiki-taka (``TransferCompound`` of two SoftBounds devices:
gradients pulse a fast device A whose content is moved column by column into the weight
device C). Each epoch prints the test accuracy; the end writes a table and a PNG of the curves.

The data are the 1797 digit images bundled with scikit-learn (``load_digits``: no download),
scaled to [0, 1] and split 80/20 (seeded). Conv layers train as aihwkit's do: every (image,
output position) pair is one sample of the pulsed update.

    python examples/digits_cnn.py [--epochs N] [--quick] [--out digits_cnn.png]

Threads: the script imports rpusim before torch and calls ``torch.set_num_threads(1)``; on a
small machine torch's and numba's thread pools otherwise compete for the same cores (see
"Threads" in the README's section on layers).
"""

import argparse
import time

import numpy as np

# rpusim before torch, so that torch's OpenMP workers start with the passive wait policy
from rpusim.configs import (SingleRPUConfig, SoftBoundsDevice, TransferCompound,
                            UnitCellRPUConfig)
from rpusim.torch import AnalogConv2d, AnalogLinear, AnalogSequential, AnalogSGD

import torch
from sklearn.datasets import load_digits
from torch import nn

CONFIGS = {
    "analog SGD": lambda: SingleRPUConfig(device=SoftBoundsDevice()),
    # aihwkit's defaults: the weight is C alone (gamma 0); one column of A is read and
    # written into C after every mini-batch
    "Tiki-taka": lambda: UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[SoftBoundsDevice(), SoftBoundsDevice()])),
}


def digits(seed: int, train_limit: int | None = None):
    """Train and test tensors: images (N, 1, 8, 8) in [0, 1] and labels."""
    data = load_digits()
    x = torch.tensor(data.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.long)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
    split = int(0.8 * len(y))
    train, test = order[:split], order[split:]
    if train_limit:
        train = train[:train_limit]
    return x[train], y[train], x[test], y[test]


def build(rpu_config) -> AnalogSequential:
    return AnalogSequential(
        AnalogConv2d(1, 8, kernel_size=3, rpu_config=rpu_config), nn.Tanh(),
        AnalogConv2d(8, 16, kernel_size=3, rpu_config=rpu_config), nn.Tanh(),
        nn.Flatten(), AnalogLinear(16 * 4 * 4, 10, rpu_config=rpu_config),
        nn.LogSoftmax(dim=1))


@torch.no_grad()
def accuracy(model, x, y) -> float:
    model.eval()
    correct = (model(x).argmax(1) == y).float().mean().item()
    model.train()
    return correct


def train(name, data, epochs, batch, lr, seed):
    """Test accuracy after each epoch (and the seconds per epoch)."""
    x_train, y_train, x_test, y_test = data
    torch.manual_seed(seed)  # same initial weights for every config
    model = build(CONFIGS[name]())
    opt = AnalogSGD(model.parameters(), lr=lr)
    opt.regroup_param_groups(model)
    loss_fn = nn.NLLLoss()
    shuffle = torch.Generator().manual_seed(seed)
    accuracies, seconds = [], []
    for epoch in range(epochs):
        start = time.perf_counter()
        for idx in torch.randperm(len(y_train), generator=shuffle).split(batch):
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        seconds.append(time.perf_counter() - start)
        accuracies.append(accuracy(model, x_test, y_test))
        print(f"  {name:10s} epoch {epoch + 1:2d}: test accuracy {100 * accuracies[-1]:5.1f} %"
              f"  ({seconds[-1]:.1f} s)", flush=True)
    return accuracies, seconds


def plot(results, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, (acc, _) in results.items():
        ax.plot(range(1, len(acc) + 1), [100 * a for a in acc], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("analog CNN on 8x8 digits, SoftBounds devices")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs on 400 training images (CI)")
    parser.add_argument("--out", default="digits_cnn.png", help="where to write the plot")
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = 2 if args.quick else args.epochs
    data = digits(args.seed, train_limit=400 if args.quick else None)
    print(f"digits: {len(data[1])} training and {len(data[3])} test images, batch "
          f"{args.batch}, lr {args.lr}, {epochs} epochs, SoftBoundsDevice defaults, default IO")
    results = {name: train(name, data, epochs, args.batch, args.lr, args.seed)
               for name in CONFIGS}
    print("\ntest accuracy (%) per epoch")
    print("epoch " + "".join(f"{name:>12}" for name in results))
    for epoch in range(epochs):
        print(f"{epoch + 1:5d} " + "".join(f"{100 * acc[epoch]:12.1f}"
                                           for acc, _ in results.values()))
    print("s/epoch" + "".join(f"{np.mean(sec):11.2f} " for _, sec in results.values()))
    plot(results, args.out)
    print(f"plot: {args.out}")


if __name__ == "__main__":
    main()
