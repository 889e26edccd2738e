r"""
Figure 5: depth-2 factorization, L 25×30, R 20×30
=================================================

Figure 5 of the paper (exact :math:`\lambda_{\max}` from Corollary 6).

Reduced for the gallery: a 61 x 61 loss map. Full size:
``dmfsharp escape --preset fig5 --out fig5`` (or ``dmfsharp reproduce --out results``).
"""

import textwrap

import dmfsharp as dmf

preset = dmf.get_preset("fig5")
print(textwrap.fill(preset.note, 88))

result = preset.run()
for run in result.runs:
    print(
        f"eta = {run.step_multiplier:.3g} x 2/lambda_max: {run.status}, "
        f"escape at {run.escape_iteration}, linear prediction "
        + (f"{run.predicted_escape_iteration:.1f}" if run.predicted_escape_iteration else "none")
    )

fig = dmf.plot_escape(result, grid=61, title=f"{preset.figure}: {preset.title}", rows=preset.rows)
