"""The Gauss–Newton step of multiple shooting, solved as the banded system it is.

The unknowns are one velocity per kept frame, v_0 … v_{K−1} (each 3N). Gap g's residual is its path's
position miss at the next kept frame, ``w · (x_end(v_g) − x_{g+1})``, and its velocity jump there,
``τ · (v_end(v_g) − v_{g+1})``. Gap g touches only v_g and v_{g+1}, so the normal matrix AᵀA is block
tridiagonal: a band 2·3N − 1 wide, factorised by banded Cholesky (LAPACK ``pbtrf``, with
``scipy.linalg.cho_solve_banded`` for the steps).

A gap's end depends on its own start velocity alone, so each gap's Jacobian can be corrected from the
step it just took (:func:`broyden_update`, Broyden's rank-one update): one linearisation per solve, then a
path per iteration.

Both run on one BLAS thread: the band's blocks are tiny (3N wide), and OpenBLAS's threads cost more than
they share, ruinously when the cores are busy (ethanol, 500 kept frames, two busy cores: 4.4 s per
factorisation on all threads against 6 ms on one).
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
from numpy.lib.stride_tricks import as_strided
from scipy.linalg import cho_solve_banded
from scipy.linalg.lapack import dpbtrf

_controller = None
#: BLAS's thread count is global: solves side by side (threads) take turns at setting and restoring it
_blas_lock = threading.Lock()


@contextmanager
def one_blas_thread():
    """A context with BLAS on one thread (threadpoolctl; the libraries are looked up once: a fresh
    ``threadpool_limits`` walks every loaded library, ~4 ms beside TensorFlow, each call)."""
    global _controller
    with _blas_lock:
        if _controller is None:
            from threadpoolctl import ThreadpoolController
            _controller = ThreadpoolController()
        with _controller.limit(limits=1, user_api="blas"):
            yield


def broyden_update(jacobian, step, change):
    """Each gap's Jacobian (gaps, M, 3N) corrected so that it maps the start-velocity ``step`` it took
    (gaps, 3N, nm/ps) onto the ``change`` of its end it caused (gaps, M): Broyden's rank-one update
    J + (Δe − J Δv) Δvᵀ / |Δv|². Gaps whose velocity did not move keep theirs."""
    norm = np.einsum("gi,gi->g", step, step)
    moved = norm > 1e-24
    if not moved.any():
        return jacobian
    misfit = change - np.einsum("gij,gj->gi", jacobian, step)
    scale = np.where(moved, 1.0 / np.where(moved, norm, 1.0), 0.0)
    return jacobian + misfit[:, :, None] * (step * scale[:, None])[:, None, :]


class ChainNormalEquations:
    """The factorised normal equations of one Gauss–Newton step of multiple shooting.

    Parameters
    ----------
    jx, jv : ndarray, shape (gaps, 3N, 3N)
        Each gap's end position (nm) and end velocity (nm/ps) against its start velocity (ps, 1).
    position_weight : float
        Weight of a missed kept frame (nm) against a velocity jump × gap length (nm).
    gap_ps : float
        Gap length (ps).
    damping : float
        Added to the diagonal, relative to its mean (keeps an ill-decided vibration well-posed).
    """

    def __init__(self, jx, jv, position_weight: float, gap_ps: float, damping: float = 1e-9):
        gaps, n3 = jx.shape[:2]
        self.jx, self.jv, self.weight, self.gap_ps, self.n3 = jx, jv, position_weight, gap_ps, n3
        # LAPACK's upper band storage, band[u + i − j, j] = N[i, j] for j − u <= i <= j (u = 2·3N − 1),
        # Fortran order: block column c holds the block above its diagonal block, then the diagonal block's
        # upper triangle. Written in place into ``columns`` (block column c transposed, behind 3N zeros:
        # columns[c, q, n3 + i] = N[(c − 1)·n3 + i, c·n3 + q], columns[c, q, 2·n3 + i] = N[c·n3 + i, c·n3 + q]),
        # of which the band is a skewed view, band[k, c·n3 + q] = columns[c, q, k + q + 1]
        columns = np.zeros((gaps + 1, n3, 3 * n3))
        diagonal = columns[:, :, 2 * n3:].transpose(0, 2, 1)
        s0, s1, s2 = columns.strides
        diagonal_entries = as_strided(columns[:, :, 2 * n3:], shape=(gaps + 1, n3), strides=(s0, s1 + s2))
        jxt, jvt = np.transpose(jx, (0, 2, 1)), np.transpose(jv, (0, 2, 1))
        diagonal[:-1] = position_weight ** 2 * (jxt @ jx) + gap_ps ** 2 * (jvt @ jv)
        diagonal_entries[1:] += gap_ps ** 2
        np.multiply(jvt, -gap_ps ** 2, out=columns[1:, :, n3:2 * n3].transpose(0, 2, 1))  # −gap_ps² Jvᵀ
        diagonal_entries += damping * diagonal_entries.sum() / ((gaps + 1) * n3)
        band = as_strided(columns[:, :, 1:], shape=(gaps + 1, n3, 2 * n3), strides=(s0, s1 + s2, s2))
        with one_blas_thread():
            self.factor, info = dpbtrf(band.reshape(-1, 2 * n3).T, lower=0, overwrite_ab=1)
        if info:
            raise np.linalg.LinAlgError(f"the normal equations are not positive definite (LAPACK pbtrf: {info})")

    def step(self, miss, jump):
        """The Gauss–Newton step (K, 3N) nm/ps to subtract from the velocities, for the weighted residual
        ``miss`` = w · (position miss) and ``jump`` = τ · (velocity jump), each (gaps, 3N) nm."""
        gradient = np.zeros((len(miss) + 1, self.n3))
        gradient[:-1] = self.weight * (miss[:, None] @ self.jx)[:, 0] + self.gap_ps * (jump[:, None] @ self.jv)[:, 0]
        gradient[1:] -= self.gap_ps * jump
        with one_blas_thread():
            step = cho_solve_banded((self.factor, False), gradient.ravel(), check_finite=False)
        return step.reshape(gradient.shape)
