"""Device response: how the step of one pulse depends on the weight, for several device models.

Each model drives one tile element pulse by pulse from its lower to its upper bound
(deterministic single pulses, cycle-to-cycle noise off) and reports the step size at weights
-0.5, 0 and 0.5: constant for ConstantStep, shrinking toward the
bound for SoftBounds and LinearStep, exponential for ExpStep. With ``--plot FILE.png`` the curves
are drawn (``python -m rpusim response DEVICE`` does the same for one model with more options).

    python examples/device_response.py [--pulses N] [--plot response.png] [--quick]
"""

import argparse

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import (ConstantStepDevice, ExpStepDevice, LinearStepDevice, PulseType,
                            SingleRPUConfig, SoftBoundsDevice, UpdateParameters)

# dtod and ctoc spread off, so each row shows the model itself; dw_min 0.01 fits a few hundred
# pulses between the bounds (+-0.6 by default)
QUIET = dict(dw_min=0.01, dw_min_std=0.0, dw_min_dtod=0.0, w_max_dtod=0.0, w_min_dtod=0.0,
             up_down_dtod=0.0)
MODELS = {
    "ConstantStepDevice": ConstantStepDevice(**QUIET),
    "SoftBoundsDevice": SoftBoundsDevice(**QUIET),
    "LinearStepDevice": LinearStepDevice(gamma_up=0.6, gamma_down=0.6, gamma_up_dtod=0.0,
                                         gamma_down_dtod=0.0, **QUIET),
    "ExpStepDevice": ExpStepDevice(**QUIET),
}
# one pulse per update call: pulse counts rint(lr |x| |d| / dw_min) capped at desired_bl = 1
ONE_PULSE = UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT, desired_bl=1,
                             update_management=False, update_bl_management=False)


def up_trace(device, n_pulses):
    """Weight of one element from its lower bound over ``n_pulses`` up pulses."""
    tile = AnalogTile(1, 1, SingleRPUConfig(device=device, update=ONE_PULSE), seed=0)
    tile.set_weights([[-10.0]])  # clipped to the lower bound
    trace = [tile.get_weights()[0, 0]]
    for _ in range(n_pulses):
        tile.update([1.0], [-1.0], lr=1.0)  # W -= lr d x with d < 0: one up pulse
        trace.append(tile.get_weights()[0, 0])
    return np.array(trace)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulses", type=int, default=400)
    parser.add_argument("--plot", metavar="FILE.png", help="also draw the curves (matplotlib)")
    parser.add_argument("--quick", action="store_true", help="200 pulses (CI)")
    args = parser.parse_args()
    n = 200 if args.quick else args.pulses
    levels = (-0.5, 0.0, 0.5)
    print(f"{n} up pulses from the lower bound, one element per model, no device spread;")
    print("step of the first pulse that starts at or above each weight level:")
    print(f"{'model':<20} {'start':>7} {'end':>7} "
          + " ".join(f"{f'step @ w={w:+.1f}':>14}" for w in levels))
    traces = {}
    for name, device in MODELS.items():
        trace = traces[name] = up_trace(device, n)
        steps = np.diff(trace)
        cells = []
        for level in levels:
            reached = np.flatnonzero(trace[:-1] >= level)
            cells.append(f"{steps[reached[0]]:14.5f}" if reached.size else f"{'-':>14}")
        print(f"{name:<20} {trace[0]:7.3f} {trace[-1]:7.3f} " + " ".join(cells))
    if args.plot:
        from rpusim.plotting import require_matplotlib
        plt = require_matplotlib()
        fig, ax = plt.subplots(figsize=(6, 4))
        for name, trace in traces.items():
            ax.plot(trace, label=name)
        ax.set_xlabel("up pulses")
        ax.set_ylabel("weight")
        ax.legend()
        fig.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
