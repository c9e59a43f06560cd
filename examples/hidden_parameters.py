"""Read and edit a tile's hidden parameters: the device state behind each weight.

Every per-element quantity of the device model (bounds, step sizes, decay scales, ...) is a
hidden parameter with aihwkit's name, readable and settable; setting one changes the physics of
the very next pulse.

    python examples/hidden_parameters.py
"""

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import ConstantStepDevice, PulseType, SingleRPUConfig, UpdateParameters


def main():
    config = SingleRPUConfig(
        device=ConstantStepDevice(dw_min=0.01, dw_min_std=0.0, lifetime=50.0),
        # deterministic pulses: each up/down pulse count is rint(lr |x| |d| / dw_min)
        update=UpdateParameters(pulse_type=PulseType.DETERMINISTIC_IMPLICIT))
    tile = AnalogTile(2, 3, config, seed=7)

    print("hidden parameters:", tile.get_hidden_parameter_names())
    hidden = tile.get_hidden_parameters()
    print("sampled upper bounds (device-to-device spread):\n", hidden["max_bound"].round(3))

    # make element (0, 0) take 5x larger up steps and cap it at 0.05
    tile.set_weights(np.zeros((2, 3)))
    tile.set_hidden_parameters({
        "dwmin_up": np.where(np.arange(6).reshape(2, 3) == 0, 0.05, hidden["dwmin_up"]),
        "max_bound": np.where(np.arange(6).reshape(2, 3) == 0, 0.05, hidden["max_bound"]),
    })
    tile.update(np.ones(3), -np.ones(2), lr=0.01)  # one up pulse per element
    print("weights after one up pulse:\n", tile.get_weights().round(4))
    tile.update(np.ones(3), -np.ones(2), lr=0.01)
    print("after a second pulse, element (0, 0) sits at its bound 0.05:\n",
          tile.get_weights().round(4))

    # decay toward a per-element reset bias
    tile.set_hidden_parameters({"reset_bias": np.full((2, 3), 0.02)})
    for _ in range(3):
        tile.post_update_step()
    print("after 3 decay steps toward reset bias 0.02 (scale 1 - 1/50):\n",
          tile.get_weights().round(4))


if __name__ == "__main__":
    main()
