"""A device model that aihwkit does not have, defined in this script: a sigmoid conductance.

Many filamentary and ferroelectric devices respond to identical pulses with an S-shaped
conductance curve: slow at first, fast in the middle, saturating at the top,
``G(p) = G_min + (G_max - G_min) / (1 + exp(-(p - p0) / s))`` after ``p`` pulses. As a step
function of the weight (the form rpusim's pulse engine needs): with the weight's position
``u = (w - min_bound) / (max_bound - min_bound)`` in its range, one up pulse moves the logit of
``u`` by ``1 / s`` (a down pulse by ``-1 / s``): ``u <- sigmoid(logit(u) +- gain / s)``. ``s``
(the transition width, in pulses) is a per-element hidden parameter with device-to-device
spread; the pulse gain carries the common ``dw_min_dtod``/``up_down`` spread and
``dw_min_std`` cycle-to-cycle noise.

The script registers the model with ``rpusim.devices.define_device``, prints and plots its
pulse response (PNG, if matplotlib is installed), and trains a small linear regression with
Tiki-taka (``TransferCompound``) made of two sigmoid devices.

    python examples/custom_device.py [--quick] [--out sigmoid_response.png]
"""

import argparse
from dataclasses import dataclass

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import (PulseType, SingleRPUConfig, TransferCompound, UnitCellRPUConfig,
                            UpdateParameters)
from rpusim.devices import PulsedDevice, define_device
from rpusim.devices.base import (FIRST_EXTRA_SLOT, SLOT_DWMIN_DOWN, SLOT_DWMIN_UP,
                                 SLOT_MAX_BOUND, SLOT_MIN_BOUND, cast_like, clip_to_bounds)
from rpusim.kernels.rng import normal

SLOT_WIDTH = FIRST_EXTRA_SLOT  # the model's one extra hidden parameter


@dataclass
class SigmoidDevice(PulsedDevice):
    """Sigmoid pulse response; see the module docstring.

    Attributes
    ----------
    width : float
        Mean transition width ``s`` in pulses (about ``4 s`` pulses cross the middle half).
    width_dtod : float
        Relative device-to-device spread of ``width`` (floored at a tenth of the mean).
    edge : float
        Fraction of the range treated as the sigmoid's end: a weight at its bound still moves
        (as from ``u = edge``) instead of sticking in the flat tail.
    """

    width: float = 20.0
    width_dtod: float = 0.2
    edge: float = 0.05

    def validate(self):
        super().validate()
        self._check_number("width", lo=0.0, lo_open=True)
        self._check_number("width_dtod", lo=0.0)
        self._check_number("edge", lo=0.0, hi=0.49, lo_open=True)


def sample_width(dev, gen, state, shape):
    """Device-to-device spread of the transition width (drawn once per element)."""
    width = dev.width * (1 + dev.width_dtod * gen.standard_normal(shape))
    return {"width": np.maximum(width, 0.1 * dev.width)}


def sigmoid_step(params, P, i, j, w, up, states):
    lo = P[SLOT_MIN_BOUND, i, j]
    hi = P[SLOT_MAX_BOUND, i, j]
    span = float(hi) - float(lo)
    if span <= 0.0:
        return clip_to_bounds(P, i, j, w)
    u = (float(w) - float(lo)) / span
    uc = min(max(u, params.edge), 1.0 - params.edge)
    if up:
        gain = P[SLOT_DWMIN_UP, i, j] / params.dw_min
    else:
        gain = -P[SLOT_DWMIN_DOWN, i, j] / params.dw_min
    if params.dw_min_std > 0:
        gain = gain * (1.0 + params.dw_min_std * normal(states, i))
    z = np.log(uc / (1.0 - uc)) + gain / P[SLOT_WIDTH, i, j]
    # the change is applied to w itself, so that a weight in the clamped tail moves the right way
    return clip_to_bounds(P, i, j, w + cast_like((1.0 / (1.0 + np.exp(-z)) - uc) * span, w))


define_device(SigmoidDevice, sigmoid_step, params=("dw_min_std", "dw_min", "edge"),
              hidden=("width",), sample=sample_width,
              # the mean step in the middle of the range, where it is largest
              granularity=lambda dev, dw_min: (dev.w_max - dev.w_min) / (4 * dev.width))

