r"""
Figure 3: 15-layer scalar factorization, both sides of the threshold
====================================================================

Figure 3 of the paper: its two contour maps are the two rows, :math:`\eta > 2/\lambda_{\max}` above and :math:`\eta < 2/\lambda_{\max}` below; the stable runs reach a loss of exactly 0, drawn as bars on the bottom axis.

Reduced for the gallery: a 61 x 61 loss map. Full size:
``dmfsharp escape --preset fig3 --out fig3`` (or ``dmfsharp reproduce --out results``).
"""

import textwrap

import dmfsharp as dmf

preset = dmf.get_preset("fig3")
print(textwrap.fill(preset.note, 88))

result = preset.run()
for run in result.runs:
    print(
        f"eta = {run.step_multiplier:.3g} x 2/lambda_max: {run.status}, "
        f"escape at {run.escape_iteration}, linear prediction "
        + (f"{run.predicted_escape_iteration:.1f}" if run.predicted_escape_iteration else "none")
    )

fig = dmf.plot_escape(result, grid=61, title=f"{preset.figure}: {preset.title}", rows=preset.rows)
