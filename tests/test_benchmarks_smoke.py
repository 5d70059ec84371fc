"""The benchmark harness still runs (its in-process sections, at toy sizes; no wrk, nginx or proxies).

The real figures come from `python benchmarks/run.py`: see docs/performance.md.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def load_harness(monkeypatch: pytest.MonkeyPatch) -> Any:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    harness = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_run", harness)  # dataclasses look their module up
    spec.loader.exec_module(harness)
    return harness


def test_smoke_run_writes_every_in_process_figure(tmp_path, capsys, monkeypatch):
    harness = load_harness(monkeypatch)
    out = tmp_path / "bench.json"
    sections = "cassette,recording,audit,memory,inprocess"
    argv = ["--smoke", "--only", sections, "--keep", str(tmp_path / "work")]
    assert harness.main([*argv, "--json", str(out)]) == 0

    results = json.loads(out.read_text())
    figures = {f["id"]: f for f in results["figures"]}
    assert list(figures) == ["5", "6", "7", "7b", "8", "9", "12"]
    assert all(f["measured"] is not None and f["measured"] > 0 for f in figures.values())
    assert results["cassette"]["replay"]["tmproxy_hits"] == results["cassette"]["count"]
    assert {s["token_every"] for s in results["recording"].values()} == {0, 10}
    assert results["inprocess"]["tmproxy"]["served"] == results["inprocess"]["count"]
    assert "figure" in capsys.readouterr().out


def test_smoke_suites_section_runs_both_suites_and_pytest_alone(tmp_path, monkeypatch):
    harness = load_harness(monkeypatch)
    out = tmp_path / "bench.json"
    argv = ["--smoke", "--only", "suites", "--keep", str(tmp_path / "work"), "--json", str(out)]
    assert harness.main(argv) == 0

    results = json.loads(out.read_text())
    assert [f["id"] for f in results["figures"]] == ["11"]
    # each suite ran (a failing one raises); at toy size the ratio itself may be noise or undefined
    seconds = results["suites"]["seconds"]
    assert set(seconds) == {"tm_proxy", "vcrpy", "empty"}
    assert all(len(runs) == 1 and runs[0] > 0 for runs in seconds.values())


def test_the_live_traffic_is_a_compliant_app_and_its_10_to_1_mix(tmp_path, monkeypatch):
    """The live benchmark's calls (wrk and nginx are not needed to check them)."""
    monkeypatch.syspath_prepend(str(RUN.parent))
    import bench_live as live

    from proxy.audit.engine import audit_exchanges
    from proxy.audit.partner_api import RequestKind, request_kind
    from proxy.audit.rules import all_rules
    from proxy.cassette import load_cassette

    mix = live.mixed_calls(live.PERIOD)
    api = [c for c in mix if c.answer in ("top_picks", "event", "cart")]
    assert len(mix) == 11 * len(api)
    assert {request_kind(c.method, c.path.split("?")[0]) for c in mix} >= {
        RequestKind.STATIC,
        RequestKind.OTHER,
    }
    calls = live.partner_calls(2 * live.PERIOD)
    found = audit_exchanges(live.cassette_exchanges(calls, 1.8e9), all_rules(live=True))
    assert {f.rule for f in found} == {"abandoned-cart"}  # the same cart, reserved again and again
    live.write_cassette(tmp_path / "mix.yaml", mix, 1.8e9)
    assert len(load_cassette(tmp_path / "mix.yaml").exchanges) == len(mix)
