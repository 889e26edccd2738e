"""gauss_newton_top_of_arrays (the tracker's route) against the explicit S and warm starts."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from dmfsharp.s_arrays import gauss_newton_top_of_arrays

from .conftest import explicit_s as _explicit_s


def _factors(dims, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((dims[i], dims[i - 1])) / np.sqrt(dims[i - 1]) for i in range(1, len(dims))]


@pytest.mark.parametrize(
    "dims", [(1, 5, 3, 1), (4, 7), (3, 1, 6), (4, 8, 8, 3), (12, 9, 11, 20), (18, 6, 5, 16)]
)
def test_against_explicit_s(dims):
    ws = _factors(dims, seed=sum(dims))
    lam, _ = gauss_newton_top_of_arrays(ws)
    ref = 2 * scipy.linalg.eigvalsh(_explicit_s(ws))[-1]
    assert abs(lam - ref) <= 1e-12 * ref


def test_warm_start_along_a_path_and_from_a_wrong_vector():
    dims = (18, 6, 5, 16)  # d_0 d_L = 288: the iterative route
    ws = _factors(dims, seed=1)
    rng = np.random.default_rng(2)
    x = None
    for _ in range(4):  # a GD-like path: small moves, each warm-started from the last vector
        ws = [w + 1e-3 * rng.standard_normal(w.shape) for w in ws]
        lam, x = gauss_newton_top_of_arrays(ws, x)
        s = _explicit_s(ws)
        w, v = scipy.linalg.eigh(s)
        assert abs(lam - 2 * w[-1]) <= 1e-12 * 2 * w[-1]
    # an adversarial warm start: the second eigenvector still gives the top
    lam2, _ = gauss_newton_top_of_arrays(ws, v[:, -2])
    assert abs(lam2 - 2 * w[-1]) <= 1e-12 * 2 * w[-1]


def test_extreme_scales_go_through_the_rescaled_route():
    ws = _factors((6, 5, 4, 7), seed=3)
    big = [np.ldexp(ws[0], 450), np.ldexp(ws[1], -450), ws[2]]
    lam, _ = gauss_newton_top_of_arrays(big)
    # with W_1 -> 2^450 W_1, W_2 -> 2^-450 W_2: term 1 scales by 2^-900, term 2 by 2^900,
    # term 3 not at all, so lambda is that of term 2 alone to double precision
    b = np.ldexp(ws[0], 450)
    a = ws[2]
    ref = 2 * scipy.linalg.eigvalsh(b.T @ b)[-1] * scipy.linalg.eigvalsh(a @ a.T)[-1]
    assert np.isfinite(lam) and abs(lam - ref) <= 1e-12 * ref


@pytest.mark.parametrize("dims", [(1, 5, 3, 1), (4, 7, 3), (4, 8, 8, 3), (18, 6, 5, 16)])
def test_batch_equals_explicit_s_with_nan_rows(dims):
    from dmfsharp.s_arrays import gauss_newton_top_batch

    chains = [_factors(dims, seed=s) for s in range(5)]
    chains[2] = [np.full_like(w, np.nan) for w in chains[2]]  # a diverged run
    chains[3] = [np.ldexp(chains[3][0], 450), np.ldexp(chains[3][1], -450)] + chains[3][2:]
    stacks = [np.stack([c[i] for c in chains]) for i in range(len(dims) - 1)]
    out = gauss_newton_top_batch(stacks)
    if dims[0] * dims[-1] > 196:
        assert out is None  # the iterative route is per chain
        return
    for t, ws in enumerate(chains):
        if t == 2:
            assert np.isnan(out[t])
            continue
        ref = gauss_newton_top_of_arrays(ws)[0] if t == 3 else 2 * scipy.linalg.eigvalsh(_explicit_s(ws))[-1]
        assert abs(out[t] - ref) <= 1e-12 * ref
