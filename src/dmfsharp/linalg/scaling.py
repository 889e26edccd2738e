r"""Exact power-of-two rescaling, so values far outside float64's comfortable range stay exact.

The sharpness is homogeneous in each factor's scale (Theorem 5): with
``W_i = 2^{e_i} \hat W_i`` the ``k``-th term of
``S = \sum_k (B_k^T B_k) \otimes (A_k A_k^T)`` is ``2^{s_k} \hat S_k`` with
``s_k = 2 (\sum_i e_i - e_k)``, since term ``k`` contains every factor but ``W_k``
twice. Assembling ``S`` from the mantissas ``\hat W_i`` (entries of magnitude below 1)
with the exact weights ``2^{s_k - max_j s_j}`` and scaling ``lambda_max`` back by
``2^{max_j s_j}`` gives the right value whenever it is representable, instead of the
``inf``/NaN that forming products of factors of scale ``1e+-80`` produces. Multiplying
by a power of two is exact in binary floating point (barring underflow of entries far
below the largest one, which are negligible against it).

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025 (Theorem 5).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import Float64OverflowError

__all__ = ["split_scale", "term_weights", "scale_back"]


def split_scale(a: np.ndarray) -> tuple[np.ndarray, int]:
    """Split ``a`` exactly into ``mantissa * 2**exponent`` with ``max |mantissa|`` in ``[0.5, 1)``.

    Parameters
    ----------
    a : ndarray
        Finite float64 array (any shape).

    Returns
    -------
    mantissa : ndarray
        Same shape as ``a``; ``a == np.ldexp(mantissa, exponent)`` entry by entry (exact
        unless an entry is below ``2**-1022`` times the largest, where it underflows).
    exponent : int
        ``0`` for an all-zero (or empty) array.

    Raises
    ------
    ValueError
        If ``a`` has non-finite entries.

    Examples
    --------
    >>> import numpy as np
    >>> m, e = split_scale(np.array([3e200, -1e199]))
    >>> e, bool(np.all(np.ldexp(m, e) == [3e200, -1e199]))
    (666, True)
    """
    a = np.asarray(a, dtype=np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError("split_scale: the array must contain only finite values")
    top = float(np.max(np.abs(a))) if a.size else 0.0
    if top == 0.0:
        return a.copy(), 0
    _, e = np.frexp(top)
    return np.ldexp(a, -int(e)), int(e)


def term_weights(exponents: Sequence[int]) -> tuple[np.ndarray, int]:
    """Exact weights ``2**(s_k - s)`` for terms scaled by ``2**s_k``, with ``s = max_k s_k``.

    Parameters
    ----------
    exponents : sequence of int
        Per-term binary log-scales ``s_k`` (for ``S``: ``2 (sum_i e_i - e_k)``).

    Returns
    -------
    weights : ndarray, shape (len(exponents),)
        In ``(0, 1]``; a term more than ~1074 binades below the largest gets weight 0
        (it is below float64 resolution of the sum).
    shift : int
        ``s``: the sum of the terms is ``2**s * sum_k weights_k * term_k``.

    Raises
    ------
    ValueError
        If ``exponents`` is empty or not integral.

    Examples
    --------
    >>> term_weights([10, 8, -2000])
    (array([1.  , 0.25, 0.  ]), 10)
    """
    s = np.asarray(exponents)
    if s.ndim != 1 or s.size == 0 or not np.issubdtype(s.dtype, np.integer):
        raise ValueError(f"exponents must be a non-empty sequence of integers, got {exponents!r}")
    shift = int(s.max())
    return np.ldexp(np.ones(s.size), np.maximum(s - shift, -1100).astype(np.int64)), shift


def scale_back(value: float, exponent: int, *, what: str = "the value") -> float:
    """``value * 2**exponent``, refusing a result that overflows float64.

    Parameters
    ----------
    value : float
        Finite mantissa-scale result (e.g. ``lambda_max`` of the rescaled ``S``).
    exponent : int
        Binary scale to restore.
    what : str, optional
        Name of the quantity for the error message.

    Returns
    -------
    float
        Exact when representable (a power-of-two scaling; gradual underflow may round a
        result below ``2**-1022``).

    Raises
    ------
    Float64OverflowError
        If ``|value| * 2**exponent`` exceeds the largest float64.
    ValueError
        If ``value`` is not finite.

    Examples
    --------
    >>> scale_back(0.75, 4)
    12.0
    """
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"scale_back: {what} must be finite before rescaling, got {value!r}")
    try:
        return math.ldexp(value, int(exponent))
    except OverflowError:
        log10 = np.log10(abs(value)) + int(exponent) * np.log10(2.0)
        raise Float64OverflowError(
            f"{what} is about 1e{log10:.1f}, which overflows float64 (largest ~1.8e308)"
        ) from None
