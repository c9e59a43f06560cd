"""The pulsed update's results stay bit-identical to the recorded fingerprint.

``tests/golden/update_fingerprint.json`` holds one SHA-256 per case of
``scripts/update_fingerprint.py`` (every pulsed device, the four pulse kinds, long trains,
write noise, counters, float64, decay/diffusion, compounds; composite and parallel sizes),
recorded before the third performance round. A change that is meant to be a pure speed-up
must leave every digest as it is; a change of the numerics must prove itself against the
goldens and then re-record the file (``python scripts/update_fingerprint.py --out ...``).
"""

import json
import pathlib
import sys

_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / "scripts"))

import update_fingerprint  # noqa: E402


def test_update_fingerprint_unchanged():
    with open(_ROOT / "tests" / "golden" / "update_fingerprint.json") as fh:
        expected = json.load(fh)
    got = {}
    for name, make, shape, dtype, lr in update_fingerprint._cases():
        config = make()
        if config is not None:
            got[name] = update_fingerprint.digest(config, shape, dtype, lr)
    assert got.keys() == expected.keys()
    changed = [name for name in expected if got[name] != expected[name]]
    assert not changed, f"results changed for {changed}"
