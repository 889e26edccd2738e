"""Validation of the factor chain and its products."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp import FactorChain
from dmfsharp.minima import check_dims


def test_products_and_dims():
    rng = np.random.default_rng(0)
    ws = [rng.standard_normal(s) for s in [(4, 3), (5, 4), (2, 5)]]
    chain = dmf.FactorChain(ws)
    assert chain.dims == (3, 4, 5, 2) and chain.depth == 3 and chain.num_params == 12 + 20 + 10
    np.testing.assert_allclose(chain.product, ws[2] @ ws[1] @ ws[0])
    for k in range(3):
        np.testing.assert_allclose(
            chain.suffix[k] @ ws[k] @ chain.prefix[k], chain.product, rtol=1e-13, atol=1e-13
        )
    np.testing.assert_array_equal(chain.prefix[0], np.eye(3))
    np.testing.assert_array_equal(chain.suffix[-1], np.eye(2))


def test_immutable_and_copied():
    w = np.ones((2, 2))
    chain = dmf.FactorChain([w, w])
    w[0, 0] = 5.0
    assert chain[0][0, 0] == 1.0
    with pytest.raises(ValueError):
        chain[0][0, 0] = 3.0
    with pytest.raises(AttributeError):
        chain.factors = ()
    assert dmf.as_chain(chain) is chain


def test_float32_is_widened_and_torch_tensors_accepted():
    chain = dmf.FactorChain([np.ones((2, 2), dtype=np.float32), np.ones((1, 2), dtype=np.int64)])
    assert all(w.dtype == np.float64 for w in chain)
    torch = pytest.importorskip("torch")
    t = dmf.FactorChain([torch.ones(3, 2, dtype=torch.float32, requires_grad=True), torch.ones(1, 3)])
    assert t.dims == (2, 3, 1) and t[0].dtype == np.float64


@pytest.mark.parametrize(
    "factors, match",
    [
        ([np.ones((2, 2))], "depth L must be at least 2"),
        ([], "depth L must be at least 2"),
        ([np.ones((2, 2)), np.ones((3, 3))], r"W_2 has shape \(3, 3\) but W_1 has shape \(2, 2\)"),
        ([np.ones((2, 2)), np.ones(2)], "factor W_2 must be 2-D"),
        ([np.ones((2, 0)), np.ones((1, 2))], "factor W_1 is empty"),
        ([np.ones((2, 2)), np.array([[np.inf, 1.0]])], r"W_2 has a non-finite entry inf at index \(0, 0\)"),
        ([np.ones((2, 2)), np.array([[np.nan, 1.0]])], "non-finite"),
        ([np.ones((2, 2)), np.ones((1, 2)) * 1j], "complex"),
        ([np.ones((2, 2)), [[1, 2], [3]]], "W_2"),
        ([np.ones((2, 2)), np.array([["a", "b"]])], "non-numeric"),
        (np.ones((3, 2, 2)), "single array"),
        (5, "sequence"),
    ],
)
def test_bad_factors_are_named(factors, match):
    with pytest.raises(dmf.FactorError, match=match):
        dmf.FactorChain(factors)


def test_check_dims():
    assert check_dims([3, 4, 2]) == (3, 4, 2)
    with pytest.raises(ValueError, match="eq. 17"):
        check_dims([3, 1, 2])
    with pytest.raises(ValueError, match="at least 3 entries"):
        check_dims([3, 2])
    with pytest.raises(ValueError, match=">= 1"):
        check_dims([3, 0, 2])
    with pytest.raises(ValueError, match="integers"):
        check_dims([3, 2.5, 2])
    with pytest.raises(ValueError, match="rank"):
        dmf.flattest_minimizer(np.eye(3), (3, 2, 3))
    with pytest.raises(ValueError, match="shape"):
        dmf.flattest_minimizer(np.eye(3), (2, 4, 3))
    with pytest.raises(ValueError, match="scale"):
        dmf.random_minimizer((2, 3, 2), scale=-1)


def test_an_npz_mapping_is_read_by_numeric_key(tmp_path):
    rng = np.random.default_rng(0)
    dims = (2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2)  # eleven factors: W10, W11 sort after W9
    ws = [rng.standard_normal((dims[i], dims[i - 1])) for i in range(1, len(dims))]
    path = tmp_path / "minimum.npz"
    np.savez(path, **{f"W{i}": w for i, w in enumerate(ws, start=1)}, M=np.zeros((2, 2)))
    with np.load(path) as f:
        chain = FactorChain(f)
        lam = dmf.sharpness(f)
    assert chain.dims == dims
    for a, b in zip(chain.factors, ws):
        np.testing.assert_array_equal(a, b)
    assert lam == dmf.sharpness(ws)
    # a plain dict of arrays works too; a gap is refused
    assert FactorChain({"W2": ws[1], "W1": ws[0]}).dims == dims[:3]
    with pytest.raises(dmf.FactorError, match="without gaps"):
        FactorChain({"W1": ws[0], "W3": ws[2]})


def test_factor_chain_is_a_frozen_slotted_dataclass():
    import dataclasses

    chain = FactorChain([np.eye(2), np.eye(2)])
    assert dataclasses.is_dataclass(chain) and not hasattr(chain, "__dict__")
    assert [f.name for f in dataclasses.fields(chain)] == ["factors", "dims", "products"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        chain.factors = ()
    assert not chain.has_products()
    chain.product  # noqa: B018 - computes and caches P and the prefix products
    assert not chain.has_products() and set(chain.products) == {"prefix", "product"}
    chain.suffix  # noqa: B018
    assert chain.has_products() and set(chain.products) == {"prefix", "suffix", "product"}
