"""Benchmark figure 11: a test suite replaying through the `tm_proxy` fixture against plain vcrpy.

    python benchmarks/bench_suites.py [--tests 20] [--rounds 5] [--json results.json]

Writes, into a temporary folder, three test files: `--tests` tests marked
`tm_cassette("compliant.yaml")` that fetch Top Picks with `requests` through `tm_proxy`, the same
tests with vcrpy's `use_cassette` on the same cassette, and an empty file (pytest's own start-up,
the tmproxy plugin's import included). Each runs as `python -m pytest -q -p no:cacheprovider FILE`,
in rounds whose order rotates. The figure is the median over rounds of
(tm_proxy suite - empty) / (vcrpy suite - empty), wall time within the round. The same ratio of CPU
time (pytest's and the session proxy's, which pytest waits for) is beside it: on a shared machine it
moves far less from round to round, but it counts the proxy's start-up in full even where it runs
beside pytest's collection.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parent.parent / "cassettes" / "compliant.yaml"
TOP_PICKS = "/top-picks/v1/events/2000527EE48A9334"
PARAMS = '{"selection": "resale", "apikey": "REDACTED"}'
NO_TESTS_COLLECTED = 5  # pytest's exit code for the empty file

HEADER = """import pytest
import requests


def client():
    session = requests.Session()
    session.trust_env = False
    return session
"""

TM_PROXY_TEST = """

@pytest.mark.tm_cassette("compliant.yaml")
def test_top_picks_{n:02}(tm_proxy):
    picks = client().get(f"{{tm_proxy}}{path}", params={params}, timeout=30)
    assert picks.json()["fanSession"]["resaleSid"]["sessionId"]
"""

VCRPY_HEADER = """import vcr

REPLAY = vcr.VCR(record_mode="none")
"""

VCRPY_TEST = """

def test_top_picks_{n:02}():
    with REPLAY.use_cassette({cassette!r}):
        picks = client().get("https://app.ticketmaster.com{path}", params={params}, timeout=30)
    assert picks.json()["fanSession"]["resaleSid"]["sessionId"]
"""


def write_suites(folder: Path, tests: int) -> dict[str, Path]:
    """The three test files (and the cassette they replay) in `folder`."""
    cassettes = folder / "cassettes"
    cassettes.mkdir(parents=True, exist_ok=True)
    cassette = cassettes / "compliant.yaml"
    shutil.copy(SHIPPED, cassette)
    (folder / "pytest.ini").write_text("[pytest]\ntm_cassette_dir = cassettes\n")
    fields = {"path": TOP_PICKS, "params": PARAMS, "cassette": str(cassette)}
    suites = {
        "tm_proxy": HEADER + "".join(TM_PROXY_TEST.format(n=n, **fields) for n in range(tests)),
        "vcrpy": HEADER + VCRPY_HEADER + "".join(VCRPY_TEST.format(n=n, **fields) for n in range(tests)),
        "empty": "",
    }
    files = {}
    for name, text in suites.items():
        files[name] = folder / f"test_{name}.py"
        files[name].write_text(text)
    return files


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(folder: Path, test_file: Path) -> tuple[float, float]:
    """Wall and CPU time of one pytest run of the file, in seconds; fails loudly if a test failed."""
    cpu, started = children_cpu(), time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
    )
    elapsed, cpu = time.perf_counter() - started, children_cpu() - cpu
    if done.returncode not in (0, NO_TESTS_COLLECTED):
        raise RuntimeError(
            f"{test_file.name} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
        )
    return elapsed, cpu


def over_start_up(runs: dict[str, list[float]]) -> list[float]:
    """Per round: (tm_proxy - empty) / (vcrpy - empty)."""
    return [
        (tm - empty) / (vcrpy - empty)
        for tm, vcrpy, empty in zip(runs["tm_proxy"], runs["vcrpy"], runs["empty"], strict=True)
        if vcrpy > empty
    ]


def measure(folder: Path, tests: int, rounds: int) -> dict[str, Any]:
    files = write_suites(folder, tests)
    names = list(files)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            seconds, cpu_seconds = run_suite(folder, files[name])
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)
    ratios, cpu_ratios = over_start_up(wall), over_start_up(cpu)
    return {
        "tests": tests,
        "rounds": rounds,
        "seconds": wall,
        "cpu_seconds": cpu,
        "median_s": {name: statistics.median(values) for name, values in wall.items()},
        "median_cpu_s": {name: statistics.median(values) for name, values in cpu.items()},
        "ratios": ratios,
        "ratio": statistics.median(ratios) if ratios else None,
        "cpu_ratios": cpu_ratios,
        "cpu_ratio": statistics.median(cpu_ratios) if cpu_ratios else None,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tmproxy-suites-") as folder:
        results = measure(Path(folder), args.tests, args.rounds)
    medians = results["median_s"]
    print(
        f"{args.tests} tests: tm_proxy {medians['tm_proxy']:.2f} s, vcrpy {medians['vcrpy']:.2f} s, "
        f"empty {medians['empty']:.2f} s; (tm_proxy - empty) / (vcrpy - empty) = {results['ratio']:.2f} "
        f"(by CPU time {results['cpu_ratio']:.2f})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
