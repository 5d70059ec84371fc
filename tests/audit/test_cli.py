"""`tmproxy audit`: formats, --output, --fail-on and exit codes, through CliRunner and a real process."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from audit.flows import purchase
from click.testing import CliRunner

from proxy.audit import cli
from proxy.audit.cli import audit_command
from proxy.cassette.format import exchange_to_interaction

ROOT = Path(__file__).resolve().parents[2]


def cassette(path: Path, exchanges) -> Path:
    path.write_text(
        yaml.safe_dump({"version": 1, "interactions": [exchange_to_interaction(e) for e in exchanges]})
    )
    return path


@pytest.fixture
def clean(tmp_path):
    return cassette(tmp_path / "clean.yaml", purchase())


@pytest.fixture
def walked_away(tmp_path):
    """A warning only: the cart is never committed."""
    return cassette(tmp_path / "walked.yaml", purchase()[:7])


@pytest.fixture
def leaky(tmp_path):
    """An error: the recording keeps a real apikey."""
    return cassette(tmp_path / "leaky.yaml", purchase(live=True))


def run(*args):
    return CliRunner().invoke(audit_command, [str(a) for a in args])


def test_clean_recording_exits_0_with_a_text_report(clean):
    result = run(clean)
    assert result.exit_code == 0, result.output
    assert result.stdout == "9 interactions audited, 0 findings\n"


def test_errors_exit_1_and_warnings_only_with_fail_on_warning(leaky, walked_away):
    assert run(leaky).exit_code == 1
    assert run(leaky, "--fail-on", "never").exit_code == 0
    assert run(walked_away).exit_code == 0
    result = run(walked_away, "--fail-on", "warning")
    assert result.exit_code == 1 and "abandoned-cart (warning, 1)" in result.stdout


def test_output_file_and_formats(tmp_path, walked_away):
    target = tmp_path / "report.json"
    result = run(walked_away, "--format", "json", "--output", target)
    assert result.exit_code == 0 and result.stdout == ""
    assert json.loads(target.read_text())["summary"]["by_rule"]["abandoned-cart"] == 1
    for fmt, start in (("junit", "<?xml"), ("html", "<!DOCTYPE html>")):
        assert run(walked_away, "--format", fmt).stdout.startswith(start)


def test_folders_are_audited_as_one_traffic(tmp_path):
    folder = tmp_path / "recordings"
    folder.mkdir()
    cassette(folder / "a.yaml", purchase(cart_id="a"))
    cassette(folder / "b.yaml", purchase(cart_id="b", client="10.0.0.6:1")[:7])
    result = run(folder, "--format", "json")
    assert json.loads(result.stdout)["summary"]["interactions"] == 16


@pytest.mark.parametrize(
    ("name", "content", "complaint"),
    [
        ("missing.yaml", None, "no such file"),
        ("evil.yaml", "!!python/object/apply:os.system ['touch /tmp/owned']\n", "unsafe"),
        ("notes.har", "hello", "not a HAR file"),
    ],
)
def test_unusable_input_exits_2_with_a_message_naming_the_file(tmp_path, name, content, complaint):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    result = run(path)
    assert result.exit_code == 2
    assert name in result.stderr and complaint in result.stderr and result.stdout == ""


def test_unwritable_output_exits_2(tmp_path, clean):
    result = run(clean, "--output", tmp_path / "no" / "such" / "dir" / "r.txt")
    assert result.exit_code == 2 and "cannot write" in result.stderr


def test_help_has_an_example():
    result = run("--help")
    assert (
        result.exit_code == 0
        and "tmproxy audit cassettes/ --format html --output audit.html" in result.stdout
    )


def test_no_progress_bar_when_stderr_is_not_a_terminal(leaky, monkeypatch):
    monkeypatch.setattr(cli, "PROGRESS_MIN_BYTES", 0)
    monkeypatch.setattr(cli, "PROGRESS_MIN_EXCHANGES", 0)
    assert run(leaky).stderr == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli._colour_wanted(_Terminal()) is True
    assert cli._colour_wanted(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli._colour_wanted(_Terminal()) is False


def test_a_real_process_reports_json_and_exits_1(leaky):
    done = subprocess.run(
        [sys.executable, "-m", "proxy.audit.cli", str(leaky), "--format", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 1, done.stderr
    rules = {f["rule"] for f in json.loads(done.stdout)["findings"]}
    assert rules == {"secret-in-recording"}


def test_progress_bar_on_a_terminal(monkeypatch):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with cli._progress(range(3), 3, "Auditing", large=True) as bar:
        assert list(bar) == [0, 1, 2]
    assert "Auditing" in terminal.getvalue()
    with cli._progress(range(3), 3, "Auditing", large=False) as bar:
        assert list(bar) == [0, 1, 2]
