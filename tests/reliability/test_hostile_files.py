"""Hostile files: unsafe YAML tags, bombs, truncated and fake cassettes, HAR and flow files, escaping names.

A cassette is untrusted input. Each bad file is refused with a clear error naming the file (and the line,
where there is one) before anything runs; `tmproxy audit` exits 2 on every one of them, checked with real
processes, and `tmproxy replay`/`record` refuse them with exit 1 and leave them untouched.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from mitmproxy.io import tnetstring

from proxy.cassette import CassetteError, CassetteWriter, load_cassette
from proxy.cassette.paths import CassettePathError, resolve_cassette
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.processes import run_tmproxy

MARKER = "TMPROXY_MARKER"  # replaced by a path that a payload would create if it ever ran


def tmproxy_cassette(tmp_path: Path) -> bytes:
    path = tmp_path / "real.yaml"
    with CassetteWriter(path, overwrite=True) as writer:
        for n in range(3):
            request = Request("GET", f"https://app.ticketmaster.com/top-picks/v1/events/E{n}?apikey=k")
            writer.append(Exchange(request, Response(200, Headers([("Content-Type", "text/plain")]), b"ok")))
    return path.read_bytes()


VCRPY = (
    "interactions:\n"
    "- request: {body: null, headers: {}, method: GET, uri: 'https://app.ticketmaster.com/a'}\n"
    "  response: {body: {string: ok}, headers: {}, status: {code: 200, message: OK}}\n"
    "- request: {body: null, headers: {}, method: GET, uri: 'https://app.ticketmaster.com/b'}\n"
    "  response: {body: {string: ok}, headers: {}, status: {code: 200, message: OK}}\n"
    "version: 1\n"
)


def billion_laughs() -> str:
    lines = ["version: 1", "x0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    lines += [
        "interactions:",
        "- request: {method: GET, uri: 'https://x/', headers: {X: *a8}}",
        "  response: {status: {code: 200}, body: {string: ok}}",
    ]
    return "\n".join(lines) + "\n"


def tagged(tag: str) -> str:
    return VCRPY.replace(
        "body: null, headers: {}, method: GET", f"body: {tag}, headers: {{}}, method: GET", 1
    )


# name, content (bytes, or text with MARKER), what our error says (None: whichever layer refuses it first
# words it, e.g. libyaml's own depth limit), whether it names a line
HOSTILE_CASSETTES: list[tuple[str, str | bytes, str | None, bool]] = [
    ("apply", tagged("!!python/object/apply:os.system ['touch MARKER']"), "unsafe or unknown YAML tag", True),
    (
        "new",
        tagged("!!python/object/new:subprocess.Popen [['touch', 'MARKER']]"),
        "unsafe or unknown YAML tag",
        True,
    ),
    ("object", tagged("!!python/object:pathlib.PurePath {}"), "unsafe or unknown YAML tag", True),
    ("name", tagged("!!python/name:os.system"), "unsafe or unknown YAML tag", True),
    ("module", tagged("!!python/module:os"), "unsafe or unknown YAML tag", True),
    (
        "in-metadata",
        "version: 1\nmetadata:\n  tmproxy: !!python/object/apply:os.system ['touch MARKER']\ninteractions: []\n",
        "unsafe or unknown YAML tag",
        True,
    ),
    ("billion-laughs", billion_laughs(), "aliases expand it far beyond its size", False),
    ("self-containing", "version: 1\ninteractions: &a [*a]\n", "contain itself", False),
    (
        "deep-flow-nesting",
        "version: 1\ninteractions: " + "[" * 100_000 + "]" * 100_000,
        None,
        False,
    ),
    ("truncated-vcrpy", VCRPY[: VCRPY.index("status", 200)], "not valid YAML", True),
    (
        "garbage-line-3",
        "version: 1\ninteractions:\n- request: {method: GET\n  : : ]]\n",
        "not valid YAML",
        True,
    ),
    ("png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe", "not valid YAML", False),
    ("empty", b"", "empty file", False),
    ("har-json", json.dumps({"log": {"entries": []}}), "no 'interactions'", False),
    ("plain-text", "just some notes about Ticketmaster\n", "top level is a str", False),
    ("wrong-version", VCRPY.replace("version: 1", "version: 2"), "unsupported cassette version 2", False),
    (
        "request-a-list",
        "version: 1\ninteractions:\n- request: [1, 2]\n  response: {}\n",
        "request must be a mapping",
        False,
    ),
    ("status-a-string", VCRPY.replace("code: 200", "code: '200'", 1), "integer code", False),
    (
        "headers-a-string",
        VCRPY.replace("headers: {}", "headers: oops", 1),
        "headers must be a mapping",
        False,
    ),
    (
        "body-a-number",
        VCRPY.replace("body: {string: ok}", "body: {string: 42}", 1),
        "a body must be a string",
        False,
    ),
]


def materialize(tmp_path: Path, name: str, content: str | bytes) -> tuple[Path, Path]:
    marker = tmp_path / f"pwned-{name}"
    path = tmp_path / f"{name}.yaml"
    path.write_bytes(
        content if isinstance(content, bytes) else content.replace("MARKER", str(marker)).encode()
    )
    return path, marker


@pytest.mark.parametrize(
    ("name", "content", "complaint", "has_line"), HOSTILE_CASSETTES, ids=[c[0] for c in HOSTILE_CASSETTES]
)
def test_hostile_cassettes_are_refused_with_a_clear_error_and_nothing_runs(
    tmp_path: Path, name: str, content: str | bytes, complaint: str | None, has_line: bool
):
    path, marker = materialize(tmp_path, name, content)
    with pytest.raises(CassetteError) as refused:
        load_cassette(path)
    if complaint is not None:
        assert complaint in str(refused.value)
    assert str(refused.value).startswith(str(path))
    if has_line:
        assert refused.value.line is not None and f"{path}, line {refused.value.line}:" in str(refused.value)
    assert not marker.exists()


def test_torn_tmproxy_cassettes_load_what_is_whole_and_say_so(tmp_path: Path):
    data = tmproxy_cassette(tmp_path)
    ends = [
        i + len(b"# tmproxy:end json\n")
        for i in range(len(data))
        if data.startswith(b"# tmproxy:end json\n", i)
    ]
    for keep, cut in ((2, ends[2] - 40), (1, ends[1] - 25), (0, ends[0] - 100)):
        path = tmp_path / f"torn-{cut}.yaml"
        path.write_bytes(data[:cut])
        loaded = load_cassette(path)
        assert len(loaded.exchanges) == keep
        assert loaded.warnings and "torn last interaction" in loaded.warnings[0]
    whole = tmp_path / "only-the-last-newline-missing.yaml"
    whole.write_bytes(data[: ends[1] - 1])  # the item is whole, only its closing comment was cut: kept
    assert len(load_cassette(whole).exchanges) == 2


def test_a_tmproxy_cassette_cut_inside_its_header_names_the_line(tmp_path: Path):
    data = tmproxy_cassette(tmp_path)
    path = tmp_path / "cut-header.yaml"
    path.write_bytes(
        b"version: 1\nmetadata:\n  tmproxy: '0.1\n  created: x\ninteractions: []\n" + data[200:300]
    )
    with pytest.raises(CassetteError) as refused:
        load_cassette(path)
    assert refused.value.line is not None


# --- through the command line ---------------------------------------------------------------------------

FAKE_HAR = {
    "not-json.har": b"hello, I am a HAR file",
    "no-entries.har": b'{"log": {}}',
    "list.har": b"[1, 2]",
    "entry-not-an-object.har": b'{"log": {"entries": [1]}}',
    "bad-date.har": json.dumps(
        {"log": {"entries": [{"startedDateTime": "yesterday", "request": {"method": "GET", "url": "x"}}]}}
    ).encode(),
    "infinite-status.har": b'{"log": {"entries": [{"startedDateTime": "2024-01-01T00:00:00Z", '
    b'"request": {"method": "GET", "url": "x"}, "response": {"status": 1e400}}]}}',
    "bad-base64.har": json.dumps(
        {
            "log": {
                "entries": [
                    {
                        "startedDateTime": "2024-01-01T00:00:00Z",
                        "request": {"method": "GET", "url": "x"},
                        "response": {"status": 200, "content": {"text": "!!!", "encoding": "base64"}},
                    }
                ]
            }
        }
    ).encode(),
    "deep.har": b"[" * 100_000 + b"]" * 100_000,
    "not-utf8.har": b'{"log": "\xff\xfe"}',
}


def deep_tnetstring(depth: int) -> bytes:
    inner = b"0:]"
    for _ in range(depth):
        inner = b"%d:%s]" % (len(inner), inner)
    return inner


FAKE_FLOWS = {
    "garbage.flow": b"\x00\x01 not a flow",
    "cassette.flow": VCRPY.encode(),
    "terabyte-length.flow": b"999999999999:x",
    "list-record.flow": tnetstring.dumps([1, 2, 3]),
    "number-record.flow": b"3:123#",
    "wrong-dict.flow": tnetstring.dumps({"type": "http", "version": 20}),
    "deep.flow": deep_tnetstring(5000),
    "har-inside.flow": b'{"log": {"entries": [{"nope": 1}]}}',
}

SNIFFED = {  # no known extension: the content decides the reader, and it still must be refused
    "capture": b"{ not json",
    "dump": b"12:not a flow",
    "notes.txt": b"\x00\xff\x00",
}


def audit(path: Path) -> subprocess.CompletedProcess[str]:
    return run_tmproxy("audit", str(path))


def test_audit_exits_2_on_every_hostile_file_naming_it(tmp_path: Path):
    files: list[tuple[Path, Path | None]] = []
    for name, content, _, _ in HOSTILE_CASSETTES:
        files.append(materialize(tmp_path, name, content))
    for name, data in {**FAKE_HAR, **FAKE_FLOWS, **SNIFFED}.items():
        (tmp_path / name).write_bytes(data)
        files.append((tmp_path / name, None))
    (tmp_path / "folder.yaml").mkdir()
    files.append((tmp_path / "folder.yaml", None))  # a folder without cassettes, named like one
    files.append((tmp_path / "missing.yaml", None))
    assert len(files) >= 40

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(audit, [path for path, _ in files]))
    for (path, marker), result in zip(files, results, strict=True):
        assert result.returncode == 2, f"{path.name}: exit {result.returncode}\n{result.stderr[-1500:]}"
        assert result.stderr.startswith(f"tmproxy audit: unusable input: {path}"), result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
        assert marker is None or not marker.exists()


@pytest.mark.parametrize("command", ["replay", "record"])
def test_replay_and_record_refuse_a_hostile_cassette_and_leave_it_alone(tmp_path: Path, command: str):
    path, marker = materialize(tmp_path, "evil", HOSTILE_CASSETTES[0][1])
    before = path.read_bytes()
    result = run_tmproxy(command, str(path), "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert str(path) in result.stderr and "unsafe or unknown YAML tag" in result.stderr
    assert "Traceback" not in result.stderr and "listening on" not in result.stdout
    assert path.read_bytes() == before and not marker.exists()


# --- cassette names -----------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    cassettes = tmp_path / "cassettes"
    (cassettes / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (cassettes / "out-link").symlink_to(tmp_path / "outside")
    (cassettes / "dangling.yaml").symlink_to(tmp_path / "outside" / "not-yet.yaml")
    (cassettes / "in-link").symlink_to(cassettes / "sub")
    return cassettes


@pytest.mark.parametrize(
    ("name", "inside"),
    [
        ("a.yaml", "a.yaml"),
        ("sub/b.yaml", "sub/b.yaml"),
        ("sub/../c.yaml", "c.yaml"),
        ("in-link/d.yaml", "sub/d.yaml"),
        ("~/e.yaml", "~/e.yaml"),  # no home-directory expansion: a folder called ~ inside
        ("a\\..\\..\\f.yaml", "a\\..\\..\\f.yaml"),  # a backslash is a plain character here
    ],
)
def test_names_inside_the_cassette_folder_resolve_inside_it(folder: Path, name: str, inside: str):
    assert resolve_cassette(name, folder) == folder.resolve() / inside


@pytest.mark.parametrize(
    "name",
    [
        "",
        "../x.yaml",
        "sub/../../x.yaml",
        "/etc/passwd",
        "//etc/passwd",
        "out-link/x.yaml",
        "dangling.yaml",
        "sub/../out-link/../../x.yaml",
        "a\x00b.yaml",
        ".",
        "sub/..",
        "sub",
        "in-link",
    ],
)
def test_names_escaping_or_not_naming_a_file_in_the_folder_are_refused(folder: Path, name: str):
    with pytest.raises(CassettePathError):
        resolve_cassette(name, folder)
    assert not (folder.parent / "x.yaml").exists()
