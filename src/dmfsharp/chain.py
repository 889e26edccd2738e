r"""The validated factor chain ``[W_1, ..., W_L]`` and its prefix and suffix products.

Conventions (``DESIGN.md``): factors are given W_1 first, ``W_i`` of shape
``(d_i, d_{i-1})``; the end-to-end product is ``P = W_L ... W_1`` of shape
``(d_L, d_0)``. For ``k = 1, ..., L``

.. math::

    A_k = W_L \cdots W_{k+1} \quad (d_L \times d_k,\ A_L = I), \qquad
    B_k = W_{k-1} \cdots W_1 \quad (d_{k-1} \times d_0,\ B_1 = I),

so that ``P = A_k W_k B_k`` for every ``k``. All ``A_k`` and all ``B_k`` are
accumulated from each end in ``2 (L - 1)`` matrix products.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .errors import FactorError

__all__ = ["FactorChain", "as_chain", "as_float_array"]


def as_float_array(value: Any, name: str, *, ndim: int | None = 2) -> np.ndarray:
    """Convert ``value`` to a finite float64 array, or raise :class:`FactorError`.

    Accepts NumPy arrays, nested sequences and PyTorch tensors (detached and moved to
    the CPU; PyTorch is never imported here). Lower precision is widened to float64;
    complex input is refused rather than silently dropping the imaginary part.

    Parameters
    ----------
    value : array_like or torch.Tensor
        The input.
    name : str
        What it is (``"factor W_2"``), for the message.
    ndim : int or None, optional
        The required number of dimensions (None: any).

    Returns
    -------
    ndarray of float64
        A C-contiguous copy of ``value``.

    Raises
    ------
    FactorError
        If ``value`` is masked, ragged, complex, non-numeric, empty, of the wrong
        dimension, or holds a NaN or an infinity (the message gives its index).

    Examples
    --------
    >>> as_float_array([[1, 2]], "factor W_1")
    array([[1., 2.]])
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor
        value = _tensor_to_numpy(value, name)
    if isinstance(value, np.ma.MaskedArray):
        if np.ma.getmaskarray(value).any():
            raise FactorError(
                f"{name} is a masked array with masked entries; dmfsharp has no notion of "
                "missing entries (fill them, e.g. with .filled(), or drop them first)"
            )
        value = np.ma.getdata(value)
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise FactorError(f"{name} could not be read as an array: {exc}") from None
    if arr.dtype == object:
        raise FactorError(f"{name} is not a numeric array (ragged or object entries)")
    if np.iscomplexobj(arr):
        raise FactorError(f"{name} is complex; dmfsharp works with real factors only")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise FactorError(f"{name} has non-numeric dtype {arr.dtype}")
    if ndim is not None and arr.ndim != ndim:
        raise FactorError(f"{name} must be {ndim}-D, got shape {arr.shape}")
    if arr.size == 0:
        raise FactorError(f"{name} is empty (shape {arr.shape})")
    arr = np.array(arr, dtype=np.float64, order="C", copy=True)
    # one read-only pass: a NaN or an infinity makes the sum non-finite; only a finite
    # sum that overflowed needs the elementwise check
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()
    if not np.isfinite(total) and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise FactorError(
            f"{name} has a non-finite entry {float(arr[tuple(bad)])} at index {tuple(int(i) for i in bad)}"
        )
    return arr


def _tensor_to_numpy(t: Any, name: str) -> np.ndarray:
    """A dense CPU float64 copy of a torch tensor; meta, sparse and quantized tensors are refused."""
    if getattr(t, "is_meta", False) or str(getattr(t, "device", "")) == "meta":
        raise FactorError(f"{name} is a tensor on the 'meta' device (no data); materialize it first")
    layout = str(getattr(t, "layout", "torch.strided"))
    if getattr(t, "is_sparse", False) or layout != "torch.strided":
        raise FactorError(f"{name} is a sparse tensor (layout {layout}); pass a dense tensor (.to_dense())")
    if getattr(t, "is_quantized", False):
        raise FactorError(f"{name} is a quantized tensor; pass a float tensor (.dequantize())")
    t = t.detach().cpu()
    if getattr(t, "is_floating_point", lambda: False)() and str(t.dtype) not in (
        "torch.float32",
        "torch.float64",
    ):
        t = t.double()  # bfloat16 and float16 have no NumPy equivalent: widen first
    return t.numpy()


