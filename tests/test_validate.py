"""Issue 9 item 8: every core public function validates its parameters in named helpers and
names the offending parameter (a table of bad inputs)."""

from __future__ import annotations

import numpy as np
import pytest

import dmfsharp as dmf
from dmfsharp.validate import check_choice, check_int_pair, check_positive_float, check_positive_int

S6 = dmf.section6_example()
MASKED = np.ma.array(np.eye(3), mask=np.eye(3, dtype=bool) & (np.arange(3) == 1))

BAD = [
    ("flat_sharpness NaN", lambda: dmf.flat_sharpness([[np.nan]], 2), "non-finite"),
    ("flat_sharpness complex", lambda: dmf.flat_sharpness(np.array([[1 + 1j]]), 2), "complex"),
    ("flat_sharpness depth=2.5", lambda: dmf.flat_sharpness([[1.0]], 2.5), "depth must be an integer"),
    ("flat_sharpness depth=1", lambda: dmf.flat_sharpness([[1.0]], 1), "depth must be an integer >= 2"),
    ("flat_sharpness depth=True", lambda: dmf.flat_sharpness([[1.0]], True), "depth"),
    ("flat_sharpness masked", lambda: dmf.flat_sharpness(MASKED, 2), "masked"),
    ("factor masked", lambda: dmf.sharpness([MASKED, np.eye(3)]), "masked"),
    ("target masked", lambda: dmf.sharpness(S6, target=MASKED), "masked"),
    ("random_dims widths", lambda: dmf.random_dims(3, 2, 2, (2.5, 3)), "widths"),
    ("random_dims depth", lambda: dmf.random_dims(2.5, 2, 2, (2, 3)), "depth"),
    ("random_dims empty range", lambda: dmf.random_dims(3, 2, 2, (4, 3)), "empty"),
    ("random_minimizer scale", lambda: dmf.random_minimizer((2, 2, 2), scale=float("nan")), "scale"),
    ("hessian_spectrum k=0", lambda: dmf.hessian_spectrum(S6, k=0), "k must be a positive integer"),
    ("hessian_spectrum k=2.5", lambda: dmf.hessian_spectrum(S6, k=2.5), "k must be a positive integer"),
    ("hessian_spectrum k=True", lambda: dmf.hessian_spectrum(S6, k=True), "k must be a positive integer"),
    ("sharpness method", lambda: dmf.sharpness(S6, method="qr"), "method must be one of"),
    ("normalization", lambda: dmf.sharpness(S6, data=np.eye(3), normalization="avg"), "normalization"),
    ("is_stable_step eta", lambda: dmf.is_stable_step(S6, -1.0), "eta"),
    ("is_stable_step eta nan", lambda: dmf.is_stable_step(S6, float("nan")), "eta"),
    ("diagnose eta", lambda: dmf.diagnose(S6, eta=0.0), "eta"),
    ("layer_hessian_block k", lambda: dmf.layer_hessian_block(S6, 0), "k must be an integer"),
    ("layer_hessian_block k bool", lambda: dmf.layer_hessian_block(S6, True), "k must be an integer"),
]


@pytest.mark.parametrize(("name", "call", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_parameters_are_refused_by_name(name, call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_an_unmasked_masked_array_is_its_data():
    w = np.ma.array(np.eye(3), mask=False)
    assert dmf.sharpness([w, np.eye(3)]) == dmf.sharpness([np.eye(3), np.eye(3)]) == 4.0


def test_helpers_directly():
    assert check_choice("a", ("a", "b"), "x") == "a"
    assert check_positive_int(np.int64(3), "n") == 3 and check_positive_int(2.0, "n") == 2
    assert check_positive_float("1e-3", "eta") == 1e-3
    assert check_int_pair((2, 5), "widths") == (2, 5)
    for bad in (0, -1, 1.5, True, "3", None):
        with pytest.raises(ValueError, match="n must be a positive integer"):
            check_positive_int(bad, "n")


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
def test_torch_meta_sparse_quantized_are_refused():
    torch = pytest.importorskip("torch", reason="torch tensors need PyTorch")
    eye = torch.eye(2, dtype=torch.float64)
    cases = [
        (torch.empty(2, 2, device="meta"), "meta"),
        (eye.to_sparse(), "sparse"),
        (torch.quantize_per_tensor(eye.float(), 0.1, 0, torch.qint8), "quantized"),
    ]
    for bad, word in cases:
        with pytest.raises(dmf.FactorError, match=word):
            dmf.sharpness([bad, eye])
    # low precision is widened, not refused
    assert dmf.sharpness([eye.to(torch.bfloat16), eye.to(torch.float16)]) == 4.0
