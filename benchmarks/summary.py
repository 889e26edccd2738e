"""Print the README's table of measured ratios from ``benchmarks/results/*.json``.

Every row names the results file it comes from, the machine, the thread count verified
inside that run (threadpoolctl and ``torch.get_num_threads``) and the 1-minute load
average at the start and end of the run.

python benchmarks/summary.py
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


SKIPPED = []


def load(name):
    """A results file of the corrected benchmarks (threads verified, load recorded), else None."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if "load_average" not in data or "threads_verified" not in data.get("environment", {}):
        SKIPPED.append(name)  # written by an older protocol: not reported
        return None
    return data


def context(data, name):
    """``file; machine; threads; load`` for one results file."""
    env = data.get("environment", {})
    tv = env.get("threads_verified", {})
    kernels = sorted({p["kernel"] for p in tv.get("pools", []) if isinstance(p, dict) and p.get("kernel")})
    machine = f"{env.get('cpu_count', '?')}-core {env.get('machine', '?')} ({'/'.join(kernels) or '?'})"
    threads = f"{tv.get('requested', '?')} thread{' (verified)' if tv.get('verified') else ' (NOT verified)'}"
    la = data.get("load_average")
    load_s = f"load {la['start'][0]:.1f}→{la['end'][0]:.1f}" if la else "load not recorded"
    return f"`{name}.json`: {machine}, {threads}, {load_s}"


def main():
    lines = []
    contexts = []

    def add_context(data, name):
        if data:
            contexts.append(context(data, name))

    s = load("sharpness")
    add_context(s, "sharpness")
    lines += ["| benchmark | measured | ratio |", "|---|---|---|"]
    if s:
        for case in s["cases"].values():
            n = f"N = {case['num_params']:,}"
            ex = case["rows"][0]
            for r in case["rows"][1:]:
                lines.append(
                    f"| λ_max, {n}: {r['route']} vs exact | {r['time']:.3g} s ({r['num_hvp']} HVPs, "
                    f"rel. err. {r['rel_err']:.0e}) vs {ex['time']:.3g} s | **{r['ratio']:.0f}×** |"
                )
            sv = case.get("start_vector_sensitivity")
            if sv:
                parts = []
                for route, runs in sv["routes"].items():
                    counts = "/".join(str(x.get("num_hvp", "failed")) for x in runs)
                    parts.append(f"{route} {counts}")
                lines.append(
                    f"| λ_max, {n}: HVPs at eigsh tol {sv['tol']:g}, start-vector seeds "
                    f"{'/'.join(map(str, sv['seeds']))} | {'; '.join(parts)} | |"
                )
    sc = load("scaling")
    add_context(sc, "scaling")
    if sc:
        for p in sc["points"]:
            if p["num_params"] < 9e5:
                continue
            rat = p["ratio_to_exact_paired"]
            num = {k: v for k, v in rat.items() if "eigsh" in k or "lanczos" in k}
            k = min(num, key=num.get)
            lines.append(
                f"| λ_max, dims ({sc['ends']}, d, …, d, {sc['ends']}), N = {p['num_params']:,}: fastest, {k} "
                f"vs exact | {p['times'][k]:.3g} s ({p['num_hvp'][k]} HVPs, rel. err. {p['rel_err'][k]:.0e}) "
                f"vs {p['times']['exact (dmfsharp.sharpness)']:.3g} s | **{num[k]:.0f}×** |"
            )
        sl = sc.get("slopes_N_ge_1e5", {})
        if sl:
            lines.append(
                f"| log-log slope of time vs N (the points with N ≥ 1e5) | exact "
                f"{sl.get('exact (dmfsharp.sharpness)', float('nan')):.2f}, lean loss+gradient "
                f"{sl.get('loss+gradient (lean NumPy)', float('nan')):.2f} | |"
            )
    f = load("floor")
    add_context(f, "floor")
    if f:
        for name, case in f["cases"].items():
            d0dl = case["dims"][0] * case["dims"][-1]
            lines.append(
                f"| exact / one lean loss+gradient, {name} (d_0 d_L = {d0dl:,}) | NumPy; PyTorch | "
                f"**{case['ratio_exact_vs_lean_numpy']:.1f}×**; {case['ratio_exact_vs_lean_torch']:.1f}× |"
            )
            lines.append(
                f"| prototype (mean-field Davidson) / lean NumPy loss+gradient, {name} | "
                f"dmfsharp's validated loss+gradient: "
                f"{case['ratio_dmfsharp_lg_vs_lean_numpy']:.2f}× the lean one | "
                f"**{case['ratio_prototype_vs_lean_numpy']:.1f}×** |"
            )
    pw = load("proto_wide_ends")
    add_context(pw, "proto_wide_ends")
    if pw:
        for name, case in pw["cases"].items():
            rows = {r["route"]: r for r in case["rows"]}
            mf = case["mean_field"]
            lines.append(
                f"| wide-ends prototype, {name}: {mf['steps']} Davidson steps "
                f"(Lanczos on S, same residual stop: "
                f"{case['lanczos_residual_stop']['steps']}), certified residual "
                f"{mf['certified_residual_rel']:.0e} | exact route now "
                f"{rows['dmfsharp.sharpness (exact route now)']['ratio']:.1f}× a lean loss+gradient | "
                f"**{rows['prototype: mean-field Davidson (total)']['ratio']:.1f}×** |"
            )
    m = load("memory")
    add_context(m, "memory")
    if m:
        r = m["rows"][0]
        lines.append(
            f"| memory, d_0 d_L = {m['d0_dL']:,} (dense S: {m['dense_S_bytes'] / 1e9:.1f} GB), "
            f"N = {m['num_params']:,} | {r['time']:.2f} s wall, peak {r['traced_MB']:.0f} MiB "
            f"traced, {r['rss_MB']:.0f} MiB RSS | {r['traced_over_factors']:.1f}× factor bytes |"
        )
    g = load("gd")
    add_context(g, "gd")
    if g:
        for r in g["rows"]:
            if "us_per_run_step" in r:
                lines.append(
                    f"| GD, Fig. 6, 8 step sizes: {r['route']} | "
                    f"{r['us_per_run_step']:.1f} µs per run×step | "
                    f"**{r['speedup_vs_plain_torch']:.1f}×** plain PyTorch |"
                )
        if g.get("reproduce"):
            rp = g["reproduce"]
            lines.append(
                f"| `dmfsharp reproduce` (defaults) | {rp['cpu_s']:.1f} s CPU ({rp['wall_s']:.0f} s wall "
                f"under that load) | |"
            )
    ls = load("landscape")
    add_context(ls, "landscape")
    if ls:
        for r in ls["rows"]:
            if "time" in r:
                lines.append(
                    f"| {ls['grid']}×{ls['grid']} map, Fig. 1: {r['route']} | {r['time']:.3f} s | "
                    f"{r['speedup_vs_pointwise']:.1f}× pointwise |"
                )
    print("\n".join(lines))
    print("\nWhere each number was measured:\n")
    print("\n".join(f"- {c}" for c in contexts))
    if SKIPPED:
        print(f"- not reported (older protocol, no verified threads or load): {', '.join(SKIPPED)}")


if __name__ == "__main__":
    main()
