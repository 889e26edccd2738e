"""Exact power-of-two rescaling helpers (issue 9 item 4), against exact rational arithmetic."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dmfsharp.errors import Float64OverflowError
from dmfsharp.linalg.scaling import scale_back, split_scale, term_weights

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@given(st.lists(finite, min_size=1, max_size=8))
def test_split_scale_is_exact(values):
    a = np.array(values)
    m, e = split_scale(a)
    if np.any(a):
        assert 0.5 <= np.max(np.abs(m)) < 1.0
        top = np.max(np.abs(a))
        for x, y in zip(a, m):
            if abs(x) >= top * 2.0**-1000:  # far below the largest an entry may underflow
                assert Fraction(float(y)) * Fraction(2) ** e == Fraction(float(x))
    else:
        assert e == 0 and not np.any(m)


def test_split_scale_refuses_non_finite():
    with pytest.raises(ValueError, match="finite"):
        split_scale(np.array([1.0, np.inf]))


@given(st.lists(st.integers(min_value=-3000, max_value=3000), min_size=1, max_size=6))
def test_term_weights_reconstruct_the_scales(exps):
    w, shift = term_weights(exps)
    assert shift == max(exps)
    for e, wk in zip(exps, w):
        exact = Fraction(2) ** (e - shift)
        if e - shift >= -1074:
            assert Fraction(float(wk)) == exact
        else:
            assert wk == 0.0


def test_sharpness_of_extreme_factors_by_homogeneity():
    # W_1 = [[a]], W_2 = [[b]] at a minimum: lambda_max(H) = 2 (a^2 + b^2) (Corollary 6,
    # d = 1). Term k of S drops factor k: s_1 = 2 e_b, s_2 = 2 e_a. Forming a^2 directly
    # overflows (or underflows) for these scales; the rescaled route is exact.
    for a, b in ((1e160, 3e159), (1e-150, 2e-151), (1e153, 1e-153)):
        (ma, ea), (mb, eb) = split_scale(np.array([a])), split_scale(np.array([b]))
        w, shift = term_weights([2 * eb, 2 * ea])
        lam_hat = w[0] * float(mb[0]) ** 2 + w[1] * float(ma[0]) ** 2
        expected = 2 * (Fraction(a) ** 2 + Fraction(b) ** 2)
        if expected > Fraction(np.finfo(np.float64).max):
            with pytest.raises(Float64OverflowError, match="overflows float64"):
                scale_back(2 * lam_hat, shift, what="lambda_max")
            continue
        got = scale_back(2 * lam_hat, shift, what="lambda_max")
        assert abs(Fraction(got) - expected) <= Fraction(4 * 2.0**-52) * expected


def test_scale_back_validates():
    assert scale_back(0.75, 4) == 12.0
    assert scale_back(0.0, 5000) == 0.0
    with pytest.raises(ValueError, match="finite"):
        scale_back(float("nan"), 1)
    with pytest.raises(ValueError, match="exponents"):
        term_weights([])
