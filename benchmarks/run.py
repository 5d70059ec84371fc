"""tmproxy's performance figures (issue #7), each a ratio measured side by side in one run.

    python benchmarks/run.py --json bench.json            # everything, about 5 minutes
    python benchmarks/run.py --quick --json bench.json    # fewer and shorter rounds, under 2 minutes

Prints a table (figure, target, measured, met?) and writes every number to `--json`. Sections
(`--only live,faults,cassette,recording,audit,memory,inprocess,suites`):

- faults: `tmproxy run` with every `--fault` kind at rate 0 against without (figure 10), the same way.
- live: throughput under wrk (or aiohttp) through `tmproxy run --sid validate`, `tmproxy record`,
  `tmproxy replay` (10,000- and 10-interaction cassettes) and bare `mitmdump` in reverse mode, all in
  front of one nginx (or a small asyncio server), in interleaved rounds whose order rotates; each
  figure is the median over rounds of the ratio within a round. Figures 1-4 and 9; and 13-18, issue
  #15's table: run, record and replay against `null` (tmproxy's embedded mitmproxy without tmproxy's
  addons) on Top Picks traffic and on a 10:1 mix of static files and the app's own calls. `--before DIR`
  adds another checkout's `tmproxy run`. See `bench_live.py`.
- cassette: tmproxy's load and end-to-end replay of a 5,000-interaction cassette against vcrpy's
  (figures 5, 6; `bench_cassette.py`).
- recording: the cost of an append at 10,000 interactions against at 10 (figure 7), with the
  apikey as the only secret and with an OAuth token refreshed every 10 calls.
- audit: `audit_exchanges` over 10,000 and 100,000 interactions (figure 8; `bench_audit.py`).
- suites: 20 pytest tests replaying through the `tm_proxy` fixture against the same tests on plain
  vcrpy, each suite a pytest process, over pytest's own start-up (figure 11; `bench_suites.py`).
- inprocess: 5,000 requests (the requests library) served from a 5,000-interaction cassette by
  `tmproxy.replay` against `vcr.use_cassette` (figure 12; `bench_inprocess.py`).
- memory: peak memory (VmHWM) of `tmproxy replay` serving all of a 10,000-interaction cassette, beside
  the null proxy and a 10-interaction replay, and the index's Python heap (figure 9;
  `bench_replay_memory.py`). Overrides the live section's figure 9 (a replay under wrk, which serves
  only some of the interactions).

`--smoke` shrinks everything to seconds (the test suite runs it); its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for folder in (HERE, HERE.parent):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import bench_audit  # noqa: E402
import bench_cassette  # noqa: E402
import bench_inprocess  # noqa: E402
import bench_live as live  # noqa: E402
import bench_replay_memory  # noqa: E402
import bench_suites  # noqa: E402

SECTIONS = ("live", "faults", "cassette", "recording", "audit", "memory", "inprocess", "suites")
SLICE_S = 1.0  # live: one wrk run


@dataclass(frozen=True)
class Mode:
    name: str
    rounds: int = 5  # live: rounds over every proxy
    seconds: float = 5.0  # live: load per proxy and round, in slices of SLICE_S
    warmup: float = 1.0
    connections: int = 4
    replay_large: int = 10_000
    replay_small: int = 10
    cassette_count: int = 5_000
    cassette_repeat: int = 3
    vcrpy_cap: float = 30.0
    scaling_large: int = 10_000
    scaling_small: int = 10
    scaling_block: int = 500
    scaling_rounds: int = 5
    token_every: int = 10
    audit_sizes: tuple[int, int] = (10_000, 100_000)
    audit_repeat: int = 3
    suite_tests: int = 20
    suite_rounds: int = 9
    inprocess_count: int = 5_000
    memory_processes: bool = True  # memory: VmHWM of proxies (else only the index's heap)


MODES = {
    "full": Mode("full"),
    "quick": Mode(
        "quick", rounds=3, seconds=2.0, cassette_repeat=1, vcrpy_cap=5.0, scaling_block=300,
        scaling_rounds=2, audit_repeat=1, suite_rounds=3,
    ),
    "smoke": Mode(
        "smoke", rounds=1, seconds=1.0, warmup=0.0, replay_large=300, cassette_count=120, cassette_repeat=1,
        vcrpy_cap=0.5, scaling_large=200, scaling_block=40, scaling_rounds=2, audit_sizes=(300, 900),
        audit_repeat=1, inprocess_count=120, suite_tests=2, suite_rounds=1, memory_processes=False,
    ),
}  # fmt: skip


@dataclass
class Figure:
    id: str  # "1" to "9" as the issue numbers them; "7b" is an extra, stricter case of 7
    name: str
    target: str
    measured: float | None = None
    unit: str = ""
    met: bool | None = None
    note: str = ""

    def shown(self) -> str:
        if self.measured is None:
            return "not measured"
        value = self.measured
        text = f"{value:.3g}" if abs(value) < 1 else f"{value:.3f}" if abs(value) < 100 else f"{value:,.0f}"
        return f"{text}{self.unit}"


@dataclass
class Report:
    mode: Mode
    command: str
    figures: dict[str, Figure] = field(default_factory=dict)
    sections: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def figure(self, id: int | str, name: str, target: str, measured: float | None, unit: str = "",
               met: bool | None = None, note: str = "") -> None:  # fmt: skip
        self.figures[str(id)] = Figure(str(id), name, target, measured, unit, met, note)

    def in_order(self) -> list[Figure]:
        return sorted(self.figures.values(), key=lambda f: (int(f.id.rstrip("abcdef")), f.id))

    def to_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "mode": asdict(self.mode),
            "machine": machine(),
            "figures": [asdict(f) for f in self.in_order()],
            "notes": self.notes,
            **self.sections,
        }


def machine() -> dict[str, Any]:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": cpus,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


# Live throughput ---------------------------------------------------------------------------------------


NULL_TARGETS = [
    # (figure, what, proxy, its null, target): the issue #15 table, each proxy over the null proxy
    ("13", "tmproxy run --sid validate / null, Top Picks traffic", "run", "null", 0.90),
    ("14", "tmproxy record / null, Top Picks traffic", "record", "null", 0.85),
    ("15", "tmproxy replay ({n}) / null, Top Picks traffic", "replay_large", "null", 1.0),
    ("16", "tmproxy run --sid validate / null, 10:1 mix", "run_mix", "null_mix", 0.95),
    ("17", "tmproxy record / null, 10:1 mix", "record_mix", "null_mix", 0.95),
    ("18", "tmproxy replay ({n}, mix) / null, 10:1 mix", "replay_mix", "null_mix", 0.95),
]


def run_live(
    report: Report,
    mode: Mode,
    workdir: Path,
    cores: live.Cores,
    python_load: bool,
    before: Path | None = None,
) -> None:
    """Figures 1-4 and 9 (against bare mitmdump, issue #7) and 13-18 (against null, issue #15).

    Each proxy process takes both traffics where it can (null, run and record); replay needs a
    cassette of what it is asked, so the mix has its own replaying proxy and cassette, recorded from
    the same mix: what a user who recorded their app through `tmproxy record` replays. With `before`
    (another checkout), its `tmproxy run` takes turns with the others too: a change measured side by side.
    """
    now = time.time()
    calls_large = live.partner_calls(mode.replay_large)
    calls_small = calls_large[: mode.replay_small]
    calls_mix = live.mixed_calls(mode.replay_large)
    large, small = workdir / "replay-large.yaml", workdir / "replay-small.yaml"
    mix = workdir / "replay-mix.yaml"
    written_s = live.write_cassette(large, calls_large, now)
    live.write_cassette(small, calls_small, now)
    live.write_cassette(mix, calls_mix, now)
    confdir = workdir / "mitmproxy-conf"
    section: dict[str, Any] = {"cassette_write_s": written_s, "cassette_mb": large.stat().st_size / 1e6}

    with live.Processes(workdir, cores) as procs:
        upstream, upstream_kind = procs.start_upstream(now)
        load = live.Load(workdir, cores, mode.connections, force_python=python_load)
        record_argv = ["record", str(workdir / "recorded.yaml"), "--upstream", upstream.url,
                       "--record-mode", "all"]  # fmt: skip
        run = procs.start_tmproxy("run", ["run", "--upstream", upstream.url, "--sid", "validate"], confdir)
        record = procs.start_tmproxy("record", record_argv, confdir)
        null = procs.start_null_proxy(upstream.url, confdir)
        targets: dict[str, tuple[live.Proc, list[live.Call]]] = {
            "mitmdump": (procs.start_mitmdump(upstream.url, confdir), calls_large),
            "run": (run, calls_large),
            "record": (record, calls_large),
            "replay_large": (
                procs.start_tmproxy("replay-large", ["replay", str(large)], confdir),
                calls_large,
            ),
            "replay_small": (
                procs.start_tmproxy("replay-small", ["replay", str(small)], confdir),
                calls_small,
            ),
            "null": (null, calls_large),
            "run_mix": (run, calls_mix),
            "record_mix": (record, calls_mix),
            "replay_mix": (procs.start_tmproxy("replay-mix", ["replay", str(mix)], confdir), calls_mix),
            "null_mix": (null, calls_mix),
        }
        if before is not None:
            run_before = procs.start_tmproxy(
                "run-before", ["run", "--upstream", upstream.url, "--sid", "validate"], confdir, before
            )
            targets.update(run_before=(run_before, calls_large), run_mix_before=(run_before, calls_mix))
            pairs_before = [("run", "run_before"), ("run_mix", "run_mix_before"),
                            ("run_before", "null"), ("run_mix_before", "null_mix")]  # fmt: skip
        section.update(
            load_generator=load.tool,
            upstream=upstream_kind,
            pinning=cores.describe(),
            connections=mode.connections,
            seconds_per_run=mode.seconds,
            rounds=mode.rounds,
            mix=f"{len(live.app_calls())} kinds of non-API call (static files, the app's own JSON), "
            "10 per Ticketmaster call",
        )
        direct = load.run(upstream.url, calls_large, mode.seconds)
        section["upstream_direct_rps"] = direct.rps
        runs = interleaved_runs(targets, load, mode)
        memory = {
            name: targets[name][0].peak_rss_mb()
            for name in ("replay_large", "replay_small", "run", "mitmdump")
        }
        summaries = {}
        for proc in {id(proc): proc for proc, _ in targets.values()}.values():
            proc.stop()
            summaries[proc.name] = summary_lines(proc.output())
    section["summaries"] = summaries
    section["peak_rss_mb"] = memory
    section["runs"] = {name: [{**asdict(r), "rps": r.rps} for r in results] for name, results in runs.items()}
    section["median_rps"] = {name: median([r.rps for r in results]) for name, results in runs.items()}
    section["median_cpu_ms_per_request"] = {
        name: median([r.cpu_ms_per_request for r in results if r.cpu_ms_per_request is not None])
        for name, results in runs.items()
    }
    section["median_judge_cpu_ms_per_request"] = {
        name: median(
            [r.helper_cpu_ms_per_request for r in results if r.helper_cpu_ms_per_request is not None]
        )
        for name, results in runs.items()
    }
    failures = {name: sum(r.non_2xx + r.errors for r in results) for name, results in runs.items()}
    section["non_2xx_or_errors"] = failures

    pairs = [("run", "mitmdump"), ("record", "mitmdump"), ("replay_large", "mitmdump"),
             ("replay_large", "replay_small"), ("mitmdump", "null"), ("record", "run"),
             *((proxy, null_name) for _, _, proxy, null_name, _ in NULL_TARGETS)]  # fmt: skip
    if before is not None:
        pairs += pairs_before
        section["before"] = str(before)
    section["ratios"] = {f"{a}/{b}": paired_ratio(runs, a, b) for a, b in pairs}
    section["cpu_ratios"] = {f"{a}/{b}": paired_cpu_ratio(runs, a, b) for a, b in pairs}
    section["all_cpu_ratios"] = {f"{a}/{b}": paired_cpu_ratio(runs, a, b, with_judge=True) for a, b in pairs}
    report.sections["live"] = section
    bad = [name for name, count in failures.items() if count]
    if bad:
        report.notes.append(f"non-2xx answers or socket errors under load: {', '.join(bad)} (see live.runs)")
    if direct.rps < 5 * max(section["median_rps"].values()):
        report.notes.append(
            f"the upstream served only {direct.rps:.0f} requests/s directly: it may be the bottleneck"
        )
    n_large, n_small = mode.replay_large, mode.replay_small
    for number, name, key, target in [
        (1, "tmproxy run --sid validate / bare mitmdump (throughput)", "run/mitmdump", 0.9),
        (2, "tmproxy record / bare mitmdump (throughput)", "record/mitmdump", 0.85),
        (3, f"tmproxy replay ({n_large:,}) / bare mitmdump passthrough", "replay_large/mitmdump", 1.0),
        (4, f"replay throughput, {n_large:,} / {n_small:,} interactions", "replay_large/replay_small", 0.9),
        *((int(id), what.format(n=f"{n_large:,}"), f"{proxy}/{null_name}", target)
          for id, what, proxy, null_name, target in NULL_TARGETS),
    ]:  # fmt: skip
        value, by_cpu = section["ratios"][key], section["cpu_ratios"][key]
        note = f"by CPU cost per request: {by_cpu:.2f}" if by_cpu is not None else ""
        report.figure(number, name, f">= {target}", value, met=_at_least(value, target), note=note)
    peak, base = memory["replay_large"], memory["replay_small"]
    report.figure(
        9, f"peak memory replaying the {n_large:,}-interaction cassette (VmHWM)", "(reported)", peak, " MB",
        note=(f"{peak - base:.0f} MB more than replaying {n_small} interactions; cassette "
              f"{section['cassette_mb']:.1f} MB") if peak is not None and base is not None else "",
    )  # fmt: skip


def interleaved_runs(
    targets: dict[str, tuple[live.Proc, list[live.Call]]], load: live.Load, mode: Mode
) -> dict[str, list[live.LoadResult]]:
    """Each proxy's load results, one per round, after a warm-up.

    A round gives each proxy `seconds` of load in one-second slices, taking turns in an order that
    rotates from round to round: what disturbs the machine for a while hits them all.
    """
    if mode.warmup:
        for proc, calls in targets.values():
            load.run(proc.url, calls, mode.warmup, proc)
    runs: dict[str, list[live.LoadResult]] = {name: [] for name in targets}
    names = list(targets)
    picks = random.Random(7)
    for round_ in range(mode.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        slices: dict[str, list[live.LoadResult]] = {name: [] for name in names}
        for _ in range(max(1, round(mode.seconds / SLICE_S))):
            for name in order:
                proc, calls = targets[name]
                if not proc.alive():
                    raise RuntimeError(f"{name} died: {proc.errors()[-2000:]}")
                # each slice starts anywhere in the calls where a block of fans begins, so that no
                # reserve comes before its Top Picks (that would be a finding no compliant app causes)
                start = picks.randrange(max(1, len(calls) // live.PERIOD)) * live.PERIOD
                slices[name].append(load.run(proc.url, calls, SLICE_S, proc, start))
        for name in names:
            runs[name].append(live.LoadResult.combined(slices[name]))
    return runs


def paired_ratio(runs: dict[str, list[live.LoadResult]], a: str, b: str) -> float | None:
    """The median over rounds of a's throughput over b's within the round."""
    return median([x.rps / y.rps for x, y in zip(runs[a], runs[b], strict=True) if y.rps])


def paired_cpu_ratio(
    runs: dict[str, list[live.LoadResult]], a: str, b: str, with_judge: bool = False
) -> float | None:
    """The throughput ratio the proxies' CPU cost per request implies (b's cost / a's); `with_judge`
    counts the CPU of the judge process (on the other core) as the proxy's too."""

    def cost(result: live.LoadResult) -> float | None:
        if not with_judge or result.cpu_ms_per_request is None:
            return result.cpu_ms_per_request
        return result.cpu_ms_per_request + (result.helper_cpu_ms_per_request or 0.0)

    costs = [(cost(x), cost(y)) for x, y in zip(runs[a], runs[b], strict=True)]
    return median([y / x for x, y in costs if x and y])


EVERY_FAULT_AT_RATE_0 = [
    arg
    for spec in ("quota:0", "polling:0", "niterun:0", "concurrent:0", "session-expiry:0", "slow:1,rate=0")
    for arg in ("--fault", spec)
]


def run_faults(report: Report, mode: Mode, workdir: Path, cores: live.Cores, python_load: bool) -> None:
    """Figure 10: `tmproxy run` with every `--fault` kind given at rate 0 against without `--fault`,
    beside a second plain `run` whose ratio to the first shows how far the machine's noise goes."""
    calls = live.partner_calls(mode.replay_large)
    confdir = workdir / "mitmproxy-conf"
    with live.Processes(workdir, cores) as procs:
        upstream, upstream_kind = procs.start_upstream(time.time())
        load = live.Load(workdir, cores, mode.connections, force_python=python_load)
        plain = ["run", "--upstream", upstream.url, "--sid", "validate"]
        targets = {
            "run": (procs.start_tmproxy("run", plain, confdir), calls),
            "run_again": (procs.start_tmproxy("run-again", plain, confdir), calls),  # the noise floor
            "run_faults_rate_0": (
                procs.start_tmproxy(
                    "run-faults", [*plain, *EVERY_FAULT_AT_RATE_0, "--fault-seed", "1"], confdir
                ),
                calls,
            ),
        }
        runs = interleaved_runs(targets, load, mode)
        summaries = {}
        for name, (proc, _) in targets.items():
            proc.stop()
            summaries[name] = summary_lines(proc.output())
    ratio = paired_ratio(runs, "run_faults_rate_0", "run")
    by_cpu = paired_cpu_ratio(runs, "run_faults_rate_0", "run")
    control = paired_ratio(runs, "run_again", "run")
    report.sections["faults"] = {
        "load_generator": load.tool,
        "upstream": upstream_kind,
        "fault_args": EVERY_FAULT_AT_RATE_0,
        "runs": {name: [{**asdict(r), "rps": r.rps} for r in results] for name, results in runs.items()},
        "median_rps": {name: median([r.rps for r in results]) for name, results in runs.items()},
        "ratio": ratio,
        "cpu_ratio": by_cpu,
        "control_ratio": control,
        "summaries": summaries,
    }
    report.figure(
        10, "tmproxy run with every --fault at rate 0 / without --fault (throughput)", ">= 0.95", ratio,
        met=_at_least(ratio, 0.95),
        note=(f"by CPU cost per request: {by_cpu:.3f}; two identical `run` proxies, the same way: {control:.3f}"
              if by_cpu is not None and control is not None else ""),
    )  # fmt: skip


def summary_lines(output: str) -> list[str]:
    lines = output.splitlines()
    if "summary:" not in lines:
        return []
    return [line.strip() for line in lines[lines.index("summary:") + 1 :] if line.strip()]


def _at_least(value: float | None, target: float) -> bool | None:
    return None if value is None else value >= target


def _at_most(value: float | None, target: float) -> bool | None:
    return None if value is None else value <= target


# In-process sections -----------------------------------------------------------------------------------


def run_cassette(report: Report, mode: Mode, workdir: Path) -> None:
    results = bench_cassette.measure(
        mode.cassette_count, mode.cassette_repeat, mode.vcrpy_cap, workdir / "vs-vcrpy"
    )
    report.sections["cassette"] = results
    n = mode.cassette_count
    replay = results["replay"]
    speedup = replay["vcrpy"]["total_s"] / replay["tmproxy_s"]
    capped = replay["vcrpy"]["capped"]
    report.figure(
        5, f"end-to-end replay of {n:,} interactions, vcrpy time / tmproxy time", ">= 100",
        speedup, "x", met=_at_least(speedup, 100),
        note=(f"vcrpy extrapolated as c*n^2 from {replay['vcrpy']['played']} plays" if capped else ""),
    )  # fmt: skip
    load_ratio = results["load_ratio_tmproxy_vs_vcrpy"]
    report.figure(
        6, f"load of {n:,} interactions, tmproxy time / vcrpy Cassette.load", "<= 0.5", load_ratio,
        met=_at_most(load_ratio, 0.5),
        note=f"{results['load_ratio_tmproxy_vs_vcrpy_own_layout']:.3f} against vcrpy on its own layout",
    )  # fmt: skip


def run_recording(report: Report, mode: Mode, workdir: Path) -> None:
    scenarios: dict[str, dict[str, Any]] = {}
    for label, every in (
        ("apikey only", 0),
        (f"new OAuth token every {mode.token_every} calls", mode.token_every),
    ):
        scenarios[label] = bench_cassette.recording_scaling(
            workdir / "scaling", mode.scaling_large, mode.scaling_small, mode.scaling_block,
            mode.scaling_rounds, every,
        )  # fmt: skip
    report.sections["recording"] = scenarios
    at = f"at {mode.scaling_large:,} / at {mode.scaling_small} interactions"
    for id, target, (label, scenario) in zip(("7", "7b"), (1.2, 1.1), scenarios.items(), strict=True):
        large_ms, small_ms = median(scenario["ms_per_append_large"]), median(scenario["ms_per_append_small"])
        report.figure(
            id, f"cost per append {at} ({label})", f"<= {target}", scenario["ratio"],
            met=_at_most(scenario["ratio"], target),
            note=(f"{large_ms:.3f} ms against {small_ms:.3f} ms per append; "
                  f"{scenario['secrets_remembered']:,} secrets remembered at {mode.scaling_large:,}, "
                  f"{scenario['secrets_forgotten']:,} expired tokens forgotten"),
        )  # fmt: skip


def run_audit(report: Report, mode: Mode) -> None:
    small, large = (bench_audit.time_audit(n, mode.audit_repeat) for n in mode.audit_sizes)
    linearity = large["us_per_interaction"] / small["us_per_interaction"]
    report.sections["audit"] = {"runs": [small, large], "per_interaction_ratio": linearity}
    report.figure(
        8, f"audit of {large['interactions']:,} interactions (seconds)", "< 10 s, linear",
        large["seconds"], " s", met=large["seconds"] < 10 and linearity <= 1.2,
        note=(f"{large['cpu_seconds']:.2f} s CPU; per-interaction cost {linearity:.2f}x that at "
              f"{small['interactions']:,}"),
    )  # fmt: skip


def run_memory(report: Report, mode: Mode, workdir: Path) -> None:
    """Figure 9: VmHWM of `tmproxy replay` serving every one of 10,000 interactions, beside the null
    proxy and a 10-interaction replay (`bench_replay_memory.py`); the index's heap, built from the file
    and the old way. `--smoke` measures the heap only (no processes)."""
    if not mode.memory_processes:
        path = workdir / "replay-large.yaml"
        live.write_cassette(path, live.partner_calls(mode.replay_large), time.time())
        heap = bench_replay_memory.index_heaps(path)
        report.sections["memory"] = {"heap": heap}
        report.figure(9, f"peak heap building the replay index of {mode.replay_large:,} interactions",
                      "(reported)", heap["from_cassette"]["peak_mb"], " MB")  # fmt: skip
        return
    results = bench_replay_memory.measure(workdir / "memory", mode.replay_large, mode.replay_small)
    report.sections["memory"] = results
    peaks, heap = results["vmhwm_mb"], results["heap"]
    large, small, null = peaks["replay_large"], peaks["replay_small"], peaks["null"]
    busy = peaks["replay_small_served_count"]
    if large is None or small is None or null is None or busy is None:
        report.notes.append("memory: no VmHWM (not Linux?)")
        return
    report.figure(
        9, f"peak memory (VmHWM) of tmproxy replay serving all {mode.replay_large:,} interactions", "<= 60 MB",
        large, " MB", met=_at_most(large, 60),
        note=(f"null proxy {null:.1f} MB, replaying {mode.replay_small} interactions {small:.1f} MB, and serving "
              f"as many requests from them {busy:.1f} MB: the cassette's own share {large - busy:.1f} MB "
              f"({results['cassette_mb']:.1f} MB file); without --upstream "
              f"(the CLI loads the cassette to infer it) {peaks['replay_large_inferring']:.1f} MB; index heap "
              f"{heap['from_cassette']['peak_mb']:.1f} MB at peak, {heap['from_cassette']['kept_mb']:.1f} kept "
              f"(from loaded exchanges: {heap['from_loaded_exchanges']['peak_mb']:.1f}, "
              f"{heap['from_loaded_exchanges']['kept_mb']:.1f}); a play in process "
              f"{results['play_us']['now_us']:.1f} µs"),
    )  # fmt: skip


def run_inprocess(report: Report, mode: Mode, workdir: Path) -> None:
    results = bench_inprocess.measure(mode.inprocess_count, mode.vcrpy_cap, workdir / "inprocess")
    report.sections["inprocess"] = results
    vcrpy_side = results["vcrpy"]
    report.figure(
        12, f"in-process replay of {mode.inprocess_count:,} requests, vcr.use_cassette / tmproxy.replay",
        ">= 100", results["speedup"], "x", met=_at_least(results["speedup"], 100),
        note=(f"vcrpy's total fitted as the sum of a + b*i from {vcrpy_side['played']} plays"
              if vcrpy_side["capped"] else ""),
    )  # fmt: skip


def run_suites(report: Report, mode: Mode, workdir: Path) -> None:
    results = bench_suites.measure(workdir / "suites", mode.suite_tests, mode.suite_rounds)
    report.sections["suites"] = results
    seconds = results["median_s"]
    report.figure(
        11, f"{mode.suite_tests} pytest tests through tm_proxy / through plain vcrpy, over pytest's start-up",
        "<= 1.5", results["ratio"], met=_at_most(results["ratio"], 1.5),
        note=(f"by CPU time {results['cpu_ratio']:.2f}; median seconds: tm_proxy {seconds['tm_proxy']:.2f}, "
              f"vcrpy {seconds['vcrpy']:.2f}, empty file {seconds['empty']:.2f}")
        if results["cpu_ratio"] is not None else "",
    )  # fmt: skip


# Output -----------------------------------------------------------------------------------------------


def print_report(report: Report, out: Callable[[str], None] = print) -> None:
    rows = [("#", "figure", "target", "measured", "met")]
    for f in report.in_order():
        met = "-" if f.met is None else ("yes" if f.met else "NO")
        rows.append((f.id, f.name, f.target, f.shown(), met))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for i, row in enumerate(rows):
        out("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            out("  ".join("-" * w for w in widths))
    for f in report.in_order():
        if f.note:
            out(f"  ({f.id}) {f.note}")
    live_section = report.sections.get("live")
    if live_section:
        out(f"\nlive: {live_section['load_generator']} for {live_section['seconds_per_run']:g} s x "
            f"{live_section['rounds']} rounds; upstream {live_section['upstream']} "
            f"({live_section['upstream_direct_rps']:,.0f} req/s direct); {live_section['pinning']}")  # fmt: skip
        out(f"  {'proxy':14} {'median req/s':>12} {'CPU ms/req':>10} {'judge ms/req':>12}")
        for name, rps in live_section["median_rps"].items():
            cpu = live_section["median_cpu_ms_per_request"][name]
            judge = live_section.get("median_judge_cpu_ms_per_request", {}).get(name)
            out(f"  {name:14} {rps:12,.0f} {cpu if cpu is not None else float('nan'):10.3f} "
                + (f"{judge:12.3f}" if judge is not None else f"{'-':>12}"))  # fmt: skip
        print_null_table(report, live_section, out)
        for label, key in (("throughput ratios", "ratios"), ("by CPU cost", "cpu_ratios")):
            ratios = live_section[key].items()
            out(f"  {label}: " + ", ".join(f"{k} {v:.2f}" for k, v in ratios if v is not None))
        for name, lines in live_section["summaries"].items():
            found = [line for line in lines if line.startswith(("findings:", "replay:", "recorded:"))]
            if found:
                out(f"  {name}: " + "; ".join(found))
    faults_section = report.sections.get("faults")
    if faults_section:
        rates = ", ".join(f"{name} {rps:,.0f}" for name, rps in faults_section["median_rps"].items())
        out(f"\nfaults: {faults_section['load_generator']}, upstream {faults_section['upstream']}; "
            f"median req/s: {rates}")  # fmt: skip
    for note in report.notes:
        out(f"note: {note}")


def print_null_table(report: Report, live_section: dict[str, Any], out: Callable[[str], None]) -> None:
    """The issue #15 table: each proxy against null (tmproxy's mitmproxy without tmproxy's addons)."""
    rps, cpu_ratios = live_section["median_rps"], live_section["cpu_ratios"]
    all_cpu = live_section.get("all_cpu_ratios", {})
    out("\n  against null (tmproxy's embedded mitmproxy, no tmproxy addon), side by side in this run")
    out("  (by CPU: the proxy's own CPU per request; all CPU: with its judge process's, on the other core):")
    out(f"  {'traffic':10} {'proxy':12} {'req/s':>7} {'null req/s':>10} {'measured':>8} {'by CPU':>6} "
        f"{'all CPU':>7} {'target':>7}  met")  # fmt: skip
    for id, _, proxy, null_name, target in NULL_TARGETS:
        figure = report.figures.get(id)
        if figure is None or figure.measured is None:
            continue
        by_cpu = cpu_ratios.get(f"{proxy}/{null_name}")
        by_all = all_cpu.get(f"{proxy}/{null_name}")
        traffic = "10:1 mix" if proxy.endswith("_mix") else "Top Picks"
        name = proxy.removesuffix("_mix").removesuffix("_large")
        met = "yes" if figure.met else f"NO, {target - figure.measured:.2f} short"
        out(f"  {traffic:10} {name:12} {rps[proxy]:7,.0f} {rps[null_name]:10,.0f} {figure.measured:8.2f} "
            f"{by_cpu if by_cpu is not None else float('nan'):6.2f} "
            f"{by_all if by_all is not None else float('nan'):7.2f} {'>= ' + str(target):>7}  {met}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    speed = parser.add_mutually_exclusive_group()
    speed.add_argument("--quick", action="store_true", help="fewer, shorter rounds: under 2 minutes")
    speed.add_argument("--smoke", action="store_true", help="tiny sizes, seconds: checks the harness runs")
    parser.add_argument("--json", type=Path, help="write every number here")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated: {', '.join(SECTIONS)}")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it (logs, cassettes)")
    parser.add_argument(
        "--before",
        type=Path,
        help="live: also run `tmproxy run` from this checkout (the code before a change)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin proxies and load to separate CPUs")
    parser.add_argument(
        "--python-load", action="store_true", help="use the aiohttp client even if wrk exists"
    )
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    mode = MODES["smoke" if args.smoke else "quick" if args.quick else "full"]
    command = "python benchmarks/run.py " + " ".join(argv if argv is not None else sys.argv[1:])
    report = Report(mode, command.strip())
    started = time.monotonic()
    with live.workspace(args.keep) as workdir:
        cores = live.Cores() if args.no_pin else live.Cores.split()
        if "live" in sections:
            run_live(report, mode, workdir, cores, args.python_load, args.before)
        if "faults" in sections:
            run_faults(report, mode, workdir, cores, args.python_load)
        if "cassette" in sections:
            run_cassette(report, mode, workdir)
        if "recording" in sections:
            run_recording(report, mode, workdir)
        if "audit" in sections:
            run_audit(report, mode)
        if "memory" in sections:
            run_memory(report, mode, workdir)
        if "inprocess" in sections:
            run_inprocess(report, mode, workdir)
        if "suites" in sections:
            run_suites(report, mode, workdir)
    data = report.to_dict()
    data["elapsed_s"] = time.monotonic() - started
    print_report(report)
    print(f"\n{len(report.figures)} figures in {data['elapsed_s']:.0f} s ({mode.name} mode)")
    if args.json:
        args.json.write_text(json.dumps(data, indent=2, default=str))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
