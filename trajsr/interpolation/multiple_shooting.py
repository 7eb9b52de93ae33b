"""The Gauss–Newton step of multiple shooting, solved as the banded system it is.

The unknowns are one velocity per kept frame, v_0 … v_{K−1} (each 3N). Gap g's residual is its path's
position miss at the next kept frame, ``w · (x_end(v_g) − x_{g+1})``, and its velocity jump there,
``τ · (v_end(v_g) − v_{g+1})``. Gap g touches only v_g and v_{g+1}, so the normal matrix AᵀA is block
tridiagonal: a band 2·3N − 1 wide, factorised once by banded Cholesky (LAPACK ``pbtrf`` via
``scipy.linalg.cholesky_banded``) and reused by the chord steps that keep the last Jacobian.

Both run on one BLAS thread: the band's blocks are tiny (3N wide), and OpenBLAS's threads cost more than
they share, ruinously when the cores are busy (ethanol, 500 kept frames, two busy cores: 4.4 s per
factorisation on all threads against 6 ms on one).
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import cho_solve_banded, cholesky_banded
from threadpoolctl import threadpool_limits


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
        diagonal = np.zeros((gaps + 1, n3, n3))
        jxt, jvt = np.transpose(jx, (0, 2, 1)), np.transpose(jv, (0, 2, 1))
        diagonal[:-1] = position_weight ** 2 * (jxt @ jx) + gap_ps ** 2 * (jvt @ jv)
        diagonal[1:] += gap_ps ** 2 * np.eye(n3)
        upper = -gap_ps ** 2 * jvt  # block (g, g + 1) = −gap_ps² Jvᵀ
        trace = np.einsum("gii->", diagonal) / ((gaps + 1) * n3)
        diagonal += damping * trace * np.eye(n3)
        # upper banded storage: band[u + i − j, j] = N[i, j] for j − u <= i <= j
        u = 2 * n3 - 1
        band = np.zeros((u + 1, (gaps + 1) * n3))
        p, q = np.triu_indices(n3)  # diagonal blocks, upper triangle
        cols = (np.arange(gaps + 1)[:, None] * n3 + q).ravel()
        band[np.tile(u + p - q, gaps + 1), cols] = diagonal[:, p, q].ravel()
        p, q = np.meshgrid(np.arange(n3), np.arange(n3), indexing="ij")
        rows = (np.arange(gaps)[:, None, None] * n3 + p).ravel()
        cols = ((np.arange(gaps)[:, None, None] + 1) * n3 + q).ravel()
        band[u + rows - cols, cols] = upper.ravel()
        with threadpool_limits(1, user_api="blas"):
            self.factor = cholesky_banded(band, lower=False, check_finite=False)

    def step(self, miss, jump):
        """The Gauss–Newton step (K, 3N) nm/ps to subtract from the velocities, for the weighted residual
        ``miss`` = w · (position miss) and ``jump`` = τ · (velocity jump), each (gaps, 3N) nm."""
        gradient = np.zeros((len(miss) + 1, self.n3))
        gradient[:-1] = self.weight * (miss[:, None] @ self.jx)[:, 0] + self.gap_ps * (jump[:, None] @ self.jv)[:, 0]
        gradient[1:] -= self.gap_ps * jump
        with threadpool_limits(1, user_api="blas"):
            step = cho_solve_banded((self.factor, False), gradient.ravel(), check_finite=False)
        return step.reshape(gradient.shape)