def _factor_list(factors: Any) -> list[Any]:
    """The raw factors of any accepted container, W_1 first (nothing validated yet)."""
    if isinstance(factors, FactorChain):
        return list(factors.factors)
    if hasattr(factors, "named_children"):  # a torch.nn.Sequential of bias-free Linear layers
        from .torch_weights import read_torch_weights

        return read_torch_weights(factors)[0]
    if isinstance(factors, Mapping) or hasattr(factors, "files"):  # a state_dict or np.load(...)
        values = [factors[k] for k in factors]
        if any(hasattr(v, "detach") for v in values):  # tensors: a PyTorch state_dict
            from .torch_weights import read_torch_weights

            return read_torch_weights(factors)[0]
        return factors_from_mapping(factors)
    if hasattr(factors, "ndim") and getattr(factors, "ndim", None) is not None:
        raise FactorError(
            "factors must be a sequence of 2-D arrays [W_1, ..., W_L], "
            f"got a single array of shape {tuple(factors.shape)}"
        )
    try:
        return list(factors)
    except TypeError:
        raise FactorError(f"factors must be a sequence of 2-D arrays, got {type(factors).__name__}") from None


_FACTOR_KEY = re.compile(r"^W(\d+)$")


def factors_from_mapping(arrays: Any) -> list[Any]:
    """``[arrays["W1"], ..., arrays["WL"]]`` from a mapping of arrays (``np.load`` of an ``.npz``).

    Keys ``W1 ... WL`` are ordered by their numeric index (``W10`` after ``W9``); a gap
    is refused. Other keys (such as a target ``M``) are ignored.
    """
    keys = list(arrays.files if hasattr(arrays, "files") else arrays.keys())
    found = {int(m.group(1)): k for k in keys if isinstance(k, str) and (m := _FACTOR_KEY.match(k))}
    if not found:
        raise FactorError(
            f"a mapping of factors needs keys W1, W2, ..., WL; got keys {sorted(map(str, keys))}"
        )
    idx = sorted(found)
    if idx != list(range(1, len(idx) + 1)):
        raise FactorError(f"factor keys must be W1 ... WL without gaps; found {[f'W{i}' for i in idx]}")
    return [arrays[found[i]] for i in idx]


