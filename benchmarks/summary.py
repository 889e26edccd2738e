"""Print the README's table of measured ratios from ``benchmarks/results/*.json``.

python benchmarks/summary.py
"""

from __future__ import annotations

import json

from common import RESULTS


def load(name):
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def main():
    lines = ["| target | measured | ratio |", "|---|---|---|"]
    s = load("sharpness")
    if s:
        for case in s["cases"].values():
            rows = {r["route"]: r for r in case["rows"]}
            ex = rows["exact (dmfsharp.sharpness)"]
            n = f"N = {case['num_params']:,}"
            for r in case["rows"][1:]:
                if r.get("to_target") or r["route"] == "pyhessian-power (default tol)":
                    if r.get("time") is None:
                        continue
                    lines.append(
                        f"| 1. λ_max, {n}: {r['route']} vs exact | {r['time']:.3g} s "
                        f"({r['num_hvp']} HVPs, rel. err. {r['rel_err']:.0e}) vs "
                        f"{ex['time']:.3g} s | **{r['ratio']:.0f}×** |"
                    )
    sc = load("scaling")
    if sc:
        for p in sc["points"]:
            if p["num_params"] < 9e5:
                continue
            t = p["times"]
            ex = t["exact (dmfsharp.sharpness)"]
            num = {k: v for k, v in t.items() if "eigsh" in k or "lanczos" in k}
            k = min(num, key=num.get)
            lines.append(
                f"| 1. λ_max, dims ({sc['ends']}, d, …, d, {sc['ends']}), N = "
                f"{p['num_params']:,}: fastest, {k} vs exact | {num[k]:.3g} s "
                f"({p['num_hvp'][k]} HVPs, rel. err. {p['rel_err'][k]:.0e}) vs {ex:.3g} s | "
                f"**{num[k] / ex:.0f}×** |"
            )
    f = load("floor")
    if f:
        for name, case in f["cases"].items():
            lines.append(
                f"| 2. exact / one loss+gradient, {name} (d_0 d_L = "
                f"{case['dims'][0] * case['dims'][-1]:,}) | NumPy; PyTorch autograd | "
                f"**{case['ratio_exact_vs_numpy_loss_grad_paired']:.2f}×**; "
                f"{case['ratio_exact_vs_torch_loss_grad_paired']:.2f}× |"
            )
    m = load("memory")
    if m:
        r = m["rows"][0]
        lines.append(
            f"| 3. d_0 d_L = {m['d0_dL']:,} (dense S: {m['dense_S_bytes'] / 1e9:.1f} GB), "
            f"N = {m['num_params']:,} | {r['time']:.2f} s, peak {r['traced_MB']:.0f} MiB "
            f"traced, {r['rss_MB']:.0f} MiB RSS | {r['traced_over_factors']:.1f}× factor bytes |"
        )
    sc = load("scaling")
    if sc:
        sl = sc["slopes_N_ge_1e5"]
        lines.append(
            f"| 4. log-log slope of time vs N (N ≥ 1e5) | exact "
            f"{sl.get('exact (dmfsharp.sharpness)', float('nan')):.2f}, loss+gradient "
            f"{sl.get('loss+gradient (NumPy)', float('nan')):.2f} | |"
        )
    g = load("gd")
    if g:
        for r in g["rows"]:
            if "us_per_run_step" in r:
                lines.append(
                    f"| 5. GD, Fig. 6, 8 step sizes: {r['route']} | "
                    f"{r['us_per_run_step']:.1f} µs per run×step | "
                    f"**{r['speedup_vs_plain_torch']:.1f}×** plain PyTorch |"
                )
        if g.get("reproduce"):
            lines.append(f"| 5. `dmfsharp reproduce` (defaults) | {g['reproduce']['wall_s']:.1f} s wall | |")
    ls = load("landscape")
    if ls:
        for r in ls["rows"]:
            if "time" in r:
                lines.append(
                    f"| 6. {ls['grid']}×{ls['grid']} map, Fig. 1: {r['route']} | "
                    f"{r['time']:.3f} s | {r['speedup_vs_pointwise']:.1f}× pointwise |"
                )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
