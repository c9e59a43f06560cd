"""Base classes of the inference models: what a noise model, a conductance converter or a drift
compensation written in Python has to provide to work like the built-ins.

All three are config dataclasses (:class:`~rpusim.configs._base.ConfigBase`): they are data held by
an :class:`~rpusim.configs.InferenceRPUConfig`, print readably, compare with ``==`` and travel
through ``tile.save``/``load``. A subclass is registered by name when it is defined, so a saved
tile that uses it loads again once the defining module is imported.

Random draws: every method that draws takes ``rng``, a :class:`numpy.random.Generator` that the
tile seeds from its own stream for each call. Drawing only from it keeps a user model
reproducible (same tile seed, same calls => same bits). The built-in models pass
:func:`kernel_key` of it to their numba kernels. Called directly, ``rng`` may be left out
(fresh entropy), and a per-slice method written with aihwkit's signature (no ``rng``) is
called without it: such a model works, but its draws do not follow the tile's seed.
"""

from __future__ import annotations

import abc
import functools
import inspect
from dataclasses import dataclass

import numpy as np

from rpusim.configs._base import ConfigBase

__all__ = ["BaseConductanceConverter", "BaseNoiseModel", "BaseDriftCompensation", "kernel_key"]


def kernel_key(rng: np.random.Generator | None) -> np.uint64:
    """A 64-bit kernel key (one raw output of ``rng``; fresh entropy for ``None``) for the
    counter streams of a kernel."""
    if rng is None:
        rng = np.random.default_rng()
    return np.uint64(rng.bit_generator.random_raw())


@functools.lru_cache(maxsize=None)
def _takes_rng(function) -> bool:
    try:
        parameters = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return True
    return "rng" in parameters or any(p.kind == p.VAR_KEYWORD for p in parameters.values())


def _call(method, *args, rng):
    """``method(*args, rng=rng)``, or without ``rng`` for a method written without it."""
    function = getattr(method, "__func__", method)
    return method(*args, rng=rng) if _takes_rng(function) else method(*args)


class BaseConductanceConverter(ConfigBase, abc.ABC):
    """Maps a weight matrix to conductance slices (in uS) and back.

    Subclasses are dataclasses that implement :meth:`convert_to_conductances` and
    :meth:`convert_back_to_weights`; they are never given random numbers.
    """

    @abc.abstractmethod
    def convert_to_conductances(self, weights: np.ndarray) -> tuple[list[np.ndarray], dict]:
        """Return the conductance slices of ``weights`` and the parameters of the mapping.

        Parameters
        ----------
        weights : ndarray, shape (out, in)

        Returns
        -------
        slices : list of ndarray, each (out, in), in uS
        params : dict
            Whatever :meth:`convert_back_to_weights` needs (e.g. the scale ``scale_ratio``).
        """

    @abc.abstractmethod
    def convert_back_to_weights(self, conductances: list[np.ndarray], params: dict
                                ) -> np.ndarray:
        """Return the weights that ``conductances`` represent under the mapping ``params``."""


class BaseNoiseModel(ConfigBase, abc.ABC):
    """A phenomenological model of programming noise, drift and read noise.

    The tile calls :meth:`apply_programming_noise` once per ``program_weights()`` and
    :meth:`apply_drift_noise` once per ``drift_weights(t_inference)``. Both convert the weights
    to conductance slices with ``g_converter`` and call the per-slice methods a subclass
    defines:

    * ``apply_programming_noise_to_conductance(g_target, rng) -> g_prog``
    * ``generate_drift_coefficients(g_target, rng) -> array or None`` (default ``None``)
    * ``apply_drift_noise_to_conductance(g_prog, drift_coefficients, t_inference, rng)
      -> g_final``

    with the argument order of aihwkit's methods plus the ``rng`` each call gets. None of
    them may write into its input arrays (the tile keeps them). Subclasses are dataclasses
    with a ``g_converter`` field.
    """

    g_converter: BaseConductanceConverter

    # -- whole matrices: what the tile calls --------------------------------------------------
    def apply_programming_noise(self, weights: np.ndarray,
                                rng: np.random.Generator | None = None
                                ) -> tuple[np.ndarray, list]:
        """Program ``weights``: return the programmed weights and the drift coefficients of
        each conductance slice (drawn from the target conductances)."""
        targets, params = self.g_converter.convert_to_conductances(weights)
        programmed, coefficients = [], []
        for g_target in targets:
            programmed.append(_call(self.apply_programming_noise_to_conductance, g_target,
                                    rng=rng))
            coefficients.append(_call(self.generate_drift_coefficients, g_target, rng=rng))
        return self.g_converter.convert_back_to_weights(programmed, params), coefficients

    def apply_drift_noise(self, weights: np.ndarray, drift_coefficients: list,
                          t_inference: float, rng: np.random.Generator | None = None
                          ) -> np.ndarray:
        """Drift and read noise at ``t_inference`` seconds after programming: the programmed
        ``weights`` are converted again (their own scale), slice ``j`` drifts with
        ``drift_coefficients[j]``, and the result is converted back."""
        slices, params = self.g_converter.convert_to_conductances(weights)
        if len(slices) != len(drift_coefficients):
            raise ValueError(f"{type(self).__name__}: {len(drift_coefficients)} sets of drift "
                             f"coefficients for {len(slices)} conductance slices")
        final = [_call(self.apply_drift_noise_to_conductance, g, nu, t_inference, rng=rng)
                 for g, nu in zip(slices, drift_coefficients)]
        return self.g_converter.convert_back_to_weights(final, params)

    # -- per slice: what a subclass defines ---------------------------------------------------
    @abc.abstractmethod
    def apply_programming_noise_to_conductance(self, g_target: np.ndarray,
                                               rng: np.random.Generator | None = None
                                               ) -> np.ndarray:
        """Return programmed conductances for the target conductances ``g_target`` (uS)."""

    def generate_drift_coefficients(self, g_target: np.ndarray,
                                    rng: np.random.Generator | None = None):
        """Drift coefficients of one slice, drawn at programming from the target (default:
        none)."""
        return None

    @abc.abstractmethod
    def apply_drift_noise_to_conductance(self, g_prog: np.ndarray, drift_coefficients,
                                         t_inference: float,
                                         rng: np.random.Generator | None = None
                                         ) -> np.ndarray:
        """Return the conductances read ``t_inference`` seconds after programming."""


@dataclass
class BaseDriftCompensation(ConfigBase, abc.ABC):
    """A drift compensation: a scalar readout of the tile's test-mode outputs for a fixed input.

    The tile feeds :meth:`get_readout_tensor` through its forward IO model (test mode, no
    output scales, no alpha) right after programming (the baseline) and after each drift; the
    test-mode outputs are then multiplied by ``alpha = baseline / current`` from :meth:`apply`.
    A subclass defines :meth:`get_readout_tensor` and :meth:`readout`.
    """

    @abc.abstractmethod
    def get_readout_tensor(self, in_size: int, dtype) -> np.ndarray:
        """The inputs (batch, in_size) of the readout."""

    @abc.abstractmethod
    def readout(self, out_tensor: np.ndarray):
        """Reduce the readout's outputs (batch, out) to the compared value."""

    def apply(self, forward_output: np.ndarray, baseline):
        """alpha: the baseline over the readout of ``forward_output``."""
        return baseline / self.readout(forward_output)
