"""Pulse-response curves of every device model (or preset device): N up, then N down pulses.

Each model gets a small tile (one column of ``--devices`` elements, so the curves show the
device-to-device spread) driven one pulse at a time (DETERMINISTIC_IMPLICIT, bit length 1,
no update management), starting from the lower bound; the weight after every pulse is plotted.
With ``--presets`` it draws the preset devices of :mod:`rpusim.presets` instead (the picture
of aihwkit's example 10, with its pulse counts), each with its own values and noise.

Usage::

    python scripts/pulse_response.py [--presets] [--pulses N] [--devices K] [--no-ctoc]
                                     [--seed S] [--out pulse_response.png]

Needs matplotlib (``pip install matplotlib``, or the ``plot`` extra of rpusim).
"""

from __future__ import annotations

import argparse
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from rpusim import AnalogTile  # noqa: E402
from rpusim import presets  # noqa: E402
from rpusim.configs import (ConstantStepDevice, ExpStepDevice, LinearStepDevice,  # noqa: E402
                            PiecewiseStepDevice, PowStepDevice, PowStepReferenceDevice,
                            PulseType, SingleRPUConfig, SoftBoundsDevice, SoftBoundsPmaxDevice,
                            SoftBoundsReferenceDevice, UpdateParameters)

# Settings that make each model's shape visible within a few hundred pulses.
MODELS = {
    "ConstantStep": ConstantStepDevice(dw_min=0.01),
    "LinearStep (gamma 0.6)": LinearStepDevice(dw_min=0.01, gamma_up=0.6, gamma_down=0.6),
    "SoftBounds": SoftBoundsDevice(dw_min=0.01),
    "SoftBoundsPmax (p_max 150)": SoftBoundsPmaxDevice(p_max=150, alpha=0.01),
    "SoftBoundsReference (sym. point)": SoftBoundsReferenceDevice(
        dw_min=0.01, up_down=0.3, subtract_symmetry_point=True),
    "ExpStep": ExpStepDevice(dw_min=0.01),
    "PowStep (gamma 2)": PowStepDevice(dw_min=0.02, pow_gamma=2.0),
    "PowStepReference (gamma 0.5)": PowStepReferenceDevice(dw_min=0.01, pow_gamma=0.5),
    "PiecewiseStep": PiecewiseStepDevice(dw_min=0.01, piecewise_up=[1.6, 1.2, 0.8, 0.5, 0.2],
                                         piecewise_down=[0.2, 0.6, 1.0, 1.2, 1.4]),
}

# Preset devices and the pulse counts of aihwkit's example 10 (the others: enough to cross
# the range twice over, about 1.5 (w_max - w_min) / dw_min, rounded).
PRESETS = {
    "IdealizedPresetDevice": (presets.IdealizedPresetDevice(), 10000),
    "GokmenVlasovPresetDevice": (presets.GokmenVlasovPresetDevice(), 2000),
    "ReRamESPresetDevice": (presets.ReRamESPresetDevice(), 1000),
    "ReRamSBPresetDevice": (presets.ReRamSBPresetDevice(), 1000),
    "ReRamArrayOMPresetDevice": (presets.ReRamArrayOMPresetDevice(), 50),
    "ReRamArrayHfO2PresetDevice": (presets.ReRamArrayHfO2PresetDevice(), 20),
    "CapacitorPresetDevice": (presets.CapacitorPresetDevice(), 400),
    "EcRamPresetDevice": (presets.EcRamPresetDevice(), 1000),
    "EcRamMOPresetDevice": (presets.EcRamMOPresetDevice(), 8000),
    "PCMPresetDevice": (presets.PCMPresetDevice(), 300),
    "PCMPresetUnitCell (pair, refresh)": (presets.PCMPresetUnitCell(), 80),
}

SINGLE_PULSES = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                                 update_management=False, update_bl_management=False)


def pulse_response(device, n_pulses: int, n_devices: int = 4, seed: int = 0) -> np.ndarray:
    """Weights of ``n_devices`` elements over ``n_pulses`` up then ``n_pulses`` down pulses.

    Returns an array of shape ``(2 * n_pulses + 1, n_devices)``: the start (each element's
    lower bound) and the weight after every pulse.
    """
    tile = AnalogTile(n_devices, 1, SingleRPUConfig(device=device, update=SINGLE_PULSES),
                      seed=seed)
    tile.set_weights(np.full((n_devices, 1), -1e3))   # clipped to each element's lower bound
    trace = [tile.get_weights()[:, 0]]
    for direction in (-1.0, 1.0):                     # d < 0 with x > 0: an up pulse
        for _ in range(n_pulses):
            tile.update([1.0], np.full(n_devices, direction), lr=1.0)
            trace.append(tile.get_weights()[:, 0])
    return np.array(trace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", action="store_true",
                        help="draw the preset devices of rpusim.presets")
    parser.add_argument("--pulses", type=int, default=None,
                        help="up pulses, then as many down (default: 250; with --presets each "
                             "device's own count)")
    parser.add_argument("--devices", type=int, default=4, help="elements per model")
    parser.add_argument("--no-ctoc", action="store_true", help="turn cycle-to-cycle noise off")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pulse_response.png", help="PNG file to write")
    args = parser.parse_args(argv)
    if (args.pulses is not None and args.pulses < 1) or args.devices < 1:
        parser.error("--pulses and --devices must be >= 1")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("pulse_response.py needs matplotlib to draw the curves: "
              "pip install matplotlib (or pip install rpusim[plot])", file=sys.stderr)
        return 1

    if args.presets:
        panels = {name: (device, args.pulses or n) for name, (device, n) in PRESETS.items()}
    else:
        panels = {name: (device, args.pulses or 250) for name, device in MODELS.items()}
    rows = (len(panels) + 2) // 3
    fig, axes = plt.subplots(rows, 3, figsize=(13, 3.3 * rows))
    for ax in axes.ravel()[len(panels):]:
        ax.set_visible(False)
    for ax, (name, (device, n_pulses)) in zip(axes.ravel(), panels.items()):
        if args.no_ctoc:
            for leaf in getattr(device, "unit_cell_devices", [device]):
                leaf.dw_min_std = 0.0
        trace = pulse_response(device, n_pulses, args.devices, args.seed)
        ax.plot(np.arange(2 * n_pulses + 1), trace, lw=1)
        ax.axvline(n_pulses, color="0.6", ls=":", lw=1)
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
        ax.set_xlabel("pulse number (up, then down)")
    for ax in axes[:, 0]:
        ax.set_ylabel("weight")
    noise = "no ctoc noise" if args.no_ctoc else "with ctoc noise"
    what = "preset devices" if args.presets else "device models"
    counts = f"{args.pulses} up then {args.pulses} down" if args.pulses else "N up then N down"
    fig.suptitle(f"rpusim pulse response of the {what}: {counts} pulses, "
                 f"{args.devices} devices each ({noise})")
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
