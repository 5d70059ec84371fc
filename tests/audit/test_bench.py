"""The audit benchmark runs and writes its JSON (the real sizes are run by hand: see docs/rules.md)."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

from proxy.audit.engine import audit_exchanges

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_audit.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_audit", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_writes_its_figures(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert load_bench().main(["--sizes", "300,600", "--repeat", "1", "--json", str(out)]) == 0
    results = json.loads(out.read_text())
    assert [run["interactions"] for run in results["runs"]] == [300, 600]
    assert results["ratio"] > 0
    assert "per-interaction cost ratio" in capsys.readouterr().out


def test_synthetic_traffic_only_trips_its_seeded_mistakes():
    found = Counter(f.rule for f in audit_exchanges(load_bench().synthetic_traffic(3000)))
    assert set(found) <= {"commit-not-put", "abandoned-cart"}
