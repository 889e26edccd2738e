r"""
Figure 1: depth-2 factorization, step sizes at and above 2/λ_max
================================================================

Figure 1 of the paper: :math:`M = LR^\top` with :math:`L \in \mathbb{R}^{10\times 20}`, :math:`R \in \mathbb{R}^{20\times 20}`, GD started :math:`10^{-15}` from the minimum along :math:`v_1`. The paper draws this figure in one row.

Reduced for the gallery: a 61 x 61 loss map. Full size:
``dmfsharp escape --preset fig1 --out fig1`` (or ``dmfsharp reproduce --out results``).
"""

import textwrap

import dmfsharp as dmf

preset = dmf.get_preset("fig1")
print(textwrap.fill(preset.note, 88))

result = preset.run()
for run in result.runs:
    print(
        f"eta = {run.step_multiplier:.3g} x 2/lambda_max: {run.status}, "
        f"escape at {run.escape_iteration}, linear prediction "
        + (f"{run.predicted_escape_iteration:.1f}" if run.predicted_escape_iteration else "none")
    )

fig = dmf.plot_escape(result, grid=61, title=f"{preset.figure}: {preset.title}", rows=preset.rows)
