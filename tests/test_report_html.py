"""The one HTML page builder (jinja2 templates shipped with the package) and the progress bar."""

from __future__ import annotations

import io

import pytest

from dmfsharp.progress import Progress

jinja2 = pytest.importorskip("jinja2")


def _summary(status: str) -> dict:
    run = {
        "run": 1,
        "step_multiplier": 0.9,
        "eta": 0.1,
        "status": status,
        "stop_reason": "max_iterations",
        "escape_iteration": None,
        "predicted_escape_iteration": 12.5,
        "peak_normalized_loss": 1e-20,
        "final_normalized_loss": 1e-22,
        "final_lambda_max": 18.0,
        "final_is_stable": True,
        "trace_file": "trace_run1.csv",
        "final_file": "final_run1.npz",
    }
    return {
        "dims": [1, 2, 1],
        "depth": 2,
        "num_params": 4,
        "radius": 1e-10,
        "seed": 0,
        "lambda_max": 20.0,
        "threshold_eta": 0.1,
        "escape_threshold": 1e-4,
        "files": ["summary.json"],
        "runs": [run],
    }


def test_run_index_escapes_text_and_formats_numbers(tmp_path):
    from dmfsharp.report import write_index

    entries = [{"folder": "a<b", "heading": "<script>x</script>", "note": "", "summary": _summary("escaped")}]
    write_index(tmp_path / "index.html", entries, title="T & <i>", intro="")
    html = (tmp_path / "index.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "T &amp; &lt;i&gt;" in html
    # 0.9 shown as written, eta * lambda_max / 2 = 0.1 * 18 / 2 = 0.9000, missing values as a dash
    assert "<td>0.9</td>" in html and "<td>0.9000</td>" in html and "\u2013" in html
    assert 'href="a&lt;b/trace_run1.csv"' in html


def test_sweep_index_renders_table_failures_and_spec(tmp_path):
    from dmfsharp.report import render_html

    render_html(
        tmp_path / "i.html",
        "sweep_index.html",
        title="Sweep s",
        intro="",
        counts={"done": 1, "failed": 1, "runs": 2},
        figures=[("escape_time.png", "Escape time")],
        columns=["depth", "p_escape"],
        table=[[2, 0.25]],
        failed=[("abc", "ValueError: <bad>")],
        spec_json='{"name": "s"}',
    )
    html = (tmp_path / "i.html").read_text()
    assert "<td>2</td><td>0.25</td>" in html and "ValueError: &lt;bad&gt;" in html
    assert 'src="escape_time.png"' in html and "Failed tasks (1)" in html


def test_plain_progress_without_a_terminal():
    out = io.StringIO()
    with Progress(3, "sweep s", stream=out, initial=1) as bar:
        bar.update(1, postfix="0 failed")
        bar.update(1)
    assert out.getvalue().splitlines()[-1] == "sweep s: 3/3 task (100%) | 0 failed"
    silent = Progress(3, "x", stream=None)
    silent.update(3)
    silent.close()
