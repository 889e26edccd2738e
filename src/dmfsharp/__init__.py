"""dmfsharp: exact sharpness of minima in deep matrix factorization.

At a global minimum of ``L(w) = ||M - W_L ... W_1||_F^2`` the Hessian is ``2 K^T K``
(Lemma 3), so its largest eigenvalue, whole nonzero spectrum, trace and top
eigenvector follow from the ``d_0 d_L``-square matrix
``S = sum_k (B_k^T B_k) (x) (A_k A_k^T)`` (Theorem 5) without forming the Hessian.
Factors are passed W_1 first, ``W_i`` of shape ``(d_i, d_{i-1})``.
"""

from importlib import metadata as _metadata

from .chain import FactorChain, as_chain
from .diagnostics import Diagnosis, diagnose
from .dynamics import EscapeResult, RunResult, escape_experiment, gradient_descent, start_direction
from .dynamics.train import TrainResult, TrainRun, train
from .errors import FactorError, FactorFileError, NotAMinimumError, WeightDecayTieWarning
from .exact import (
    hessian_spectrum,
    hessian_trace,
    is_minimum,
    minimum_residual,
    sharpness,
    sharpness_matrix,
    sharpness_operator,
    top_eigenvector,
    zero_eigenvector,
)
from .flatness import (
    FlatnessReport,
    flat_sharpness,
    flatness_report,
    frobenius_imbalance,
    is_stable_step,
    layer_norm_products,
    sharpness_upper_bound,
    spectral_imbalance,
)
from .gauss_newton import gauss_newton_sharpness, layer_hessian_block, layer_sharpness
from .io import load_factors, save_factors
from .landscape import loss_grid, plane_directions
from .loss import (
    dense_hessian,
    gauss_newton_vector_product,
    gradient,
    hessian_operator,
    hessian_vector_product,
    loss,
    residual,
)
from .manifold import ManifoldPath, minima_path
from .minima import (
    flattest_minimizer,
    random_dims,
    random_minimizer,
    rescale,
    section6_example,
)
from .numeric import EigenResult, numerical_eigenvalues, numerical_sharpness
from .objective import NORMALIZATIONS, Objective, make_objective
from .plots import plot_escape, plot_minima_path, plot_sharpness
from .presets import PRESETS, EscapePreset, get_preset
from .regularized import (
    local_minimum_limit,
    regularized_minimizer,
    regularized_minimum_spectrum,
    scalar_minimizer,
    scalar_threshold,
    weight_decay_threshold,
)
from .torch_interop import from_torch, load_torch_factors
from .version import source_version as _source_version

try:
    __version__ = _metadata.version("dmfsharp")
except _metadata.PackageNotFoundError:  # a source tree on sys.path, not installed
    __version__ = _source_version()

__all__ = [
    # the factor chain
    "FactorChain",
    "as_chain",
    # exceptions
    "FactorError",
    "FactorFileError",
    "NotAMinimumError",
    "WeightDecayTieWarning",
    # closed forms at a global minimum
    "sharpness",
    "hessian_trace",
    "hessian_spectrum",
    "top_eigenvector",
    "zero_eigenvector",
    "sharpness_matrix",
    "sharpness_operator",
    "is_minimum",
    "minimum_residual",
    # loss and derivatives at any point
    "loss",
    "residual",
    "gradient",
    "hessian_vector_product",
    "gauss_newton_vector_product",
    "hessian_operator",
    "dense_hessian",
    # anywhere: the Gauss-Newton part and the diagonal (per-factor) blocks
    "gauss_newton_sharpness",
    "layer_sharpness",
    "layer_hessian_block",
    # deep linear networks with data (data=, covariance=, normalization= keywords)
    "NORMALIZATIONS",
    "Objective",
    "make_objective",
    # weight decay (weight_decay= keyword throughout; issue 15)
    "regularized_minimizer",
    "weight_decay_threshold",
    "local_minimum_limit",
    "regularized_minimum_spectrum",
    "scalar_minimizer",
    "scalar_threshold",
    # numerical references
    "numerical_sharpness",
    "numerical_eigenvalues",
    "EigenResult",
    # flatness, balance, stability
    "flatness_report",
    "FlatnessReport",
    "flat_sharpness",
    "sharpness_upper_bound",
    "layer_norm_products",
    "spectral_imbalance",
    "frobenius_imbalance",
    "is_stable_step",
    "diagnose",
    "Diagnosis",
    # minimizers
    "random_minimizer",
    "random_dims",
    "flattest_minimizer",
    "rescale",
    "section6_example",
    # the manifold of minima (Section 6)
    "minima_path",
    "ManifoldPath",
    "plot_minima_path",
    # PyTorch (optional; imported lazily)
    "from_torch",
    "load_torch_factors",
    # files
    "save_factors",
    "load_factors",
    # gradient-descent escape experiments (Section 7)
    "escape_experiment",
    "EscapeResult",
    "RunResult",
    "gradient_descent",
    "start_direction",
    # training from an initialization, sharpness tracked (edge of stability)
    "train",
    "TrainResult",
    "TrainRun",
    # loss-landscape maps (Appendix D.1)
    "plane_directions",
    "loss_grid",
    # the paper's figure presets and plots
    "EscapePreset",
    "PRESETS",
    "get_preset",
    "plot_escape",
    "plot_sharpness",
]
