"""Configuration: flag > TMPROXY_* variable > tmproxy.yaml > default, and clear errors naming key and file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from proxy.cli import main
from proxy.config import ConfigError, load_config, parse_config


def effective_sandbox_listen(tmp_path: Path, monkeypatch, args: list[str], env: dict[str, str]) -> str:
    """What `tmproxy sandbox` would listen on, read back through a bad-port trick-free probe."""
    seen: dict[str, object] = {}
    monkeypatch.setattr(
        "proxy.sandbox.server.serve_forever", lambda listen, **kw: seen.update(listen=listen, **kw)
    )
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["sandbox", *args], env=env)
    assert result.exit_code == 0, result.output
    return f"{seen['listen']} seed={seen['seed']}"


def test_precedence_flag_then_env_then_file_then_default(tmp_path: Path, monkeypatch):
    assert effective_sandbox_listen(tmp_path, monkeypatch, [], {}) == "127.0.0.1:9000 seed=1"
    (tmp_path / "tmproxy.yaml").write_text("sandbox:\n  listen: 127.0.0.1:9100\n  seed: 7\n")
    assert effective_sandbox_listen(tmp_path, monkeypatch, [], {}) == "127.0.0.1:9100 seed=7"
    env = {"TMPROXY_SANDBOX_LISTEN": "127.0.0.1:9200"}
    assert effective_sandbox_listen(tmp_path, monkeypatch, [], env) == "127.0.0.1:9200 seed=7"
    flag = ["--listen", "127.0.0.1:9300"]
    assert effective_sandbox_listen(tmp_path, monkeypatch, flag, env) == "127.0.0.1:9300 seed=7"


@pytest.mark.parametrize("command", ["run", "record", "replay"])
def test_url_rewriting_is_on_unless_the_file_the_environment_or_a_flag_turns_it_off(
    tmp_path: Path, monkeypatch, command: str
):
    seen: list[bool] = []
    monkeypatch.setattr("proxy.cli.serve_proxy", lambda *a, rewrite_urls, **kw: seen.append(rewrite_urls))
    monkeypatch.chdir(tmp_path)
    cassette = tmp_path / "c.yaml"
    cassette.write_text("")
    args = [command] if command == "run" else [command, str(cassette), "--upstream", "http://127.0.0.1:9000"]

    def rewrite(*extra: str, env: dict[str, str] | None = None) -> bool:
        result = CliRunner().invoke(main, [*args, *extra], env=env)
        assert result.exit_code == 0, result.output
        return seen.pop()

    assert rewrite() is True
    (tmp_path / "tmproxy.yaml").write_text("rewrite_urls: false\n")
    assert rewrite() is False
    assert rewrite(env={"TMPROXY_REWRITE_URLS": "true"}) is True
    assert rewrite("--no-rewrite-urls", env={"TMPROXY_REWRITE_URLS": "true"}) is False


def test_config_file_can_be_named_by_flag_or_env(tmp_path: Path, monkeypatch):
    other = tmp_path / "team.yaml"
    other.write_text("sandbox:\n  seed: 42\n")
    seen: dict[str, object] = {}
    monkeypatch.setattr("proxy.sandbox.server.serve_forever", lambda listen, **kw: seen.update(kw))
    assert CliRunner().invoke(main, ["--config", str(other), "sandbox"]).exit_code == 0
    assert seen["seed"] == 42
    assert CliRunner().invoke(main, ["sandbox"], env={"TMPROXY_CONFIG": str(other)}).exit_code == 0


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("sid: sometimes\n", "sid", "must be one of inject, validate, enforce, off"),
        ("sandbox:\n  seed: -1\n", "sandbox.seed", "must be a whole number >= 0"),
        ("upstream: ftp://x\n", "upstream", "http:// or https://"),
        ("listen: 127.0.0.1:99999\n", "listen", "invalid port"),
        ("redaction:\n  headers: X-Token\n", "redaction.headers", "list of strings"),
        ("polcy: inject\n", "polcy", "unknown setting"),
        ("faults: quota:0.3\n", "faults", "list of strings"),
        ("faults: [outage]\n", "faults", "unknown fault 'outage'"),
        ("faults: ['quota:2']\n", "faults", "a probability from 0 to 1"),
        ("fault_seed: -2\n", "fault_seed", "must be a whole number >= 0"),
        ("sid: [\n", "line 2", "not valid YAML"),
        ("- just a list\n", "(top level)", "must be a mapping"),
    ],
)
def test_invalid_settings_name_the_key_and_the_file(tmp_path: Path, text: str, key: str, problem: str):
    path = tmp_path / "tmproxy.yaml"
    with pytest.raises(ConfigError) as caught:
        parse_config(text, path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ") and problem in message


def test_faults_come_from_the_flag_the_variable_or_the_file(tmp_path: Path, monkeypatch):
    seen: dict[str, object] = {}
    monkeypatch.setattr("proxy.cli.serve_proxy", lambda upstream, **kw: seen.update(kw))
    monkeypatch.chdir(tmp_path)

    def faults(args: list[str], env: dict[str, str]) -> tuple[object, object]:
        result = CliRunner().invoke(main, ["run", *args], env=env)
        assert result.exit_code == 0, result.output
        return seen["faults"], seen["fault_seed"]

    assert faults([], {}) == ((), None)
    (tmp_path / "tmproxy.yaml").write_text("faults: ['quota:0.3', 'polling:0.5,wait=0']\nfault_seed: 7\n")
    assert faults([], {}) == (("quota:0.3", "polling:0.5,wait=0"), 7)
    env = {"TMPROXY_FAULT": "niterun:0.1 slow:0.2", "TMPROXY_FAULT_SEED": "8"}
    assert faults([], env) == (("niterun:0.1", "slow:0.2"), 8)
    assert faults(["--fault", "concurrent"], env) == (("concurrent",), 8)
    bad = CliRunner().invoke(main, ["run", "--fault", "quota", "--fault", "quota:0.5"])
    assert bad.exit_code == 2 and "quota given twice" in bad.output


def test_invalid_file_stops_the_cli_with_the_message(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmproxy.yaml").write_text("sid: sometimes\n")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 2
    assert "tmproxy.yaml: sid: must be one of" in result.output


def test_python_tags_are_refused_not_run(tmp_path: Path):
    path = tmp_path / "tmproxy.yaml"
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("sid: !!python/object/apply:os.system ['echo hi']\n", path)


def test_missing_named_file_is_an_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.yaml"))


def test_redaction_rules_reach_the_recording(tmp_path: Path, sandbox):
    from proxy.processes import tmproxy
    from proxy.sandbox.client import SandboxClient

    (tmp_path / "tmproxy.yaml").write_text("redaction:\n  query_params: [partner_ref]\n")
    cassette = tmp_path / "c.yaml"
    with tmproxy(
        "--config",
        str(tmp_path / "tmproxy.yaml"),
        "record",
        str(cassette),
        "--upstream",
        sandbox.url,
        "--listen",
        "127.0.0.1:0",
    ) as proxy:
        SandboxClient(proxy.url).top_picks(partner_ref="internal-ref-5521")
    assert "internal-ref-5521" not in cassette.read_text()
