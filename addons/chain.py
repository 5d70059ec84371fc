"""tmproxy's addons for one embedded proxy, in the order they must run.

`tmproxy run/record/replay` and the pytest plugin's session proxy build the same chain here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from addons.fan_session import FanSession
from addons.faults import FaultAnswers, FaultRewrites
from addons.judge_process import JudgeLink, JudgeProcess
from addons.recorder import Recorder
from addons.replayer import Replayer
from addons.upstream_timeout import UpstreamTimeout
from addons.url_rewrite import UrlRewrite
from proxy.faults import parse_faults, rewrites_answers


@dataclass
class TmproxyAddons:
    """The chain, and the addons whose state the exit summary or the session proxy reads."""

    fan_session: FanSession = field(default_factory=FanSession)
    replayer: Replayer = field(default_factory=Replayer)
    recorder: Recorder = field(default_factory=Recorder)
    fault_answers: FaultAnswers = field(default_factory=FaultAnswers)
    judge_link: JudgeLink | None = None
    chain: list[Any] = field(default_factory=list)


def tmproxy_addons(
    faults: Sequence[str] = (),
    rewrite_urls: bool = True,
    cassette: bool = True,
    judge: JudgeProcess | None = None,
) -> TmproxyAddons:
    """The addons in chain order; `rewrite_urls` for reverse mode (see addons/url_rewrite.py). Without a
    `cassette` (`tmproxy run`) the replayer and recorder stay out: idle, they would still be called on
    every request. With a `judge` process, its link judges and records in place of the fan-session
    addon and the recorder (see addons/judge_process.py)."""
    built = TmproxyAddons()
    judging: Any = built.fan_session
    if judge is not None:
        judging = built.judge_link = JudgeLink(judge)
    chain: list[Any] = [UpstreamTimeout(), judging]
    if cassette:
        chain += [built.replayer] if judge is not None else [built.replayer, built.recorder]
    if faults:
        # the rules must judge the partner on what it got: changed answers before they learn them,
        # the proxy's own answers after they judged the request. mitmproxy calls every addon on every
        # event, so the rewriting one comes only when a fault may rewrite.
        rewrites = [FaultRewrites()] if rewrites_answers(parse_faults(faults)) else []
        chain[1:2] = [*rewrites, judging, built.fault_answers]
    if rewrite_urls:
        chain.insert(0, UrlRewrite())  # first: see addons/url_rewrite.py
    built.chain = chain
    return built
