"""Loss-landscape maps: grid equals pointwise loss; plane directions are orthonormal."""

from __future__ import annotations

import numpy as np
import pytest

from dmfsharp import dense_hessian, loss, random_minimizer
from dmfsharp.landscape import loss_grid, plane_directions


@pytest.mark.parametrize("dims", [(3, 4, 2), (1, 3, 2, 4, 1), (2, 3, 4, 3, 2)])
@pytest.mark.parametrize("kind", ["hessian", "random"])
def test_grid_equals_pointwise_loss(dims, kind):
    chain = random_minimizer(dims, seed=1)
    m = chain.product + 0.01  # any target, not only the minimum's own product
    z = plane_directions(chain, kind, seed=3)
    xs = np.linspace(-0.5, 0.7, 7)
    ys = np.linspace(-0.3, 0.2, 5)
    grid = loss_grid(chain, xs, ys, plane=z, target=m, max_chunk_bytes=4000)
    assert grid.shape == (5, 7)
    w = chain.flatten()
    for j, y in enumerate(ys):
        for i, x in enumerate(xs):
            point = chain.unflatten(w + x * z[0] + y * z[1])
            expect = loss(point, target=m)
            assert grid[j, i] == pytest.approx(expect, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("dims", [(3, 4, 2), (1, 3, 2, 4, 1), (2, 3, 4, 3, 2)])
def test_hessian_plane_is_v1_and_vN(dims):
    chain = random_minimizer(dims, seed=2)
    z = plane_directions(chain, "hessian")
    np.testing.assert_allclose(z @ z.T, np.eye(2), atol=1e-12)
    h = dense_hessian(chain)
    evals = np.linalg.eigvalsh(h)
    lam = evals[-1]
    np.testing.assert_allclose(h @ z[0], lam * z[0], atol=1e-9 * lam)  # top eigenvector
    np.testing.assert_allclose(h @ z[1], 0.0, atol=1e-9 * lam)  # smallest (zero) eigenvalue
    assert abs(evals[0]) <= 1e-9 * lam


def test_random_and_user_planes_orthonormal():
    chain = random_minimizer((2, 3, 2), seed=0)
    a = plane_directions(chain, "random", seed=1)
    b = plane_directions(chain, "random", seed=1)
    c = plane_directions(chain, "random", seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    np.testing.assert_allclose(a @ a.T, np.eye(2), atol=1e-12)
    n = chain.num_params
    u = np.arange(n, dtype=float)
    v = np.ones(n)
    z = plane_directions(chain, (u, v))
    np.testing.assert_allclose(z @ z.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(z[0], u / np.linalg.norm(u))
    blocks = [chain.unflatten(u), chain.unflatten(v)]
    np.testing.assert_allclose(plane_directions(chain, blocks), z)
    with pytest.raises(ValueError, match="parallel"):
        plane_directions(chain, (u, 2 * u))
    with pytest.raises(ValueError, match="length"):
        plane_directions(chain, (u[:-1], v))
    with pytest.raises(ValueError, match="plane"):
        plane_directions(chain, "diagonal")
