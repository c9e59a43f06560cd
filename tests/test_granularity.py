"""Weight granularities computed as aihwkit 1.2.0 computes them: in the tile dtype, with C's
single-precision ``powf``/``expf``, compound means summed in the dtype.

On deterministic pulses a granularity one ulp off moves a pulse count across a rounding tie
(``x = 0.5`` of ``x_max = 1`` at BL 1): a whole pulse gained or lost. The scenarios are the
ties differential fuzzing against aihwkit found; the expected weights are aihwkit 1.2.0's
(its CPU build, float32): before the fix rpusim gave a pulse more or less in each.
"""

import numpy as np
import pytest

import rpusim
from rpusim import configs as R
from rpusim.devices.cmath import expf, powf

NO_DTOD = dict(dw_min_std=0.0, dw_min_dtod=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
               w_min_dtod=0.0, reset_std=0.0)


def _update(config_class, device, out, inp, x, d, lr, bl):
    upd = R.UpdateParameters(pulse_type=R.PulseType.DETERMINISTIC_IMPLICIT, desired_bl=bl,
                             update_management=True, update_bl_management=True)
    config = config_class(device=device, update=upd, forward=R.IOParameters(is_perfect=True),
                          backward=R.IOParameters(is_perfect=True))
    tile = rpusim.AnalogTile(out, inp, config, seed=0)
    tile.set_weights(np.zeros((out, inp), np.float32))
    tile.set_learning_rate(lr)
    tile.update(np.array(x, np.float32), np.array(d, np.float32))
    return tile


POW = dict(dw_min=0.01, w_max=1.0, w_min=-1.0, pow_gamma=0.376, pow_gamma_dtod=0.0, **NO_DTOD)
SCENARIOS = {
    "PowStep": (R.SingleRPUConfig, lambda: R.PowStepDevice(**POW), 1, 2, [[1.0, 0.5]], [[1.0]],
                0.1, 1, [[-0.0077057113, 0.0]]),
    "PowStepReference": (R.SingleRPUConfig, lambda: R.PowStepReferenceDevice(**POW), 1, 2,
                         [[1.0, 0.5]], [[1.0]], 0.1, 1, [[-0.0077057113, 0.0]]),
    "ExpStep": (R.SingleRPUConfig, lambda: R.ExpStepDevice(
        dw_min=0.01, w_max=1.0, w_min=-1.0, A_down=0.16, gamma_down=9.97, b=0.48, **NO_DTOD),
        1, 2, [[1.0, 0.5]], [[1.0]], 0.1, 1, [[-0.0099866, 0.0]]),
    "PiecewiseStep": (R.SingleRPUConfig, lambda: R.PiecewiseStepDevice(
        dw_min=0.01, w_max=1.0, w_min=-1.0, piecewise_up=[1.0, 0.13, 1.0],
        piecewise_down=[1.0, 1.0, 1.0], **NO_DTOD),
        1, 3, [[1.0, 0.5, 0.75]], [[1.0]], 0.1, 1, [[-0.01, -0.01, -0.01]]),
    "VectorUnitCell": (R.UnitCellRPUConfig, lambda: R.VectorUnitCell(unit_cell_devices=[
        R.ConstantStepDevice(dw_min=v, **NO_DTOD) for v in (0.01, 0.001, 0.005)]),
        1, 2, [[1.0, 0.75]], [[-1.0]], 0.3, 2, [[0.01066667, 0.01066667]]),
}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_deterministic_ties_resolve_as_aihwkit(name):
    config_class, device, out, inp, x, d, lr, bl, expected = SCENARIOS[name]
    tile = _update(config_class, device(), out, inp, x, d, lr, bl)
    np.testing.assert_allclose(tile.get_weights(), expected, rtol=1e-5, atol=1e-9)


def test_transfer_compound_tie_resolves_as_aihwkit():
    """aihwkit's fast device (hidden_weights_0) gets a pulse at both inputs."""
    device = R.TransferCompound(
        unit_cell_devices=[R.ConstantStepDevice(dw_min=v, **NO_DTOD) for v in (0.02, 0.005, 0.001)],
        gamma=0.5, transfer_every=1000.0, transfer_forward=R.IOParameters(is_perfect=True),
        transfer_update=R.UpdateParameters(pulse_type=R.PulseType.DETERMINISTIC_IMPLICIT))
    tile = _update(R.UnitCellRPUConfig, device, 1, 2, [[1.0, 0.5]], [[1.0]], 0.01, 2)
    np.testing.assert_allclose(tile.get_hidden_parameters()["hidden_weights_0"],
                               [[-0.02, -0.02]], rtol=1e-6)
    np.testing.assert_allclose(tile.get_weights(), [[-0.005, -0.005]], rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_granularity_formulas_in_the_tile_dtype(dtype):
    """The formulas of aihwkit's ``calcWeightGranularity``, evaluated step by step in the
    dtype here (C's float32 powf/expf in both, as aihwkit calls them)."""
    t = np.dtype(dtype).type
    dev = R.PowStepDevice(dw_min=0.01, pow_gamma=0.376)
    assert dev.granularity(0.01, dtype) == float(t(0.01) * t(powf(0.5, 0.376)))
    dev = R.ExpStepDevice(dw_min=0.01, A_down=0.16, gamma_down=9.97, b=0.48, up_down=0.1)
    scale_down = t(t(-0.1) + t(1)) * t(0.01)
    dw_down = scale_down * max(t(1) - t(0.16) * t(expf(t(9.97) * -t(0.48))), t(0))
    assert dev.granularity(0.01, dtype) == float((dw_down + dw_down) / t(2))
    dev = R.PiecewiseStepDevice(dw_min=0.01, piecewise_up=[1.0, 0.13, 1.0],
                                piecewise_down=[1.0, 1.0, 1.0])
    assert dev.granularity(0.01, dtype) == float(t(0.01) * t(0.13))
    assert R.ConstantStepDevice(dw_min=0.003).granularity(0.003, dtype) == float(t(0.003))
