"""The programmed state of an inference tile: target, programmed weights, drift coefficients,
drift-compensation baseline and alpha (spec inference.md §2 and §9).

The tile owns one :class:`InferenceState` when its config is an ``InferenceRPUConfig``. The
state asks the config's noise model for programmed and drifted weights and its drift
compensation for alpha; it knows nothing of the physics. Everything here is plain arrays, so
it persists exactly (:meth:`as_dict` / :meth:`load`).

Where aihwkit 1.2.0 leaves the state inconsistent (spec §13, item 3), rpusim defines:

* ``set_weights`` starts a new target: it clears the programming (programmed weights, drift
  coefficients, baseline) and resets alpha to 1, so a following ``drift_weights`` programs the
  new weights first (aihwkit would drift the old programming);
* ``program_weights`` resets alpha to 1: the weights are then at ``t = 0``, where the
  compensation's baseline is taken (aihwkit keeps the alpha of an earlier drift).
"""

from __future__ import annotations

import numpy as np

__all__ = ["InferenceState"]


def _call_generator(tile_rng) -> np.random.Generator:
    """A generator for one call of a noise model, seeded by one key of the tile's stream."""
    return np.random.Generator(np.random.PCG64(int(tile_rng.key())))


class InferenceState:
    """Programming and drift bookkeeping of one tile.

    Parameters
    ----------
    config : InferenceRPUConfig
        The tile's (validated) config: ``noise_model`` and ``drift_compensation`` are read.
    shape : tuple of int
        ``(out_size, in_size)``.
    dtype : numpy dtype
        The tile dtype.
    """

    def __init__(self, config, shape: tuple[int, int], dtype):
        self.config = config
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self.reference: np.ndarray | None = None
        self.programmed: np.ndarray | None = None
        self.drift_coefficients: list | None = None
        self.baseline: np.ndarray | None = None
        self.alpha = np.ones((), np.float64)

    @property
    def compensates(self) -> bool:
        return self.config.drift_compensation is not None

    def target(self, w: np.ndarray) -> np.ndarray:
        """The weights the next programming programs: the kept reference, else ``w``."""
        return w if self.reference is None else self.reference

    def new_target(self) -> None:
        """``set_weights``: forget the target and the programming (module notes)."""
        self.reference = None
        self.programmed = None
        self.drift_coefficients = None
        self.baseline = None
        self.alpha = np.ones((), np.float64)

    # -- programming and drift ------------------------------------------------------------------
    def program(self, w: np.ndarray, tile_rng, readout) -> np.ndarray:
        """Program the target; return the programmed weights (the caller stores them as W).

        ``readout(W)`` is the test-mode forward of the compensation's readout inputs.
        """
        # the noise models never write into their inputs: one copy keeps the target apart from W
        reference = np.array(self.target(w), copy=True)
        programmed, coefficients = self.config.noise_model.apply_programming_noise(
            reference, _call_generator(tile_rng))
        programmed = self._checked(programmed, "apply_programming_noise")
        if not isinstance(coefficients, (list, tuple)):
            raise TypeError(f"{type(self.config.noise_model).__name__}.apply_programming_noise "
                            f"must return (weights, list of drift coefficients), got "
                            f"{type(coefficients).__name__}")
        coefficients = [None if c is None else np.array(c, copy=True) for c in coefficients]
        baseline = self._readout(readout, programmed) if self.compensates else None
        self.reference, self.programmed = reference, programmed
        self.drift_coefficients, self.baseline = coefficients, baseline
        self.alpha = np.ones((), np.float64)
        return programmed

    def drift(self, w: np.ndarray, t_inference: float, tile_rng, readout) -> np.ndarray:
        """Drift the programmed weights to ``t_inference`` seconds after programming (from
        the programmed weights every time; ``w`` is programmed first if it never was);
        return them (the caller stores them as W)."""
        if self.programmed is None:
            self.program(w, tile_rng, readout)
        drifted = self.config.noise_model.apply_drift_noise(
            self.programmed, list(self.drift_coefficients), t_inference,
            _call_generator(tile_rng))
        drifted = self._checked(drifted, "apply_drift_noise")
        if self.compensates:
            alpha = self.config.drift_compensation.apply(readout(drifted), self.baseline)
            self.alpha = self._checked_alpha(alpha)
        return drifted

    def _readout(self, readout, w: np.ndarray) -> np.ndarray:
        value = np.asarray(self.config.drift_compensation.readout(readout(w)), np.float64)
        if not np.isfinite(value).all() or np.any(value <= 0):
            raise ValueError(f"drift compensation readout must be finite and > 0, got {value}")
        return value

    def _checked(self, w, method: str) -> np.ndarray:
        arr = np.asarray(w)
        if arr.shape != self.shape or arr.dtype.kind not in "iuf":
            raise ValueError(f"{type(self.config.noise_model).__name__}.{method} must return "
                             f"real weights of shape {self.shape}, got {arr.dtype} {arr.shape}")
        if not np.isfinite(arr).all():
            raise ValueError(f"{type(self.config.noise_model).__name__}.{method} returned "
                             "NaN or inf weights; the tile is unchanged")
        return np.ascontiguousarray(arr, dtype=self.dtype)

    def _checked_alpha(self, alpha) -> np.ndarray:
        arr = np.asarray(alpha, np.float64)
        if arr.shape not in ((), (self.shape[0],)) or not np.isfinite(arr).all():
            raise ValueError(f"drift compensation alpha must be a finite scalar or one value "
                             f"per output ({self.shape[0]}), got {arr!r:.200}")
        return arr

    def scale_outputs(self, Y: np.ndarray) -> np.ndarray:
        """Test-mode outputs times alpha (nothing without compensation)."""
        if not self.compensates:
            return Y
        return Y * self.alpha.astype(Y.dtype)

    def snapshot(self) -> tuple:
        """The state as it is now, to :meth:`restore` after a failed call (the arrays are
        replaced, never written into, so references suffice)."""
        return (self.reference, self.programmed, self.drift_coefficients, self.baseline,
                self.alpha)

    def restore(self, snapshot: tuple) -> None:
        (self.reference, self.programmed, self.drift_coefficients, self.baseline,
         self.alpha) = snapshot

    # -- persistence ------------------------------------------------------------------------------
    def as_dict(self) -> dict[str, np.ndarray]:
        """Flat ``str -> array`` state (copies); absent entries are ``None`` attributes."""
        out: dict[str, np.ndarray] = {"alpha": self.alpha.copy()}
        for key in ("reference", "programmed", "baseline"):
            value = getattr(self, key)
            if value is not None:
                out[key] = np.array(value, copy=True)
        if self.drift_coefficients is not None:
            out["n_slices"] = np.array(len(self.drift_coefficients))
            for j, c in enumerate(self.drift_coefficients):
                if c is not None:
                    out[f"drift_coefficients/{j}"] = np.array(c, copy=True)
        return out

    def load(self, state: dict) -> None:
        """Restore :meth:`as_dict` output; raises ``ValueError`` on a state that does not fit
        the tile (nothing is changed then)."""
        known = {"alpha", "reference", "programmed", "baseline", "n_slices"}
        unknown = [k for k in state if k not in known and not k.startswith("drift_coefficients/")]
        if unknown:
            raise ValueError(f"unknown inference state entries {unknown[:10]}")
        weights = {}
        for key in ("reference", "programmed"):
            if key in state:
                arr = np.asarray(state[key])
                if arr.shape != self.shape or arr.dtype != self.dtype:
                    raise ValueError(f"inference state {key!r} must be {self.dtype} of shape "
                                     f"{self.shape}, got {arr.dtype} {arr.shape}")
                weights[key] = arr.copy()
        alpha = self._checked_alpha(state.get("alpha", 1.0))
        baseline = None if "baseline" not in state else np.asarray(state["baseline"], np.float64)
        coefficients = None
        if "n_slices" in state:
            n = int(np.asarray(state["n_slices"]))
            coefficients = [None] * n
            for key, value in state.items():
                if key.startswith("drift_coefficients/"):
                    j = int(key.split("/", 1)[1])
                    if not 0 <= j < n:
                        raise ValueError(f"inference state {key!r} beyond n_slices {n}")
                    coefficients[j] = np.array(value, copy=True)
        if ("programmed" in weights) != (coefficients is not None):
            raise ValueError("inference state needs both 'programmed' and 'n_slices' or neither")
        self.reference = weights.get("reference")
        self.programmed = weights.get("programmed")
        self.drift_coefficients = coefficients
        self.baseline = baseline
        self.alpha = alpha
