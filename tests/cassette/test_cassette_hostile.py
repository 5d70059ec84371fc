"""Hostile and broken input: refused with a clear CassetteError, and nothing executed."""

from __future__ import annotations

from pathlib import Path

import pytest
from cassette.cassette_helpers import exchange

from proxy.cassette import CassetteError, CassetteWriter, load_cassette


def _evil(marker: Path) -> str:
    return f"""interactions:
- request: !!python/object/apply:os.system ["touch {marker}"]
  response: {{status: {{code: 200, message: OK}}, headers: {{}}, body: {{string: ''}}}}
version: 1
"""


def test_python_object_tags_are_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.yaml"
    path.write_text(_evil(marker))
    with pytest.raises(CassetteError, match="unsafe or unknown YAML tag") as raised:
        load_cassette(path)
    assert not marker.exists()
    assert str(path) in str(raised.value) and raised.value.line == 2


def test_tags_inside_a_tmproxy_item_are_refused_too(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "c.yaml"
    CassetteWriter(path).close()
    text = path.read_text().replace("interactions: []\n", "interactions:\n")
    item = f'- {{"request": !!python/object/apply:os.system ["touch {marker}"]}}\n# tmproxy:end json\n'
    path.write_text(text + item)
    with pytest.raises(CassetteError, match="unsafe"):
        load_cassette(path)
    assert not marker.exists()


def test_garbage_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "garbage.yaml"
    path.write_text("version: 1\ninteractions:\n- request: {method: GET\n  : : ]]\n")
    with pytest.raises(CassetteError) as raised:
        load_cassette(path)
    assert raised.value.line is not None and f"{path}, line {raised.value.line}" in str(raised.value)


def test_garbage_inside_a_tmproxy_item_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with CassetteWriter(path) as writer:
        writer.append(exchange())
    lines = path.read_text().splitlines(keepends=True)
    broken = next(i for i, line in enumerate(lines) if '"method"' in line)
    lines[broken] = '      "method": [[[:\n'
    path.write_text("".join(lines))
    with pytest.raises(CassetteError) as raised:
        load_cassette(path)
    assert raised.value.line is not None and abs(raised.value.line - (broken + 1)) <= 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"   \n", "empty file"),
        (b'{"requests": [], "hello": 1}', "no 'interactions'"),
        (b"[1, 2, 3]", "top level is a list"),
        (b"just a string", "top level is a str"),
        (b"version: 2\ninteractions: []\n", "unsupported cassette version 2"),
        (b"interactions: []\n", "unsupported cassette version None"),
        (b"version: 1\ninteractions: {}\n", "must be a list"),
        (b"- request: {method: GET, uri: x}\n  response: {}\n", "pre-1.0"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not valid YAML"),
        (
            b"version: 1\ninteractions:\n- request: {method: GET}\n",
            "interaction 0: request needs a method and a uri",
        ),
        (
            b"version: 1\ninteractions:\n- request: {method: GET, uri: x}\n  response: {status: {code: OK}}\n",
            "integer code",
        ),
    ],
)
def test_not_a_cassette(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    with pytest.raises(CassetteError, match=message) as raised:
        load_cassette(path)
    assert str(path) in str(raised.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="cannot read"):
        load_cassette(tmp_path / "nope.yaml")


def test_null_interactions_is_an_empty_cassette(tmp_path: Path) -> None:
    path = tmp_path / "null.yaml"
    path.write_text("interactions: null\nversion: 1\n")
    assert load_cassette(path).exchanges == []


def test_old_vcrpy_python_string_tags_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text(
        "interactions:\n- request: {method: GET, uri: !!python/unicode 'https://a/b', body: null, headers: {}}\n"
        "  response: {status: {code: 200, message: OK}, headers: {}, body: {string: !!python/str 'hi'}}\n"
        "version: 1\n"
    )
    (ex,) = load_cassette(path).exchanges
    assert ex.request.url == "https://a/b" and ex.response is not None and ex.response.body == b"hi"
