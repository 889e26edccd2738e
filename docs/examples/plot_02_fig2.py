r"""
Figure 2: 15-layer scalar factorization, two rows
=================================================

Figure 2 of the paper: panels (a)–(c) show the step sizes above :math:`2/\lambda_{\max}` (they escape), panels (d)–(f) the step size :math:`\eta = 2/\lambda_{\max}`, at which this run oscillates with constant amplitude and its loss stays at its starting value (the paper reports convergence there).

Reduced for the gallery: a 61 x 61 loss map. Full size:
``dmfsharp escape --preset fig2 --out fig2`` (or ``dmfsharp reproduce --out results``).
"""

import textwrap

import dmfsharp as dmf

preset = dmf.get_preset("fig2")
print(textwrap.fill(preset.note, 88))

result = preset.run()
for run in result.runs:
    print(
        f"eta = {run.step_multiplier:.3g} x 2/lambda_max: {run.status}, "
        f"escape at {run.escape_iteration}, linear prediction "
        + (f"{run.predicted_escape_iteration:.1f}" if run.predicted_escape_iteration else "none")
    )

fig = dmf.plot_escape(result, grid=61, title=f"{preset.figure}: {preset.title}", rows=preset.rows)
