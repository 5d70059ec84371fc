"""Settings from `tmproxy.yaml`: every option of every command, plus redaction rules.

Precedence is flag, then environment variable (`TMPROXY_...`), then this file, then the default;
click applies it once the file's values are its `default_map`. A wrong key or value is refused
with the key and the file named, before anything runs.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .fans import FanKeySpec
from .faults import FaultSpecError, parse_faults
from .netaddr import ListenAddressError, parse_listen

CONFIG_FILE = "tmproxy.yaml"
CONFIG_ENV = "TMPROXY_CONFIG"
PROXY_COMMANDS = ("run", "record", "replay")


class ConfigError(ValueError):
    def __init__(self, path: Path, key: str, problem: str) -> None:
        super().__init__(f"{path}: {key}: {problem}")


def _choice(*choices: str) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, not {value!r}")
        return value

    return check


def _number(minimum: float, integer: bool = False) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        kind = int if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
            what = "a whole number" if integer else "a number"
            raise ValueError(f"must be {what} >= {minimum:g}, not {value!r}")
        return value

    return check


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {value!r}")
    return value


def _url(value: Any) -> Any:
    _text(value)
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"must be an http:// or https:// URL, not {value!r}")
    return value


def _listen(value: Any) -> Any:
    _text(value)
    try:
        parse_listen(value, 0)
    except ListenAddressError as exc:
        raise ValueError(str(exc)) from None
    return value


def _fan_key(value: Any) -> Any:
    _text(value)
    FanKeySpec.parse(value)  # its FanKeySpecError is a ValueError naming what is wrong
    return value


def _flag(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"must be true or false, not {value!r}")
    return value


def _strings(value: Any) -> Any:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"must be a list of strings, not {value!r}")
    return value


def _faults(value: Any) -> Any:
    _strings(value)
    try:
        parse_faults(value)
    except FaultSpecError as exc:
        raise ValueError(str(exc)) from None
    return value


@dataclass(frozen=True)
class Setting:
    """One key of the file: how to check it, and which command options it sets."""

    check: Callable[[Any], Any]
    targets: tuple[tuple[str, str], ...] = ()


def _proxies(param: str) -> tuple[tuple[str, str], ...]:
    """The same option of run, record and replay."""
    return tuple((command, param) for command in PROXY_COMMANDS)


SETTINGS: dict[str, Setting] = {
    "upstream": Setting(_url, _proxies("upstream")),
    "listen": Setting(_listen, _proxies("listen")),
    "mode": Setting(_choice("reverse", "regular"), _proxies("mode")),
    "sid": Setting(_choice("inject", "validate", "enforce", "off"), _proxies("sid")),
    "fan_key": Setting(_fan_key, (*_proxies("fan_key"), ("audit", "fan_key"))),
    "upstream_timeout": Setting(_number(0), _proxies("upstream_timeout")),
    "confdir": Setting(_text, _proxies("confdir")),
    "allow_remote": Setting(_flag, (*_proxies("allow_remote"), ("sandbox", "allow_remote"))),
    "rewrite_urls": Setting(_flag, _proxies("rewrite_urls")),
    "judge_process": Setting(_flag, _proxies("judge_process")),
    "faults": Setting(_faults, _proxies("faults")),
    "fault_seed": Setting(_number(0, integer=True), _proxies("fault_seed")),
    "record.mode": Setting(_choice("once", "new_episodes", "all", "none"), (("record", "record_mode"),)),
    "record.as": Setting(_url, (("record", "record_as"),)),
    "replay.on_miss": Setting(_choice("error", "forward"), (("replay", "on_miss"),)),
    "replay.latency": Setting(_choice("none", "recorded"), (("replay", "latency"),)),
    "replay.repeat": Setting(_choice("repeat_last", "exhaust"), (("replay", "repeat"),)),
    "sandbox.listen": Setting(_listen, (("sandbox", "listen"),)),
    "sandbox.seed": Setting(_number(0, integer=True), (("sandbox", "seed"),)),
    "sandbox.session_ttl": Setting(_number(0.001), (("sandbox", "session_ttl"),)),
    "sandbox.quota": Setting(_number(1, integer=True), (("sandbox", "quota"),)),
    "audit.format": Setting(_choice("text", "json", "junit", "html"), (("audit", "fmt"),)),
    "audit.fail_on": Setting(_choice("error", "warning", "never"), (("audit", "fail_on"),)),
    "redaction.headers": Setting(_strings),
    "redaction.query_params": Setting(_strings),
    "redaction.fields": Setting(_strings),
    "redaction.patterns": Setting(_strings),
}


@dataclass
class Config:
    path: Path | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def default_map(self) -> dict[str, dict[str, Any]]:
        """click's `default_map`: per command, per parameter."""
        defaults: dict[str, dict[str, Any]] = {}
        for key, value in self.values.items():
            for command, param in SETTINGS[key].targets:
                defaults.setdefault(command, {})[param] = value
        return defaults

    def redaction(self, kind: str) -> list[str]:
        return list(self.values.get(f"redaction.{kind}", []))

    def redaction_options(self) -> dict[str, list[str]]:
        """The recorder's and the replayer's mitmproxy options for the `redaction.*` settings."""
        return {
            "tm_redact_headers": self.redaction("headers"),
            "tm_redact_params": self.redaction("query_params"),
            "tm_redact_fields": self.redaction("fields"),
            "tm_redact_patterns": self.redaction("patterns"),
        }


def _flatten(document: dict[str, Any], path: Path, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        dotted = f"{prefix}{key}"
        if not isinstance(key, str):
            raise ConfigError(path, str(key), "keys must be strings")
        if isinstance(value, dict) and not any(k == dotted for k in SETTINGS):
            flat.update(_flatten(value, path, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def parse_config(text: str, path: Path) -> Config:
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise ConfigError(path, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if document is None:
        return Config(path)
    if not isinstance(document, dict):
        raise ConfigError(path, "(top level)", "must be a mapping of settings")
    values = {}
    for key, value in _flatten(document, path).items():
        setting = SETTINGS.get(key)
        if setting is None:
            known = ", ".join(sorted(SETTINGS))
            raise ConfigError(path, key, f"unknown setting; known settings: {known}")
        try:
            values[key] = setting.check(value)
        except ValueError as exc:
            raise ConfigError(path, key, str(exc)) from None
    return Config(path, values)


def load_config(explicit: str | None = None, cwd: Path | None = None) -> Config:
    """The named file (flag or TMPROXY_CONFIG) must exist; `./tmproxy.yaml` is read when present."""
    named = explicit or os.environ.get(CONFIG_ENV)
    path = Path(named) if named else Path(cwd or Path.cwd(), CONFIG_FILE)
    if not path.is_file():
        if named:
            raise ConfigError(path, "(file)", "no such file")
        return Config()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(path, "(file)", f"cannot read: {exc}") from None
    return parse_config(text, path)
