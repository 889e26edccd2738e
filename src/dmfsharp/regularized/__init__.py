r"""Weight-decay-regularized deep matrix factorization (issue 15), one role per module.

.. math::

    L_\mu(w) = \|M - W_L \cdots W_1\|_F^2 + \mu \sum_{k=1}^L \|W_k\|_F^2, \qquad \mu \ge 0 .

The loss, gradient and Hessian-vector product of ``L_mu`` are those of :mod:`dmfsharp.loss`
(the ``weight_decay=`` keyword, :attr:`dmfsharp.objective.Objective.weight_decay`); this
package adds what is special to the regularized problem:

- :mod:`.scalar`: the scalar problem ``min_s (sigma - s^L)^2 + mu L s^2``, its collapse
  threshold ``mu*`` and the limit of its nonzero local minimum;
- :mod:`.minima`: a global minimizer (balanced factors, seeded orthogonal freedom);
- :mod:`.spectrum`: the exact block-diagonal Hessian spectrum at the global minimizers;
- :mod:`.hessian`: the exact largest eigenvalue at any critical point (closed form for
  ``d_0 = d_L = 1``, dense or certified Lanczos otherwise), behind
  ``dmfsharp.sharpness(..., weight_decay=)`` and ``dmfsharp.hessian_spectrum``.

References
----------
A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
Expressions, arXiv:2509.25783, 2025.
A. Kamber and R. Parhi, On the Loss Landscape Geometry of Regularized Deep Matrix
Factorization: Uniqueness and Sharpness, arXiv:2603.27072, 2026.
"""

from .hessian import (
    REGULARIZED_SHARPNESS_METHODS,
    is_regularized_global_minimizer,
    regularized_scalar_spectrum,
    regularized_spectrum,
    regularized_top,
)
from .minima import regularized_minimizer
from .scalar import (
    local_minimum_limit,
    scalar_critical_points,
    scalar_minimizer,
    scalar_threshold,
    weight_decay_threshold,
)
from .spectrum import regularized_minimum_spectrum

__all__ = [
    "REGULARIZED_SHARPNESS_METHODS",
    "is_regularized_global_minimizer",
    "local_minimum_limit",
    "regularized_minimizer",
    "regularized_minimum_spectrum",
    "regularized_scalar_spectrum",
    "regularized_spectrum",
    "regularized_top",
    "scalar_critical_points",
    "scalar_minimizer",
    "scalar_threshold",
    "weight_decay_threshold",
]
