"""aihwkit issue #302, ported: every hidden weight of a nested Tiki-taka compound is settable.

The compound is a ``TransferCompound`` of two ``ReferenceUnitCell`` s (four SoftBounds devices
a, b, c, d): the weight is ``gamma * (a - b) + (c - d)``. In aihwkit < 0.5 the slow devices
could not be set through the hidden parameters when ``gamma = 0``; rpusim never aliases the
weight with a device, so the weight is always the gamma-weighted combination of its parts.

The script follows the issue's flow: ``params = tile.get_hidden_parameters()``, edit the leaves
a, b, c, d and their decay scales in that dict, ``tile.set_hidden_parameters(params)``. The
dict still holds the intermediate ``hidden_weights_0`` / ``hidden_weights_1`` as read; a stale
copy like this is accepted (the leaves define it), any other value raises. Then it runs two
optimizer steps at learning rate 0 (no update at all, but the post-update decay still acts, as aihwkit's ``AnalogSGD``) and
checks ``weight == gamma * (a' - b') + c' - d'`` with every device decayed toward its reset
value: ``u' = (u - r) * delta_u**2 + r``.

    python examples/issue302.py
"""

import numpy as np

from rpusim import AnalogTile
from rpusim.configs import (ReferenceUnitCell, SoftBoundsDevice, TransferCompound,
                            UnitCellRPUConfig)


def soft_bounds(reset):
    return SoftBoundsDevice(w_max=1.0, w_min=-1.0, w_max_dtod=0.0, w_min_dtod=0.0,
                            lifetime=100.0, lifetime_dtod=0.0, reset=reset, reset_std=0.0)


def run(gamma, reset, dtype=np.float64):
    cell = ReferenceUnitCell([soft_bounds(reset), soft_bounds(reset)])
    config = UnitCellRPUConfig(device=TransferCompound(unit_cell_devices=[cell, cell],
                                                       gamma=gamma))
    tile = AnalogTile(2, 3, config, seed=0, dtype=dtype)
    tile.set_weights(np.zeros((2, 3)))

    rng = np.random.default_rng(302)
    # hidden_weights_i_k: inner device i (0 = updated, 1 = reference) of outer slot k
    parts = {"a": "0_0", "b": "1_0", "c": "0_1", "d": "1_1"}
    values = {p: rng.uniform(-0.5, 0.5, (2, 3)) for p in parts}
    deltas = {"a": 0.95, "b": 0.28, "c": 0.33, "d": 0.12}
    params = tile.get_hidden_parameters()          # get ...
    for p, s in parts.items():                     # ... edit the leaves ...
        params[f"hidden_weights_{s}"] = values[p]
        params[f"decay_scales_{s}"] = np.full((2, 3), deltas[p])
    tile.set_hidden_parameters(params)             # ... set (stale intermediates included)

    a, b, c, d = (values[p] for p in "abcd")
    set_error = np.abs(tile.get_weights() - (gamma * (a - b) + c - d)).max()

    x, grad = np.ones((1, 3)), np.ones((1, 2))
    for _ in range(2):  # what AnalogSGD(lr=0).step() does: no update, then post_update_step
        tile.update(x, grad, lr=0.0)
        tile.post_update_step()
    a, b, c, d = ((values[p] - reset) * deltas[p] ** 2 + reset for p in "abcd")
    expected = gamma * (a - b) + c - d
    error = np.abs(tile.get_weights() - expected).max()
    return set_error, error, tile.get_weights(), expected


def main():
    print("gamma  reset  dtype    |set error|   |error after 2 steps|")
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-6)):
        for gamma in (0.2, 0.0):
            for reset in (0.0, 0.3, -0.3):
                set_error, error, _, _ = run(gamma, reset, dtype)
                print(f"{gamma:5.1f} {reset:6.1f}  {np.dtype(dtype).name:8s} {set_error:12.2e}"
                      f"   {error:12.2e}")
                assert set_error <= tol and error <= tol
    _, _, weight, expected = run(0.0, 0.3)
    print("weight after two lr=0 steps (gamma=0, reset=0.3):\n", weight.round(6))
    print("gamma*(a'-b') + c'-d':\n", expected.round(6))


if __name__ == "__main__":
    main()
