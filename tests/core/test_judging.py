"""`proxy.judging.Judge`: the rules and the recorder as the judge process runs them, fed request and end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from traffic import reserve, top_picks

from proxy.cassette import RedactionRules, load_cassette
from proxy.fan_session import SidPolicy
from proxy.judging import Judge, JudgeSettings


def feed(judge: Judge, *exchanges, record: bool = True) -> None:
    """Each exchange's request, then its end, as a proxy sees them one after the other."""
    for exchange in exchanges:
        answer = exchange.response
        exchange.response = None
        judge.request(exchange)
        exchange.response = answer
        judge.end(exchange, judged=True, record=record)


def test_a_recording_carries_the_findings_of_its_request_and_of_its_end(tmp_path: Path):
    judge = Judge()
    judge.configure(JudgeSettings(record_path=str(tmp_path / "judged.yaml")))
    feed(judge, top_picks(), reserve(sid=None))
    summary = judge.finish()
    assert summary.recorded == 2 and summary.refused == 0
    assert summary.traffic.findings_by_rule["sid-missing"] == 1
    recorded = load_cassette(tmp_path / "judged.yaml").exchanges
    assert [ex.request.method for ex in recorded] == ["GET", "POST"]
    assert "sid-missing" in (tmp_path / "judged.yaml").read_text()


def test_calls_not_asked_for_are_judged_but_not_recorded(tmp_path: Path):
    judge = Judge()
    judge.configure(JudgeSettings(record_path=str(tmp_path / "replayed.yaml")))
    feed(judge, top_picks(), reserve(sid=None), record=False)
    summary = judge.finish()
    assert summary.recorded == 0
    assert summary.traffic.findings_by_rule["sid-missing"] == 1
    assert load_cassette(tmp_path / "replayed.yaml").exchanges == []


def test_off_silences_the_session_rules_as_in_the_proxy():
    judge = Judge()
    judge.configure(JudgeSettings(policy=SidPolicy.OFF))
    feed(judge, top_picks(), reserve(sid=None))
    assert "sid-missing" not in judge.finish().traffic.findings_by_rule


def test_a_cassette_that_cannot_be_opened_is_refused_and_a_later_one_still_opens(tmp_path: Path):
    judge = Judge()
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    with pytest.raises(ValueError, match="a-file"):
        judge.configure(JudgeSettings(record_path=str(blocked / "cassette.yaml")))
    assert judge.writer is None
    judge.configure(JudgeSettings(record_path=str(tmp_path / "good.yaml")))
    assert judge.writer is not None
    feed(judge, top_picks())
    assert judge.finish().recorded == 1


def test_new_redaction_rules_reopen_the_cassette_and_unchanged_settings_keep_it(tmp_path: Path):
    judge = Judge()
    settings = JudgeSettings(record_path=str(tmp_path / "kept.yaml"))
    judge.configure(settings)
    writer = judge.writer
    judge.configure(replace(settings, fan_key=None))
    assert judge.writer is writer
    judge.configure(replace(settings, redaction=RedactionRules.build(headers=["X-Partner-Secret"])))
    assert judge.writer is not writer and judge.writer is not None
    judge.finish()


@pytest.mark.parametrize("policy", [SidPolicy.INJECT, SidPolicy.ENFORCE])
def test_policies_that_change_calls_are_not_judged_away_from_the_proxy(policy: SidPolicy):
    with pytest.raises(ValueError, match="judged in the proxy"):
        Judge().configure(JudgeSettings(policy=policy))
