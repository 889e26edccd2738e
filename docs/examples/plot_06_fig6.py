r"""
Figure 6: 20-layer scalar factorization
=======================================

Figure 6 of the paper, with the widths printed in its Appendix D.2 (exact :math:`\lambda_{\max}` from Theorem 4).

Reduced for the gallery: a 61 x 61 loss map. Full size:
``dmfsharp escape --preset fig6 --out fig6`` (or ``dmfsharp reproduce --out results``).
"""

import textwrap

import dmfsharp as dmf

preset = dmf.get_preset("fig6")
print(textwrap.fill(preset.note, 88))

result = preset.run()
for run in result.runs:
    print(
        f"eta = {run.step_multiplier:.3g} x 2/lambda_max: {run.status}, "
        f"escape at {run.escape_iteration}, linear prediction "
        + (f"{run.predicted_escape_iteration:.1f}" if run.predicted_escape_iteration else "none")
    )

fig = dmf.plot_escape(result, grid=61, title=f"{preset.figure}: {preset.title}", rows=preset.rows)
