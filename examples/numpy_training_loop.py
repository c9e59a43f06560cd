"""Embed rpusim in your own training loop: a two-layer analog network in plain NumPy.

Both layers are AnalogTiles; the loop calls forward, backward and update itself (what a framework
adapter would do). Data: two concentric rings generated in code, labels +-1.

    python examples/numpy_training_loop.py [--epochs N] [--seed S]
"""

import argparse

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import ConstantStepDevice, SingleRPUConfig


def rings(n=400, seed=0):
    """Points on an inner (label +1) and an outer (label -1) noisy ring."""
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    radius = np.where(label > 0, 0.3, 0.8) + rng.normal(0, 0.05, n)
    angle = rng.uniform(0, 2 * np.pi, n)
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    return x.astype(np.float32), label.astype(np.float32)[:, None]


def with_bias(a):
    return np.concatenate([a, np.ones((len(a), 1), a.dtype)], axis=1)


def main(epochs=20, seed=0, hidden=16, lr=0.1, batch=10):
    x, y = rings(seed=seed)
    # wider bounds than the default +-0.6: this problem needs weights up to about 1.5
    config = SingleRPUConfig(device=ConstantStepDevice(dw_min=0.001, w_max=2.0, w_min=-2.0))
    # each layer gets a constant-1 input column: an analog bias (rings need biases)
    layer1 = AnalogTile(hidden, 3, config, seed=seed)
    layer2 = AnalogTile(1, hidden + 1, config, seed=seed + 1)
    x = with_bias(x)
    init = np.random.default_rng(seed + 2)
    for layer in (layer1, layer2):  # a wider start than the default +-0.1 learns faster
        layer.set_weights(init.uniform(-0.5, 0.5, (layer.out_size, layer.in_size)))
    order_rng = np.random.default_rng(seed)
    for epoch in range(epochs + 1):
        h = with_bias(np.tanh(layer1.forward(x, is_test=True)))
        out = layer2.forward(h, is_test=True)
        loss = float(np.mean((out - y) ** 2))
        acc = float(np.mean(np.sign(out) == y))
        if epoch % max(1, epochs // 5) == 0 or epoch == epochs:
            print(f"epoch {epoch:3d}  mse {loss:.4f}  accuracy {acc:.3f}")
        if epoch == epochs:
            break
        order = order_rng.permutation(len(x))
        for start in range(0, len(x), batch):
            idx = order[start:start + batch]
            xb, yb = x[idx], y[idx]
            a1 = layer1.forward(xb)
            h = with_bias(np.tanh(a1))
            out = layer2.forward(h)
            d_out = 2 * (out - yb) / batch          # dL/d(out)
            d_h = layer2.backward(d_out)[:, :-1]    # analog transposed MVM, bias input dropped
            d_a1 = d_h * (1 - h[:, :-1] ** 2)
            layer2.update(h, d_out, lr=lr)           # pulsed updates: W -= lr d^T x
            layer1.update(xb, d_a1, lr=lr)
    return loss, acc


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    main(epochs=args.epochs, seed=args.seed)