SINGLE_PULSES = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                                 update_management=False, update_bl_management=False)


def pulse_response(device, n_pulses, n_devices=5, seed=0):
    """Weights of ``n_devices`` elements over ``n_pulses`` up then ``n_pulses`` down pulses."""
    tile = AnalogTile(n_devices, 1, SingleRPUConfig(device=device, update=SINGLE_PULSES),
                      seed=seed)
    tile.set_weights(np.full((n_devices, 1), -10.0))  # clipped to each element's min_bound
    trace = [tile.get_weights()[:, 0]]
    for sign in (-1.0, 1.0):  # W -= lr * d x: d < 0 is an up pulse
        for _ in range(n_pulses):
            tile.update(np.ones(1), np.full(n_devices, sign), lr=1.0)
            trace.append(tile.get_weights()[:, 0])
    return np.array(trace)


def plot(trace, n_pulses, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: skipping the plot (pip install matplotlib)")
        return
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(trace)
    ax1.axvline(n_pulses, color="gray", lw=0.5)
    ax1.set(xlabel="pulse number", ylabel="weight", title="SigmoidDevice: up then down pulses")
    steps = np.diff(trace, axis=0)
    ax2.plot(trace[:n_pulses, :], steps[:n_pulses, :], ".", ms=2)
    ax2.plot(trace[n_pulses:-1, :], steps[n_pulses:, :], ".", ms=2)
    ax2.set(xlabel="weight before the pulse", ylabel="step",
            title="step vs weight (up > 0, down < 0)")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


def train(config, epochs, seed=0, n=256, shape=(4, 8), batch=10, lr=0.1):
    """Weight MSE after learning a linear map ``y = W x`` on one tile, per epoch."""
    rng = np.random.default_rng(seed)
    w_true = rng.uniform(-0.3, 0.3, shape)
    x = rng.uniform(-1, 1, (n, shape[1]))
    y = x @ w_true.T
    tile = AnalogTile(*shape, config, seed=seed)
    tile.set_weights(np.zeros(shape))
    errors = [float(np.mean((tile.get_weights() - w_true) ** 2))]
    for _ in range(epochs):
        for start in range(0, n, batch):
            xb = x[start:start + batch]
            tile.update(xb, tile.forward(xb) - y[start:start + batch], lr=lr)
        errors.append(float(np.mean((tile.get_weights() - w_true) ** 2)))
    return errors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pulses and epochs (CI)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default="sigmoid_response.png", help="PNG of the response")
    args = parser.parse_args()
    n_pulses = 150 if args.quick else 400
    epochs = 3 if args.quick else args.epochs

    device = SigmoidDevice(width=15.0, dw_min_dtod=0.1, w_max_dtod=0.1, w_min_dtod=0.1,
                           dw_min_std=0.1)
    trace = pulse_response(device, n_pulses)
    print(f"SigmoidDevice(width=15, 10% dtod spread, dw_min_std=0.1): {n_pulses} up then "
          f"{n_pulses} down pulses on 5 elements")
    for k in range(0, 2 * n_pulses + 1, n_pulses // 5):
        print(f"  after {k:4d} pulses: " + " ".join(f"{v:+.3f}" for v in trace[k]))
    up = np.diff(trace[:n_pulses + 1], axis=0)
    print(f"  largest up step {up.max():.4f} at weight "
          f"{trace[np.unravel_index(up.argmax(), up.shape)]:+.3f} (middle of the range), "
          f"first up step {up[0].mean():.5f} (slow start)")
    plot(trace, n_pulses, args.out)

    config = UnitCellRPUConfig(device=TransferCompound(
        unit_cell_devices=[SigmoidDevice(), SigmoidDevice()], gamma=0.0,
        transfer_every=1, units_in_mbatch=True, transfer_lr=0.1, scale_transfer_lr=False))
    errors = train(config, epochs)
    print(f"Tiki-taka (TransferCompound of 2 SigmoidDevices), 8 -> 4 linear map, "
          f"{epochs} epochs: weight MSE per epoch")
    print("  " + " ".join(f"{e:.4f}" for e in errors))
    tile = AnalogTile(2, 2, config, seed=0)
    names = [n for n in tile.get_hidden_parameters() if "width" in n]
    print(f"  hidden parameters of the width (one per sub-device): {names}")


if __name__ == "__main__":
    main()