@dataclass(frozen=True, slots=True, eq=False, init=False)
class FactorChain:
    """An immutable, validated chain of factors ``[W_1, ..., W_L]`` (W_1 first).

    Parameters
    ----------
    factors : sequence of array_like, mapping, or torch module
        ``W_i`` of shape ``(d_i, d_{i-1})``, at least two of them. Copied to
        read-only float64 arrays. A mapping of NumPy arrays (``np.load("f.npz")``)
        is read by its keys ``W1 ... WL``; a mapping of tensors (a ``state_dict``) or
        an ``nn.Sequential`` goes to :func:`dmfsharp.from_torch`.

    Attributes
    ----------
    factors : tuple of ndarray
        The factors, W_1 first, read-only.
    dims : tuple of int
        ``(d_0, d_1, ..., d_L)``.
    depth : int
        ``L``.
    num_params : int
        ``N = sum_i d_i d_{i-1}`` (eq. 16).

    Raises
    ------
    FactorError
        If there are fewer than two factors, a factor is not a finite real 2-D array, or
        consecutive shapes do not chain (``W_{i+1}`` must have ``d_i`` columns).

    Notes
    -----
    The prefix products ``B_k``, suffix products ``A_k`` and ``P`` are computed on first
    use and kept in the explicit ``products`` cache (a dict keyed ``"prefix"``,
    ``"suffix"``, ``"product"``); :meth:`has_products` says whether they are there.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 2 (setup), eq. (16) (``N``), and the
    products ``A_k``, ``B_k`` of Section 4 (Theorem 5).

    Examples
    --------
    >>> import numpy as np
    >>> chain = FactorChain([np.ones((3, 2)), np.ones((4, 3))])
    >>> chain.dims, chain.depth, chain.num_params
    ((2, 3, 4), 2, 18)
    >>> chain.product
    array([[3., 3.],
           [3., 3.],
           [3., 3.],
           [3., 3.]])
    """

    factors: tuple[np.ndarray, ...]
    dims: tuple[int, ...]
    products: dict[str, Any] = field(repr=False)

    def __init__(self, factors: Any):
        items = _factor_list(factors)
        if len(items) < 2:
            raise FactorError(f"depth L must be at least 2, got {len(items)} factor(s)")
        arrays = []
        for i, w in enumerate(items, start=1):
            arr = as_float_array(w, f"factor W_{i}")
            arr.flags.writeable = False
            arrays.append(arr)
        for i in range(1, len(arrays)):
            prev, cur = arrays[i - 1], arrays[i]
            if cur.shape[1] != prev.shape[0]:
                raise FactorError(
                    f"factor W_{i + 1} has shape {cur.shape} but W_{i} has shape {prev.shape}: "
                    f"W_{i + 1} must have {prev.shape[0]} columns (d_{i} = {prev.shape[0]})"
                )
        object.__setattr__(self, "factors", tuple(arrays))
        object.__setattr__(self, "dims", (arrays[0].shape[1],) + tuple(a.shape[0] for a in arrays))
        object.__setattr__(self, "products", {})

    def __repr__(self) -> str:
        return f"FactorChain(dims={self.dims}, num_params={self.num_params})"

    def __len__(self) -> int:
        return len(self.factors)

    def __iter__(self) -> Iterator[np.ndarray]:
        return iter(self.factors)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.factors[i]

    @property
    def depth(self) -> int:
        """Depth ``L``, the number of factors."""
        return len(self.factors)

    @property
    def num_params(self) -> int:
        """Number of parameters ``N = sum_i d_i d_{i-1}`` (eq. 16)."""
        return int(sum(w.size for w in self.factors))

    @property
    def shapes(self) -> tuple[tuple[int, int], ...]:
        """Shapes of the factors, W_1 first."""
        return tuple((int(w.shape[0]), int(w.shape[1])) for w in self.factors)

    def has_products(self) -> bool:
        """Say whether the prefix and suffix products are already computed (and cached).

        Returns
        -------
        bool
            True once :attr:`prefix` and :attr:`suffix` have been read.
        """
        return "prefix" in self.products and "suffix" in self.products

    @property
    def prefix(self) -> tuple[np.ndarray, ...]:
        """``(B_1, ..., B_L)`` with ``B_k = W_{k-1} ... W_1`` and ``B_1 = I``."""
        cached = self.products.get("prefix")
        if cached is None:
            # B_1 = I and B_2 = W_1: no product with the identity is formed
            out = [np.eye(self.dims[0]), self.factors[0]]
            for w in self.factors[1:-1]:
                out.append(w @ out[-1])
            for b in out:
                b.flags.writeable = False
            cached = self.products["prefix"] = tuple(out)
        return cached

    @property
    def suffix(self) -> tuple[np.ndarray, ...]:
        """``(A_1, ..., A_L)`` with ``A_k = W_L ... W_{k+1}`` and ``A_L = I``."""
        cached = self.products.get("suffix")
        if cached is None:
            # A_L = I and A_{L-1} = W_L: no product with the identity is formed
            out = [np.eye(self.dims[-1]), self.factors[-1]]
            for w in self.factors[-2:0:-1]:
                out.append(out[-1] @ w)
            out.reverse()
            for a in out:
                a.flags.writeable = False
            cached = self.products["suffix"] = tuple(out)
        return cached

    @property
    def product(self) -> np.ndarray:
        """End-to-end product ``P = W_L ... W_1``, shape ``(d_L, d_0)``."""
        cached = self.products.get("product")
        if cached is None:
            cached = self.factors[-1] @ self.prefix[-1]
            cached.flags.writeable = False
            self.products["product"] = cached
        return cached

    def flatten(self) -> np.ndarray:
        """Return the parameter vector ``w``: each factor row-major, W_1 first.

        Returns
        -------
        ndarray of float64, shape (N,)
            A new array; ``N`` is :attr:`num_params`.
        """
        return np.concatenate([w.ravel() for w in self.factors])

    def unflatten(self, vector: Any) -> list[np.ndarray]:
        """Split a length-``N`` vector into arrays shaped like the factors (inverse of flatten).

        Parameters
        ----------
        vector : array_like, shape (N,)
            A parameter vector ordered as by :meth:`flatten`.

        Returns
        -------
        list of ndarray of float64
            ``L`` arrays, the ``i``-th of shape ``(d_i, d_{i-1})`` (copies).

        Raises
        ------
        FactorError
            If ``vector`` does not have shape ``(N,)``.
        """
        v = np.asarray(vector, dtype=np.float64)
        if v.shape != (self.num_params,):
            raise FactorError(f"parameter vector must have shape ({self.num_params},), got {v.shape}")
        out, start = [], 0
        for w in self.factors:
            out.append(v[start : start + w.size].reshape(w.shape).copy())
            start += w.size
        return out

    def with_factors(self, factors: Sequence[Any]) -> FactorChain:
        """Return a new chain of ``factors``, checked to have the same dims as this one.

        Parameters
        ----------
        factors : sequence of array_like
            ``L`` arrays, the ``i``-th of shape ``(d_i, d_{i-1})``.

        Returns
        -------
        FactorChain
            The new chain (this one is unchanged).

        Raises
        ------
        FactorError
            If the factors are invalid or their dims differ from :attr:`dims`.
        """
        new = FactorChain(factors)
        if new.dims != self.dims:
            raise FactorError(f"expected factors with dims {self.dims}, got dims {new.dims}")
        return new


