"""A matrix stored on an analog tile, for linear algebra (aihwkit's ``aihwkit.linalg``).

``M @ x`` is the tile's forward MVM, ``d @ M`` its backward (transposed) MVM and ``M.ger(x, d,
alpha)`` the pulsed rank-one update ``M += alpha * d.T @ x``, each with the tile's full IO and
device model. NumPy in, NumPy out; torch tensors in, tensors out.
"""

from __future__ import annotations

import numpy as np

from rpusim.tile import AnalogTile
from rpusim.tiles import program_by_pulses

__all__ = ["AnalogMatrix"]


def _check_device(kwargs: dict) -> None:
    """Accept aihwkit's ``device=`` keyword for the CPU; refuse anything else."""
    unknown = set(kwargs) - {"device"}
    if unknown:
        raise TypeError(f"AnalogMatrix got unexpected keyword arguments {sorted(unknown)}")
    device = kwargs.get("device")
    if device is not None and str(getattr(device, "type", device)).split(":")[0] != "cpu":
        raise ValueError(f"rpusim simulates on the CPU only; cannot place the matrix on "
                         f"{device!r}")


def _as_numpy(value) -> np.ndarray:
    if hasattr(value, "detach") and not isinstance(value, np.ndarray):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class AnalogMatrix:
    """An ``n x m`` matrix held by an :class:`~rpusim.AnalogTile`.

    Parameters
    ----------
    matrix : array_like or torch.Tensor, shape (n, m)
        The values to store.
    rpu_config : RPUConfig
        The tile's configuration (device, IO, update).
    realistic : bool
        ``False`` (default): write the values directly (through the device's bounds, with its
        write noise). ``True``: program them as hardware would, by reading with the forward
        pass and correcting with pulsed updates (:meth:`program`).
    seed : int, optional
        Seed of the tile.
    **to_kwargs
        aihwkit's placement keywords: ``device="cpu"`` (or a CPU ``torch.device``) only.

    Notes
    -----
    As aihwkit's, the products take vectors as rows: ``M @ X`` with ``X`` of shape
    ``(batch, m)`` returns ``(batch, n)`` (each row ``M x``) and ``D @ M`` with ``D`` of shape
    ``(batch, n)`` returns ``(batch, m)`` (each row ``M^T d``). The ``matvec``/``matmat``
    family follows SciPy's ``LinearOperator`` instead (columns), so that
    ``scipy.sparse.linalg.aslinearoperator(M)`` works.
    """

    # NumPy arrays defer to __rmatmul__ (``d @ M`` with ``d`` an ndarray)
    __array_ufunc__ = None

    def __init__(self, matrix, rpu_config, realistic: bool = False, *, seed: int | None = None,
                 **to_kwargs):
        _check_device(to_kwargs)
        values = _as_numpy(matrix)
        if values.ndim != 2:
            raise ValueError(f"matrix must be 2-D (n, m), got shape {values.shape}")
        self.tile = AnalogTile(values.shape[0], values.shape[1], rpu_config, seed=seed)
        self.realistic = bool(realistic)
        if self.realistic:
            self.program(values)
        else:
            self.tile.set_weights(values)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n, m)``."""
        return (self.tile.out_size, self.tile.in_size)

    @property
    def dtype(self) -> np.dtype:
        """The tile's precision."""
        return self.tile.dtype

    def __repr__(self) -> str:
        return f"AnalogMatrix(shape={self.shape}, tile={self.tile!r})"

    # -- products -----------------------------------------------------------------------------
    def __matmul__(self, x):
        """``M @ x``: forward MVM of a vector ``(m,)`` or of rows ``(batch, m)``."""
        return self.tile.forward(x)

    def __rmatmul__(self, d):
        """``d @ M``: backward MVM of a vector ``(n,)`` or of rows ``(batch, n)``."""
        return self.tile.backward(d)

    def matvec(self, x):
        """``M x`` for ``x`` of shape ``(m,)`` or ``(m, 1)`` (SciPy's convention)."""
        y = self.tile.forward(np.ravel(_as_numpy(x)))
        return y.reshape(-1, 1) if np.ndim(x) == 2 else y

    def rmatvec(self, d):
        """``M^T d`` for ``d`` of shape ``(n,)`` or ``(n, 1)``."""
        z = self.tile.backward(np.ravel(_as_numpy(d)))
        return z.reshape(-1, 1) if np.ndim(d) == 2 else z

    def matmat(self, X):
        """``M X`` for ``X`` of shape ``(m, k)`` (columns are the vectors)."""
        return self.tile.forward(_as_numpy(X).T).T

    def rmatmat(self, D):
        """``M^T D`` for ``D`` of shape ``(n, k)``."""
        return self.tile.backward(_as_numpy(D).T).T

    # -- updates ------------------------------------------------------------------------------
    def ger(self, x_matrix, d_matrix, alpha: float = 1.0) -> None:
        """Rank update ``M += alpha * d.T @ x`` by pulses (rows of ``x`` and ``d`` are the
        vector pairs, applied one after another as the tile's update does).

        ``alpha`` becomes the tile's learning rate (as in aihwkit); it must be >= 0.
        """
        self.tile.set_learning_rate(alpha)
        self.tile.update(x_matrix, -_as_numpy(d_matrix))

    def program(self, target, learning_rate: float = 0.1, max_iter: int = 10000,
                tolerance: float = 0.01, w_init: float = 0.01) -> int:
        """Program ``target`` by read-and-correct (:func:`rpusim.tiles.program_by_pulses`).

        Returns
        -------
        int
            The number of update rounds made.
        """
        return program_by_pulses(self.tile, _as_numpy(target), learning_rate, max_iter,
                                 tolerance, w_init)

    # -- placement ----------------------------------------------------------------------------
    def to(self, *args, **kwargs) -> "AnalogMatrix":
        """aihwkit's ``to``: the CPU only (a no-op)."""
        for arg in args:
            _check_device({"device": arg})
        _check_device({k: v for k, v in kwargs.items() if k == "device"})
        return self

    def cpu(self) -> "AnalogMatrix":
        """The matrix itself."""
        return self

    def cuda(self, *_args, **_kwargs) -> "AnalogMatrix":
        """rpusim has no CUDA build: always raises ``ValueError``."""
        raise ValueError("rpusim simulates on the CPU only; AnalogMatrix.cuda() is not "
                         "available")
