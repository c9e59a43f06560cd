"""Tiny experiments for the sweep tests, importable by Dask workers (``tests/`` on their path).

Their results depend only on the parameters and the seed, as a sweep's experiment must.
"""

import os
import time

import numpy as np

from rpusim.sweep import declare_experiment


@declare_experiment(parameters={"x": 0.0, "scale": 0.1, "sleep": 0.0, "fail_at": 0.0},
                    metric="loss")
def noisy_quadratic(params: dict, seed: int) -> dict:
    """``loss = (x - 1)^2 + scale * noise``, the noise drawn from ``seed`` alone (declared
    parameters: the sweep checks their names and kinds).

    ``sleep`` seconds of waiting stand for a run's work; ``fail_at`` makes the point whose ``x``
    equals it raise. A process with ``RPUSIM_TEST_STALL`` in its environment never finishes a
    run (a worker that is certainly busy when the fault test kills it).
    """
    time.sleep(params.get("sleep", 0.0))
    if os.environ.get("RPUSIM_TEST_STALL"):
        time.sleep(600)
    if params.get("fail_at") is not None and params["x"] == params["fail_at"]:
        raise RuntimeError(f"diverged at x={params['x']}")
    noise = np.random.default_rng(seed).standard_normal()
    return {"loss": (params["x"] - 1.0) ** 2 + params.get("scale", 0.1) * noise,
            "noise": noise}


def undeclared(params: dict, seed: int) -> dict:
    """A function without declared parameters: whatever it gets, it returns."""
    return {"value": float(params.get("x", 0.0)) + seed}