FactorsLike = Union[FactorChain, Sequence[Any]]  # noqa: UP007 (a runtime alias, Python 3.10)


def as_chain(factors: FactorsLike) -> FactorChain:
    """Return ``factors`` as a :class:`FactorChain` (no copy if it already is one).

    Parameters
    ----------
    factors : FactorChain, sequence of array_like, mapping, or torch module
        Anything :class:`FactorChain` accepts; ``W_i`` of shape ``(d_i, d_{i-1})``.

    Returns
    -------
    FactorChain
        ``factors`` itself if it is a chain, else a new validated chain.

    Raises
    ------
    FactorError
        If ``factors`` is not a valid chain (see :class:`FactorChain`).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Section 2, the chain ``W_L ... W_1``).

    Examples
    --------
    >>> import numpy as np
    >>> chain = as_chain([np.ones((3, 2)), np.ones((1, 3))])
    >>> chain.dims
    (2, 3, 1)
    >>> as_chain(chain) is chain
    True
    """
    if isinstance(factors, FactorChain):
        return factors
    return FactorChain(factors)


def check_like(chain: FactorChain, arrays: Sequence[Any], name: str) -> list[np.ndarray]:
    """Validate a list of arrays shaped like the factors (a direction or perturbation)."""
    try:
        items = list(arrays)
    except TypeError:
        raise FactorError(f"{name} must be a sequence of arrays shaped like the factors") from None
    if len(items) != chain.depth:
        raise FactorError(f"{name} has {len(items)} blocks, expected {chain.depth} (one per factor)")
    out = []
    for i, (u, w) in enumerate(zip(items, chain.factors), start=1):
        arr = as_float_array(u, f"{name} block {i}")
        if arr.shape != w.shape:
            raise FactorError(f"{name} block {i} has shape {arr.shape}, expected {w.shape} (like W_{i})")
        out.append(arr)
    return out


def check_target(chain: FactorChain, target: Any) -> np.ndarray:
    """Validate a target ``M`` of shape ``(d_L, d_0)``; ``None`` means the chain's own product."""
    if target is None:
        return chain.product
    m = as_float_array(target, "target M", ndim=None)
    if m.ndim == 0 and chain.dims[0] == chain.dims[-1] == 1:
        m = m.reshape(1, 1)
    if m.ndim == 1 and 1 in (chain.dims[0], chain.dims[-1]) and m.size == chain.dims[0] * chain.dims[-1]:
        m = m.reshape(chain.dims[-1], chain.dims[0])
    expected = (chain.dims[-1], chain.dims[0])
    if m.shape != expected:
        raise FactorError(
            f"target M has shape {m.shape}, expected (d_L, d_0) = {expected} for dims {chain.dims}"
        )
    return m
