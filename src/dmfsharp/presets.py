"""The paper's escape experiments (Figures 1-7) as typed, frozen, seeded configurations.

Each preset builds its minimum with the recipe of Appendix D.2 (Gaussian factors
``W_i ~ N(0, 1)`` of the given dims, ``M :=`` their product, via
:func:`dmfsharp.random_minimizer` with the preset's seed) and runs
:func:`dmfsharp.dynamics.escape_experiment` from ``w* + r v_1``. The paper does not
print its step sizes or iteration counts (they are only in the lost figure legends), so
every preset takes multipliers of ``2 / lambda_max`` on the side(s) of the threshold its
figure shows, and an iteration budget long enough for the escaped runs to settle at
these sizes. Where the paper's numbers disagree with each other, ``note`` says which
one is followed and why.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .chain import FactorChain
from .minima import check_dims, random_minimizer
from .regularized import regularized_minimizer

if TYPE_CHECKING:
    from .dynamics import EscapeResult
    from .dynamics.train_results import TrainResult

__all__ = [
    "EscapePreset",
    "PRESETS",
    "get_preset",
    "preset_names",
    "TrainPreset",
    "TRAIN_PRESETS",
    "get_train_preset",
]

# Presets whose figure has one row in the paper although both sides of 2/lambda_max are run.
_ROWS: dict[str, int] = {"fig1": 1}

# The layer widths printed in Appendix D.2 for Figure 6 (d_0, ..., d_20).
_FIG6_DIMS = (1, 9, 4, 8, 24, 16, 17, 11, 21, 3, 22, 3, 3, 15, 3, 18, 17, 16, 5, 12, 1)


@dataclass(frozen=True)
class EscapePreset:
    """One escape experiment: a minimum, a start radius, step sizes, a budget, a seed.

    Attributes
    ----------
    name : str
        Key, e.g. ``"fig1"``.
    figure : str
        The paper's figure it reproduces.
    title : str
        One-line description.
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    radius : float
        ``r = ||w_0 - w*||``.
    step_multipliers : tuple of float
        ``eta lambda_max / 2`` of each run.
    iterations : int
        GD steps per run (at most).
    seed : int
        Seed of the minimum (``random_minimizer``) and of any random direction.
    note : str
        How the paper's numbers were resolved.
    direction, plane : str
        Start direction and landscape plane (the paper: ``"top"``, ``"hessian"``).
    weight_decay : float
        ``mu`` (0: eq. 15). With ``mu > 0`` the target is the seeded Gaussian minimum's
        product ``M`` and the start point the global minimizer of ``L_mu``
        (:func:`dmfsharp.regularized_minimizer`, same seed); ``2 / lambda_max`` is of ``L_mu``.
    grid : int
        Points per axis of the contour map.

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025 (Section 7, Figures 1-7, Appendix D.2).

    Examples
    --------
    >>> from dmfsharp import sharpness
    >>> fig1 = get_preset("fig1")
    >>> fig1.dims, fig1.depth, fig1.num_params  # W_1 = R^T (20 x 20), W_2 = L (10 x 20)
    ((20, 20, 10), 2, 600)
    >>> tiny = fig1.replace(dims=(2, 2, 2), iterations=20, grid=5, step_multipliers=(1.5,))
    >>> tiny.run().lambda_max == sharpness(tiny.minimum())
    True
    >>> tiny.to_dict()["num_params"]
    8
    """

    name: str
    figure: str
    title: str
    dims: tuple[int, ...]
    radius: float
    step_multipliers: tuple[float, ...]
    iterations: int
    seed: int = 0
    note: str = ""
    direction: str = "top"
    plane: str = "hessian"
    grid: int = 201
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", check_dims(self.dims))
        object.__setattr__(self, "step_multipliers", tuple(float(c) for c in self.step_multipliers))
        if not self.radius > 0:
            raise ValueError(f"preset {self.name}: radius must be positive, got {self.radius}")
        if int(self.iterations) < 1:
            raise ValueError(f"preset {self.name}: iterations must be >= 1")

    @property
    def depth(self) -> int:
        """``L``."""
        return len(self.dims) - 1

    @property
    def num_params(self) -> int:
        """``N = sum_i d_i d_{i-1}`` (eq. 16)."""
        return sum(a * b for a, b in zip(self.dims, self.dims[1:], strict=False))

    @property
    def rows(self) -> int | None:
        """Rows of the figure: 1 for Figure 1 (one row in the paper), else None (automatic).

        None lets :func:`dmfsharp.plots.plot_escape` draw two rows, ``eta > 2/lambda_max``
        above and ``eta <= 2/lambda_max`` below, as in the paper's Figures 2-7.
        """
        return _ROWS.get(self.name)

    def target(self) -> np.ndarray:
        """``M``: the product of the seeded Gaussian minimum of Appendix D.2.

        Returns
        -------
        ndarray, shape (d_L, d_0)
            The target of the preset's experiment, float64.
        """
        return random_minimizer(self.dims, seed=self.seed).product

    def minimum(self) -> FactorChain:
        """Return the seeded Gaussian minimum of Appendix D.2, or with weight decay that of ``L_mu``.

        Returns
        -------
        FactorChain
            :func:`dmfsharp.random_minimizer` of :attr:`dims` with :attr:`seed` (``M`` is its
            product); with :attr:`weight_decay` the balanced minimizer
            :func:`dmfsharp.regularized_minimizer` of ``L_mu`` for that ``M``.
        """
        if self.weight_decay:
            return regularized_minimizer(
                self.target(), self.dims, weight_decay=self.weight_decay, seed=self.seed
            )
        return random_minimizer(self.dims, seed=self.seed)

    def replace(self, **changes: Any) -> EscapePreset:
        """Return a copy with some fields changed (e.g. a smaller ``iterations`` budget).

        Parameters
        ----------
        **changes
            New values of fields, by name.

        Returns
        -------
        EscapePreset
            The changed, re-validated copy.

        Raises
        ------
        TypeError
            If a name is not a field.
        ValueError
            If a new value is invalid (dims, radius or iterations).
        """
        return dataclasses.replace(self, **changes)

    def run(self, **options: Any) -> EscapeResult:
        """Run :func:`dmfsharp.escape_experiment` with this configuration.

        Parameters
        ----------
        **options
            Passed on to :func:`dmfsharp.escape_experiment` (e.g. ``track_every``).

        Returns
        -------
        EscapeResult
            One run per step multiplier, with the loss-landscape map.
        """
        from .dynamics import escape_experiment

        if self.weight_decay:
            options = {"target": self.target(), "weight_decay": self.weight_decay, **options}
        return escape_experiment(
            self.minimum(),
            step_multipliers=self.step_multipliers,
            radius=self.radius,
            direction=self.direction,
            seed=self.seed,
            iterations=self.iterations,
            plane=self.plane,
            **options,
        )

    def to_dict(self) -> dict:
        """Return the configuration as plain JSON types, with ``depth`` and ``num_params``.

        Returns
        -------
        dict
            One key per field plus ``depth`` and ``num_params``; tuples become lists.
        """
        d = dataclasses.asdict(self)
        if not self.weight_decay:  # the paper's presets keep their configuration unchanged
            del d["weight_decay"]
        d["dims"] = list(self.dims)
        d["step_multipliers"] = list(self.step_multipliers)
        d["depth"] = self.depth
        d["num_params"] = self.num_params
        return d


_PRESET_LIST = [
    EscapePreset(
        name="fig1",
        figure="Figure 1",
        title="depth-2 factorization M = L R^T, L 10x20, R 20x20; eta >= 2/lambda_max",
        dims=(20, 20, 10),
        radius=1e-15,
        step_multipliers=(1.0, 1.1, 1.3, 1.5),
        iterations=4000,
        note=(
            "M = L R^T with L in R^{10x20}, R in R^{20x20}: W_1 = R^T (20x20), W_2 = L "
            "(10x20), so dims (d_0, d_1, d_2) = (20, 20, 10) and N = 600. The caption "
            "shows only eta >= 2/lambda_max; r = 1e-15 is below the rounding of w* "
            "(entries ~1), so the start is w* to rounding and the unstable runs escape "
            "from rounding noise. At 1.6 x 2/lambda_max this seed settles on a period-2 "
            "orbit instead of a minimum, so the largest step here is 1.5. What the run shows "
            "(seed 0): the three steps above 2/lambda_max escape at k = 174, 63, 42 (linear "
            "prediction 156, 61, 41), the loss catapults to order 1 and GD settles on flatter "
            "minima (lambda_max 195, 165, 149 against 225), each stable for its step; at "
            "eta = 2/lambda_max the run stays within rounding of w* (loss ~1e-32 ||M||^2)."
        ),
    ),
    EscapePreset(
        name="fig2",
        figure="Figure 2",
        title="15-layer scalar factorization; eta > 2/lambda_max escapes, = 2/lambda_max returns",
        dims=_FIG6_DIMS[:15] + (1,),
        radius=1e-12,
        step_multipliers=(1.0, 1.1, 1.3, 1.6),
        iterations=3000,
        note=(
            "The paper does not list the 15-layer widths ('generated randomly', D.2). "
            "The widths it prints for Fig. 6 and Fig. 7 share the prefix "
            "1, 9, 4, 8, 24, ..., i.e. one random draw truncated per depth, so this "
            "preset takes the first 15 widths of that list closed by d_15 = 1. Panels a-c "
            "show the three steps above 2/lambda_max: they escape at k = 122, 48, 29 (linear "
            "prediction 121, 47, 28) and settle on minima with lambda_max 0.90, 0.77, 0.62 "
            "of the start's. Panels d-f show eta = 2/lambda_max: the run oscillates along v_1 "
            "with a constant amplitude (|1 - eta lambda_max| = 1, neutral in the linear "
            "theory) and its loss stays at its starting value, 1.04e-23 ||M||^2, for all "
            "3000 steps (status 'returned': it ends no farther from w* than it started). The "
            "paper says GD converges at this step size; this run does not converge, it stays "
            "where it started."
        ),
    ),
    EscapePreset(
        name="fig3",
        figure="Figure 3",
        title="15-layer scalar factorization, r = 1e-9; step sizes on both sides of 2/lambda_max",
        dims=_FIG6_DIMS[:15] + (1,),
        radius=1e-9,
        step_multipliers=(0.5, 0.9, 1.1, 1.3, 1.6),
        iterations=3000,
        note=(
            "Same 15-layer widths as fig2 (see there). The paper's two contour maps are the "
            "two rows here: eta > 2/lambda_max above (escapes at k = 84, 33, 20, predicted "
            "83, 32, 19; the trajectories swing along v_1, drift along v_N and end on flatter "
            "minima), eta < 2/lambda_max below (both runs return to w*; their loss reaches "
            "exactly 0 in floating point, drawn as a bar on the bottom axis)."
        ),
    ),
    EscapePreset(
        name="fig4",
        figure="Figure 4",
        title="depth-2 factorization M = L R^T, L 10x30, R 20x30",
        dims=(20, 30, 10),
        radius=1e-10,
        step_multipliers=(0.9, 0.99, 1.05, 1.2, 1.5),
        iterations=4000,
        note=(
            "M = L R^T with L in R^{10x30}, R in R^{20x30}: dims (20, 30, 10), N = 900. "
            "The caption gives no radius; r = 1e-10 (inside the paper's range 1e-15 to "
            "1e-9) is used. Rows a-c and d-f show step sizes above and below "
            "2/lambda_max: the three above escape at k = 181, 52, 25 (predicted 180, 51, 25) "
            "and converge to flatter minima; 0.9 and 0.99 x 2/lambda_max return to w*."
        ),
    ),
    EscapePreset(
        name="fig5",
        figure="Figure 5",
        title="depth-2 factorization M = L R^T, L 25x30, R 20x30",
        dims=(20, 30, 25),
        radius=1e-10,
        step_multipliers=(0.9, 0.99, 1.05, 1.2, 1.5),
        iterations=4000,
        note=(
            "M = L R^T with L in R^{25x30}, R in R^{20x30}: dims (20, 30, 25), N = 1350. "
            "No radius in the caption; r = 1e-10 as for fig4. The three steps above "
            "2/lambda_max escape at k = 183, 52, 26 (predicted 183, 52, 25) and converge to "
            "flatter minima; 0.9 and 0.99 x 2/lambda_max return to w*."
        ),
    ),
    EscapePreset(
        name="fig6",
        figure="Figure 6",
        title="20-layer scalar factorization, widths of Appendix D.2, r = 1e-9",
        dims=_FIG6_DIMS,
        radius=1e-9,
        step_multipliers=(0.5, 0.9, 1.1, 1.3, 1.6),
        iterations=4000,
        note=(
            "Widths exactly as printed in Appendix D.2 (21 numbers, depth 20, N = 2421, "
            "consistent with the caption). The steps above 2/lambda_max escape at k = 85, "
            "33, 20 (predicted 85, 33, 20) and settle on minima 0.90, 0.77, 0.62 times as "
            "sharp; below it both runs return and their loss reaches exactly 0."
        ),
    ),
    EscapePreset(
        name="fig7",
        figure="Figure 7",
        title="5-layer scalar factorization, r = 1e-12",
        dims=(1, 9, 4, 8, 24, 1),
        radius=1e-12,
        step_multipliers=(0.5, 0.9, 1.1, 1.3, 1.6),
        iterations=3000,
        note=(
            "Appendix D.2 prints widths 1, 9, 4, 8, 1 (depth 4, N = 85) but the caption "
            "says 5 layers and the text says N = 293. Widths 1, 9, 4, 8, 24, 1 (the Fig. 6 "
            "prefix closed by 1) give depth 5 and N = 9 + 36 + 32 + 192 + 24 = 293, "
            "matching both, so the printed list dropped the 24; it is restored here. The "
            "steps above 2/lambda_max escape at k = 117, 46, 27 (predicted 117, 45, 27) and "
            "settle on flatter minima; below it both runs return and their loss reaches "
            "exactly 0."
        ),
    ),
    EscapePreset(
        name="wd-escape",
        figure="Weight decay",
        title="escape at a regularized minimum, mu = 0.05 (about 0.22 mu*), r = 1e-10",
        dims=(2, 3, 3, 2),
        radius=1e-10,
        step_multipliers=(0.9, 1.1),
        iterations=3000,
        weight_decay=0.05,
        note=(
            "Not a figure of the paper (issue 15): M is the product of fig-style seeded "
            "Gaussian minimum (sigma = 0.660, 0.049; collapse threshold mu* = 0.228, local "
            "minimum limit 0.271 for L = 3), the start is the global minimizer of "
            "L_mu = ||M - P||^2 + mu sum ||W_k||^2 with mu = 0.05 and lambda_max is that of "
            "the Hessian of L_mu (the residual term included). 0.9 x 2/lambda_max returns, "
            "1.1 x 2/lambda_max escapes as the linear theory predicts."
        ),
    ),
]

#: The presets by name, in figure order.
PRESETS: dict[str, EscapePreset] = {p.name: p for p in _PRESET_LIST}


def preset_names() -> list[str]:
    """Return the names of the presets in figure order.

    Returns
    -------
    list of str
        The keys of ``PRESETS``.
    """
    return list(PRESETS)


def get_preset(name: str) -> EscapePreset:
    """Return the preset called ``name``.

    Parameters
    ----------
    name : str
        A key of ``dmfsharp.PRESETS`` (``"fig1"`` ... ``"fig7"`` and others).

    Returns
    -------
    EscapePreset
        The preset (immutable; change it with :meth:`EscapePreset.replace`).

    Raises
    ------
    ValueError
        If ``name`` is not a known preset (the message lists the known ones).

    References
    ----------
    A. Kamber and R. Parhi, Sharpness of Minima in Deep Matrix Factorization: Exact
    Expressions, arXiv:2509.25783, 2025. Section 7, Figures 1-7 and Appendix D.2.

    Examples
    --------
    >>> get_preset("fig2").figure
    'Figure 2'
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


