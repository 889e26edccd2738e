"""Issue 9 item 6: a point is a minimum only when the dropped residual curvature is provably negligible.

References: the dense autograd Hessian (``tests.autodiff_reference``), independent of the
closed forms and of the bound.
"""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.minimum import MINIMUM_RTOL, residual_curvature_bound
from dmfsharp.objective import make_objective

CANCELLING = [
    np.array([[1e-6], [1e-6]]),
    np.array([[1e6, -1e6], [0.0, 0.0]]),
    np.array([[0.0, 1.0]]),
]


def test_issue_example_is_a_saddle(torch_ref):
    h = torch_ref.hessian(CANCELLING, M=np.array([[3e-14]]))
    eig = np.linalg.eigvalsh(h)
    assert eig[0] < -1e-8 and eig[-1] > 1e-8  # a saddle, far from the closed form's 4e-12
    # the bound is tight here: it equals the true curvature
    bound = residual_curvature_bound(make_objective(CANCELLING, np.array([[3e-14]])))
    assert bound == pytest.approx(eig[-1], rel=1e-6)
    # the trace is exact even at this saddle: the residual term has a zero diagonal
    assert dmf.hessian_trace(CANCELLING, target=[[3e-14]]) == pytest.approx(np.trace(h), rel=1e-12)


def test_issue_example_is_refused():
    m = np.array([[3e-14]])
    for fn in (
        dmf.sharpness,
        dmf.hessian_spectrum,
        dmf.top_eigenvector,
        dmf.flatness_report,
    ):
        with pytest.raises(dmf.NotAMinimumError, match="residual curvature"):
            fn(CANCELLING, target=m)
    assert not dmf.is_minimum(CANCELLING, target=m)


def _cases():
    rng = np.random.default_rng(7)
    out = []
    for dims, seed in [((3, 4, 5, 2), 0), ((2, 3, 3, 3, 2), 1), ((4, 6, 3), 2)]:
        ch = dmf.random_minimizer(dims, seed=seed)
        out.append(("random", ch.factors, {"target": ch.product.copy()}))
    for dims, seed in [((3, 4, 4, 3), 3), ((2, 5, 5, 5, 4), None)]:
        m = rng.standard_normal((dims[-1], dims[0]))
        out.append(("flattest", dmf.flattest_minimizer(m, dims, seed=seed).factors, {"target": m}))
    # a data minimum that does not interpolate: P = Y X^T (X X^T)^{-1} with n > d_0
    x = rng.standard_normal((3, 8))
    y = rng.standard_normal((2, 8))
    p = y @ x.T @ np.linalg.inv(x @ x.T)
    w1 = rng.standard_normal((4, 3))
    w2 = p @ np.linalg.pinv(w1)
    out.append(("data", (w1, w2), {"target": y, "data": x}))
    return out


@pytest.mark.parametrize(("kind", "factors", "kw"), _cases(), ids=lambda c: c if isinstance(c, str) else "")
def test_genuine_minima_are_accepted_and_exact(kind, factors, kw, torch_ref):
    assert dmf.is_minimum(factors, **kw)
    lam = dmf.sharpness(factors, **kw)
    ref_kw = {"M": kw["target"]} if "data" not in kw else {"X": kw["data"], "Y": kw["target"]}
    ref = np.linalg.eigvalsh(torch_ref.hessian(factors, **ref_kw))[-1]
    assert lam == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_bound_dominates_the_dropped_curvature(seed, torch_ref):
    # at an arbitrary point with an arbitrary target, H(M) - H(P) is the dropped term
    rng = np.random.default_rng(seed)
    dims = tuple(int(d) for d in rng.integers(1, 4, size=rng.integers(3, 6)))
    ws = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    m = dmf.FactorChain(ws).product + 0.1 * rng.standard_normal((dims[-1], dims[0]))
    dropped = torch_ref.hessian(ws, M=m) - torch_ref.hessian(ws, M=dmf.FactorChain(ws).product)
    true = float(np.max(np.abs(np.linalg.eigvalsh(dropped))))
    bound = residual_curvature_bound(make_objective(ws, m))
    assert true <= bound * (1 + 1e-10) + 1e-14


def test_stated_accuracy_is_the_threshold(torch_ref):
    assert MINIMUM_RTOL == 1e-12
    # an exact zero residual needs no bound, even when lambda_max = 0
    zero = [np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 2))]
    assert dmf.sharpness(zero, target=np.zeros((2, 2))) == 0.0
    # depth 3 at zero factors with M != 0: every dropped term has a zero factor, so the
    # bound is 0 (H = 0 there), but the residual itself is not zero: not a minimum
    assert residual_curvature_bound(make_objective(zero, np.eye(2))) == 0.0
    assert np.all(torch_ref.hessian(zero, M=np.eye(2)) == 0)
    assert dmf.is_minimum(zero, target=np.eye(2)) is False
    # depth 2 at zero factors with M != 0 is a saddle: the bound is 2 ||M||_2
    zero2 = zero[:2]
    assert residual_curvature_bound(make_objective(zero2, np.eye(2))) == pytest.approx(
        np.max(np.linalg.eigvalsh(torch_ref.hessian(zero2, M=np.eye(2))))
    )
