"""Guard of the redesign: ``dmfsharp reproduce`` gives the numbers it gave before it.

The baseline in ``tests/data/reproduce_baseline/`` was written by ``dmfsharp reproduce``
before the one-code-path redesign; every number of every preset's ``summary.json`` must
come out identical (bit for bit: the GD engines are deterministic for a seed).
"""

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
compare_reproduce = importlib.import_module("compare_reproduce")


@pytest.mark.slow
def test_reproduce_numbers_identical_to_baseline(tmp_path):
    pytest.importorskip("matplotlib")
    from dmfsharp.cli import main

    out = tmp_path / "results"
    assert main(["reproduce", "--out", str(out)]) == 0
    assert compare_reproduce.compare(out) == []


def test_compare_detects_a_changed_number(tmp_path):
    baseline = compare_reproduce.load_baseline(compare_reproduce.BASELINE)
    old = baseline["fig1"]["lambda_max"]
    new = old * (1 + 2**-52)  # one unit in the last place
    for name, doc in baseline.items():
        (tmp_path / name).mkdir()
        if name == "fig1":
            doc = dict(doc, lambda_max=new)
        (tmp_path / name / "summary.json").write_text(compare_reproduce.json.dumps(doc))
    assert compare_reproduce.compare(tmp_path) == [f"fig1: lambda_max: {new!r} != {old!r}"]
