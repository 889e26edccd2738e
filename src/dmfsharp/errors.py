"""Exceptions raised by dmfsharp.

Every error a user can trigger with bad input is a subclass of :class:`ValueError`
(or :class:`OSError` for files), so ``except ValueError`` keeps working, while the
specific classes let callers tell the cases apart.
"""

from __future__ import annotations

__all__ = [
    "ConvergenceError",
    "FactorError",
    "FactorFileError",
    "Float64OverflowError",
    "MemoryLimitError",
    "NotAMinimumError",
    "WeightDecayTieWarning",
]


class FactorError(ValueError):
    """The factors (or a target, data or direction that goes with them) are invalid.

    Raised for depth < 2, mismatched or empty shapes, non-finite or complex entries.
    The message names the offending factor and its shape.

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import FactorChain
    >>> try:
    ...     FactorChain([np.ones((3, 2)), np.ones((4, 2))])
    ... except FactorError as err:
    ...     print(err)
    factor W_2 has shape (4, 2) but W_1 has shape (3, 2): W_2 must have 3 columns (d_1 = 3)
    """


class NotAMinimumError(ValueError):
    """A closed form that only holds at a global minimum was given another point.

    The closed forms of Theorems 4 and 5 and Corollary 6 use ``M = W_L ... W_1``
    (Lemma 3); away from it the Hessian has the residual term of eq. 58 and the
    closed forms would return a silently wrong number. Use
    :func:`dmfsharp.numerical_sharpness` there instead.

    Examples
    --------
    >>> import numpy as np
    >>> from dmfsharp import sharpness
    >>> try:
    ...     sharpness([np.ones((1, 1)), np.ones((1, 1))], target=np.array([[2.0]]))
    ... except NotAMinimumError as err:
    ...     print(str(err)[:40])
    sharpness holds only at a global minimum
    """


class FactorFileError(ValueError):
    """A factors file is missing, unreadable, or does not hold a valid factor chain.

    Examples
    --------
    >>> from dmfsharp import load_factors
    >>> try:
    ...     load_factors("no-such-file.npz")
    ... except FactorFileError as err:
    ...     print(err)
    no-such-file.npz: no such file
    """


class ConvergenceError(ArithmeticError):
    """An iterative eigensolver did not reach its stated accuracy within its budget.

    One policy for every numerical route: a value is returned only when its stopping rule
    holds; otherwise this error is raised, carrying the best estimate so far in
    ``partial`` (the route's own result type, or ``None``) so nothing computed is lost.

    Parameters
    ----------
    message : str
        What did not converge, and how far it got.
    partial : object, optional
        The best estimate so far (the route's own result type), or None.

    Attributes
    ----------
    partial : object or None
        As passed.
    """

    def __init__(self, message: str, partial: object = None) -> None:
        super().__init__(message)
        self.partial = partial


class MemoryLimitError(ValueError):
    """A request would allocate more memory than dmfsharp allows (see :mod:`dmfsharp.limits`).

    Raised before anything is allocated; the message states the size asked for, the limit
    and, where one exists, the matrix-free alternative.
    """


class Float64OverflowError(ArithmeticError):
    """The exact value exists but is not representable in float64 (it overflows)."""


class WeightDecayTieWarning(UserWarning):
    """The regularized scalar problem has two global minimizers of equal value (``mu = mu*(sigma)``).

    On this measure-zero set ``s = 0`` and the nonzero local minimum of
    ``(sigma - s^L)^2 + mu L s^2`` have the same value, so the global minimizer of
    ``L_mu`` (and its layer norms) is not unique; dmfsharp returns the nonzero one
    (:mod:`dmfsharp.regularized`).

    Examples
    --------
    For ``L = 3`` and ``sigma = 2`` the threshold is ``mu* = 1``:

    >>> import warnings
    >>> from dmfsharp.regularized import scalar_minimizer
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     s = scalar_minimizer(2.0, 3, weight_decay=1.0)
    >>> [w.category.__name__ for w in caught], round(s, 12)
    (['WeightDecayTieWarning'], 1.0)
    """
