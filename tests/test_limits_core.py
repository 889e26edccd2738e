"""Issue 9 item 7: every core function that allocates something quadratic in a dimension
checks the size first (with ``DMFSHARP_MAX_BYTES`` set small, huge requests are refused
at once with the size and the matrix-free alternative, instead of dying with MemoryError)."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.errors import MemoryLimitError


@pytest.fixture
def small_limit(monkeypatch):
    monkeypatch.setenv("DMFSHARP_MAX_BYTES", str(2**20))


def _wide(d):
    # dims (d, 1, d): the factors are tiny, S and the L = 2 spectrum are d^2 x d^2 / d^2
    rng = np.random.default_rng(0)
    return dmf.FactorChain([rng.standard_normal((1, d)), rng.standard_normal((d, 1))])


CASES = [
    ("sharpness_matrix", lambda: dmf.sharpness_matrix(_wide(100_000)), "sharpness_operator"),
    ("hessian_spectrum L=2 k=1", lambda: dmf.hessian_spectrum(_wide(100_000), k=1), "sharpness"),
    ("layer_hessian_block", lambda: dmf.layer_hessian_block(_wide(100_000), 1), "layer_sharpness"),
    ("sharpness_operator", lambda: dmf.sharpness_operator(_wide(100_000)), "hessian_operator"),
    ("random_minimizer", lambda: dmf.random_minimizer((10**6, 10**6, 2), seed=0), None),
    (
        "dense_hessian",
        lambda: dmf.dense_hessian(dmf.random_minimizer((20, 20, 20), seed=0)),
        "hessian_operator",
    ),
    ("loss_grid", lambda: dmf.loss_grid(_wide(3), np.zeros(10**5), np.zeros(10**5), plane="random"), "fewer"),
]


@pytest.mark.parametrize(("name", "call", "alternative"), CASES, ids=[c[0] for c in CASES])
def test_refused_before_allocating(small_limit, name, call, alternative):
    with pytest.raises(MemoryLimitError, match="would take") as info:
        call()
    if alternative is not None:
        assert alternative in str(info.value)


def test_small_requests_still_run(small_limit):
    chain = dmf.random_minimizer((3, 4, 2), seed=0)
    assert dmf.sharpness_matrix(chain).shape == (6, 6)
    assert dmf.layer_hessian_block(chain, 2).shape == (8, 8)
    assert dmf.dense_hessian(chain).shape == (chain.num_params,) * 2
