"""Golden fixtures of aihwkit 1.2.0's time-dependent IR drop (``TorchInferenceRPUConfigIRDropT``).

Run with the aihwkit oracle environment; rpusim is not needed::

    /tmp/aihwkit-venv/bin/python scripts/make_golden_irdrop.py [--out tests/golden/irdrop]

Each scenario builds an aihwkit ``AnalogLinear`` without bias, weight scaling or drift
compensation, on a noise-free inference configuration (no programming, drift or read noise, no
output noise, no output bound or ADC resolution), sets its weights and records the test-mode
forward of a fixed input batch. The physical tile height (``mapping.max_input_size``) is kept
small, so that aihwkit's pure-torch Thevenin reduction (its C++ extension is not built) fits in
memory. Every number is deterministic. One ``<name>.npz`` per scenario with ``weights`` (out,
in), ``x`` (batch, in), ``y`` (batch, out) and ``config``: a JSON dict of the forward fields
and the converter, read by ``tests/test_aihwkit_examples_api.py``.
"""

from __future__ import annotations

import argparse
import json
import pathlib

import numpy as np
import torch
from aihwkit.inference import PCMLikeNoiseModel
from aihwkit.inference.converter.conductance import (DualPairConductanceConverter,
                                                     SinglePairConductanceConverter)
from aihwkit.nn import AnalogLinear
from aihwkit.simulator.configs import TorchInferenceRPUConfigIRDropT
from aihwkit.simulator.parameters.enums import AnalogMVType, BoundManagementType

ROOT = pathlib.Path(__file__).resolve().parents[1]

BASE = dict(ir_drop=1.0, ir_drop_segments=8, ir_drop_v_read=0.4, nm_thres=1.0,
            inp_res=2 ** 7 - 2, out_bound=-1.0, out_res=-1.0, out_noise=0.0)
SCENARIOS = {
    "one_pass": dict(),
    "one_pass_no_adc_quantization": dict(adc_quantization=False),
    "one_pass_integration_sum": dict(ir_drop_integration_sum=True),
    "one_pass_strong_drop": dict(ir_drop=5.0, ir_drop_rs=0.5),
    "one_pass_padded_rows": dict(n_in=40),
    "one_pass_half_time_resolution": dict(ir_drop_time_step_resolution_scale=0.5),
    "split_mode": dict(mv_type="SPLIT_MODE", split_mode_bit_shift=3),
    "bit_wise": dict(mv_type="BIT_WISE"),
    "dual_pair": dict(converter="dual"),
    "no_ir_drop": dict(ir_drop=0.0),
}
PHYS = 64


def scenario(name: str, spec: dict, seed: int) -> dict:
    spec = dict(spec)
    n_in = spec.pop("n_in", PHYS)
    n_out = spec.pop("n_out", 12)
    converter_kind = spec.pop("converter", "single")
    fields = dict(BASE, **spec)
    config = TorchInferenceRPUConfigIRDropT()
    converter = (DualPairConductanceConverter(f_lst=[1.0, 3.0], g_min=0.1, g_max=15.0)
                 if converter_kind == "dual" else
                 SinglePairConductanceConverter(g_min=0.1, g_max=15.0))
    config.noise_model = PCMLikeNoiseModel(prog_noise_scale=0.0, read_noise_scale=0.0,
                                           drift_scale=0.0, g_converter=converter)
    config.drift_compensation = None
    config.mapping.max_input_size = PHYS
    config.mapping.weight_scaling_omega = 0.0
    config.forward.bound_management = BoundManagementType.NONE
    for key, value in fields.items():
        if key == "mv_type":
            value = getattr(AnalogMVType, value)
        setattr(config.forward, key, value)
    gen = torch.Generator().manual_seed(seed)
    weights = torch.clamp(torch.randn(n_out, n_in, generator=gen) / 3, -1, 1)
    x = torch.clamp(torch.randn(5, n_in, generator=gen) / 3, -1, 1)
    layer = AnalogLinear(n_in, n_out, bias=False, rpu_config=config)
    layer.set_weights(weights)
    layer.eval()
    with torch.no_grad():
        y = layer(x)
    record = dict(fields, converter=converter_kind, phys_input_size=PHYS, g_min=0.1, g_max=15.0)
    return {"weights": weights.numpy(), "x": x.numpy(), "y": y.numpy(),
            "config": np.array(json.dumps(record))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "tests" / "golden" / "irdrop")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for k, (name, spec) in enumerate(SCENARIOS.items()):
        np.savez(args.out / f"{name}.npz", **scenario(name, spec, seed=k))
        print("wrote", args.out / f"{name}.npz")


if __name__ == "__main__":
    main()
