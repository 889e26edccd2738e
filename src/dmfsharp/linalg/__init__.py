"""Linear algebra behind the closed forms: the Kronecker-sum operator ``S`` and the eigensolver.

:mod:`dmfsharp.linalg.kron` builds ``S = sum_k Gb_k (x) Ga_k`` densely or applies it
matrix-free; :mod:`dmfsharp.linalg.lanczos` finds extreme eigenpairs of a symmetric
operator given as a block product ``matmat``.
"""

from .lanczos import EigenPairs, top_eigenpairs

__all__ = ["EigenPairs", "top_eigenpairs"]
