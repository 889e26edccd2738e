"""
A sweep's statistics (tiny, in-process)
=======================================

A sweep runs many escape experiments over random minimizers. Here a tiny spec (two
depths, four seeds, three step sizes) runs in-process, without Dask; the same spec runs on
a cluster with ``dmfsharp sweep SPEC.toml --out DIR``. We tabulate the fraction of runs that
escape, with 95% Wilson intervals, against ``eta lambda_max / 2``.
"""

import matplotlib.pyplot as plt
import pandas as pd

from dmfsharp.sweep import parse_spec, run_task, summary_table

spec = parse_spec(
    {
        "sweep": {
            "name": "gallery",
            "seeds": 4,
            "depths": [2, 3],
            "d0": [1],
            "dL": [1],
            "widths": [2, 4],
            "radius": 1e-10,
            "step_multipliers": [0.9, 1.1, 1.5],
            "iterations": 3000,
            "engine": "numpy",
        }
    }
)
rows = [row for task in spec.tasks() for row in run_task(task)["rows"]]
df = pd.DataFrame(rows)
table = summary_table(df)
print(table[["depth", "step_multiplier", "runs", "escaped", "returned", "p_escape"]])

fig, ax = plt.subplots(figsize=(6, 3.5), layout="constrained")
for (depth, grp), marker, dx in zip(table.groupby("depth"), "os", (-0.01, 0.01), strict=False):
    x = grp["step_multiplier"] + dx  # small offsets keep coinciding depths apart
    err = [grp["p_escape"] - grp["p_escape_lo"], grp["p_escape_hi"] - grp["p_escape"]]
    ax.errorbar(x, grp["p_escape"], yerr=err, fmt=marker, capsize=3, label=f"depth {depth}")
ax.axvline(1.0, color="0.5", ls="--", lw=0.8)
ax.set_xlabel(r"$\eta\,\lambda_{\max}/2$")
ax.set_ylabel("fraction escaped (95% Wilson)")
ax.set_ylim(-0.05, 1.05)
ax.set_title("escape from random minima: runs by step size")
ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5))
