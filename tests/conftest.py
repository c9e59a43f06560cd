"""Test configuration.

Numba's disk cache is keyed by the source file of each jitted function only: an engine compiled
against an older device step would be reused after that step changed. The cache directory is
therefore keyed by a hash of the package sources, set before numba is first imported.
"""

import hashlib
import os
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[1]
if "NUMBA_CACHE_DIR" not in os.environ:
    digest = hashlib.sha1()
    for path in sorted((_ROOT / "rpusim").rglob("*.py")):
        digest.update(path.read_bytes())
    os.environ["NUMBA_CACHE_DIR"] = str(_ROOT / ".numba_cache" / digest.hexdigest()[:12])

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("rpusim", deadline=None, max_examples=30,
                          suppress_health_check=[HealthCheck.too_slow])
# CI (.ci/run) draws the same examples on every run, so that its verdict is the code's; a
# development run explores new ones each time (it found the subnormal remap case of
# test_hwa_kernels.py)
settings.register_profile("ci", parent=settings.get_profile("rpusim"), derandomize=True)
settings.load_profile(os.environ.get("RPUSIM_HYPOTHESIS_PROFILE", "rpusim"))