# --------------------------------------------------------------------------- training


@dataclass(frozen=True)
class TrainPreset:
    """One training run of :func:`dmfsharp.dynamics.train.train`, typed and seeded.

    Attributes
    ----------
    name : str
        Key, e.g. ``"train-sharpening"``.
    title : str
        One-line description.
    dims : tuple of int
        ``(d_0, ..., d_L)``.
    init : str
        ``"gaussian"``, ``"orthogonal"`` or ``"identity"``.
    init_scale : float
        ``alpha``.
    eta_ratios : tuple of float
        Step sizes in units of ``eta_crit = 2 / lambda_flat(M)``.
    iterations : int
        Budget per run.
    seed : int
        Seed of the target (when drawn) and the initialization.
    target_diagonal : tuple of float, optional
        A diagonal target ``M = diag(...)`` instead of the seeded Gaussian one.
    track_hessian_every : int, optional
        Full-Hessian tracking period.
    note : str
        What the run shows (measured with this configuration).
    """

    name: str
    title: str
    dims: tuple[int, ...]
    init: str
    init_scale: float
    eta_ratios: tuple[float, ...]
    iterations: int
    seed: int
    target_diagonal: tuple[float, ...] | None = None
    track_hessian_every: int | None = None
    note: str = ""

    def target(self) -> Any:
        """``diag(target_diagonal)`` (``d_L x d_0``), or None for the seeded Gaussian target."""
        if self.target_diagonal is None:
            return None
        import numpy as np

        m = np.zeros((self.dims[-1], self.dims[0]))
        np.fill_diagonal(m, self.target_diagonal)
        return m

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a JSON-ready dict."""
        return dataclasses.asdict(self)

    def run(self, **overrides: Any) -> TrainResult:
        """Run :func:`dmfsharp.dynamics.train.train` with this configuration (and overrides)."""
        from .dynamics.train import train

        kw: dict[str, Any] = dict(
            init=self.init,
            init_scale=self.init_scale,
            eta_ratios=self.eta_ratios,
            iterations=self.iterations,
            seed=self.seed,
            target=self.target(),
            track_hessian_every=self.track_hessian_every,
        )
        kw.update(overrides)
        return train(self.dims, **kw)


#: The training presets by name.
TRAIN_PRESETS: dict[str, TrainPreset] = {
    p.name: p
    for p in [
        TrainPreset(
            name="train-sharpening",
            title="small Gaussian init: progressive sharpening into the edge of stability",
            dims=(4, 8, 8, 3),
            init="gaussian",
            init_scale=0.05,
            eta_ratios=(0.9, 1.01),
            iterations=3000,
            seed=3,
            track_hessian_every=50,
            note=(
                "From alpha = 0.05 the Gauss-Newton sharpness rises from 0.01 to the edge within "
                "~20 steps. Below eta_crit (0.9) GD converges to a minimum with lambda eta / 2 < 1; "
                "just above (1.01) no minimum is stable: lambda hovers at 2/eta while the loss "
                "falls non-monotonically (edge of stability) and GD settles on a period-2 orbit "
                "whose oscillation of P is rank one, in P's top singular subspace."
            ),
        ),
        TrainPreset(
            name="train-catapult",
            title="large Gaussian init above 2/eta: a catapult",
            dims=(4, 8, 8, 3),
            init="gaussian",
            init_scale=0.8,
            eta_ratios=(0.15, 0.3),
            iterations=1000,
            seed=3,
            note=(
                "The start is sharper (lambda = 624) than 2/eta for both runs. At 0.3 eta_crit "
                "the loss spikes about 3x, the sharpness drops (397 -> 268) and GD lands on a "
                "minimum with lambda = 95 < 2/eta = 155 (a catapult); at 0.15 eta_crit the loss "
                "falls without a spike."
            ),
        ),
        TrainPreset(
            name="train-above-critical",
            title="balanced identity init, step sizes across eta_crit",
            dims=(5, 5, 5, 5),
            init="identity",
            init_scale=0.1,
            eta_ratios=(0.95, 1.1, 1.5, 2.5),
            iterations=4000,
            seed=0,
            target_diagonal=(2.0, 1.5, 1.0, 0.5, 0.2),
            note=(
                "From the balanced start 0.1 I with a diagonal target, 0.95 eta_crit converges "
                "to a flat minimum (lambda eta / 2 = 0.95); above eta_crit no global minimum is "
                "stable: 1.1 settles on a period-2 orbit, 1.5 on a longer orbit, 2.5 diverges."
            ),
        ),
    ]
}


def get_train_preset(name: str) -> TrainPreset:
    """Return the training preset called ``name``.

    Parameters
    ----------
    name : str
        A key of ``TRAIN_PRESETS``.

    Returns
    -------
    TrainPreset
        The preset.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the known ones).
    """
    try:
        return TRAIN_PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown training preset {name!r}; known: {', '.join(TRAIN_PRESETS)}") from None
