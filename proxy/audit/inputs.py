"""Recorded traffic for the audit: cassettes, HAR files and mitmproxy flow files, as Exchanges.

Folders are searched recursively by file extension; a file named explicitly with another extension
is sniffed. Every input must be usable: a missing, unreadable or malformed file, or YAML that asks
for Python objects, raises `AuditInputError` naming the file (the CLI exits 2), because an audit
that silently skipped a file would report a clean bill of health it never checked.

Exchange ids: a tmproxy cassette keeps each interaction's recorded id and a flow file each flow's
id; interactions without one (plain vcrpy cassettes, HAR entries) get `<file name>#<index>`, the
0-based position in that file. Reports call this id `interaction`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import urlencode

from ..cassette.errors import CassetteError
from ..cassette.reader import load_cassette
from ..exchange import Exchange, Headers, Request, Response
from ..findings import Finding

logger = logging.getLogger(__name__)

CASSETTE_SUFFIXES = (".yaml", ".yml")
HAR_SUFFIXES = (".har",)
FLOW_SUFFIXES = (".flow", ".flows", ".mitm")
KNOWN_SUFFIXES = CASSETTE_SUFFIXES + HAR_SUFFIXES + FLOW_SUFFIXES
VCRPY_STEP_S = 1.0
"""Plain vcrpy cassettes record no times: interaction i starts at i seconds and ends half a second
later, so the order is kept but time-based rules (polling, quota, tokens) need tmproxy cassettes."""

_TNETSTRING_START = re.compile(rb"^\d{1,12}:")


class AuditInputError(Exception):
    """An input the audit cannot use; the message names the file and says why."""


def load_exchanges(paths: Iterable[Path], recorded: list[Finding] | None = None) -> list[Exchange]:
    """Every exchange in the given files and folders (and, into `recorded`, the findings cassettes hold)."""
    return list(iter_exchanges(paths, recorded))


def iter_exchanges(paths: Iterable[Path], recorded: list[Finding] | None = None) -> Iterator[Exchange]:
    """The generator form of `load_exchanges`, file by file."""
    for path in find_inputs(paths):
        yield from read_input(path, recorded)


def find_inputs(paths: Iterable[Path]) -> list[Path]:
    """The files to read: named files as given, folders searched for known extensions, no repeats."""
    found: list[Path] = []
    seen: set[Path] = set()
    for path in paths:
        if path.is_dir():
            candidates = sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in KNOWN_SUFFIXES
            )
            if not candidates:
                raise AuditInputError(
                    f"{path}: no cassette (.yaml), HAR (.har) or flow (.flow) files in this folder"
                )
        elif path.exists():
            candidates = [path]
        else:
            raise AuditInputError(f"{path}: no such file or folder")
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def read_input(path: Path, recorded: list[Finding] | None = None) -> list[Exchange]:
    """The exchanges of one file, read according to its extension or, failing that, its content.

    A tmproxy cassette also holds the findings the proxy made live; they go into `recorded`.
    """
    suffix = path.suffix.lower()
    if suffix in CASSETTE_SUFFIXES:
        return read_cassette(path, recorded)
    if suffix in HAR_SUFFIXES:
        return read_har(path)
    if suffix in FLOW_SUFFIXES:
        return read_flows(path)
    reader = _sniffed_reader(path)
    return read_cassette(path, recorded) if reader is read_cassette else reader(path)


def _sniffed_reader(path: Path) -> Callable[[Path], list[Exchange]]:
    try:
        with path.open("rb") as stream:
            head = stream.read(256).lstrip()
    except OSError as error:
        raise AuditInputError(f"{path}: cannot read: {error.strerror or error}") from None
    if head.startswith(b"{"):
        return read_har
    if _TNETSTRING_START.match(head):
        return read_flows
    return read_cassette


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise AuditInputError(f"{path}: cannot read: {error.strerror or error}") from None


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError:
        raise AuditInputError(f"{path}: not UTF-8 text") from None


# --- cassettes ---------------------------------------------------------------------------------


def read_cassette(path: Path, recorded: list[Finding] | None = None) -> list[Exchange]:
    """A tmproxy or plain vcrpy cassette, through the cassette package's (safe YAML) reader.

    Plain vcrpy interactions carry neither times nor ids: they get `VCRPY_STEP_S`-spaced times in
    file order and `<file name>#<index>` ids, so that they neither all overlap nor clash across files.
    """
    try:
        cassette = load_cassette(path)
    except CassetteError as error:
        raise AuditInputError(str(error)) from None
    except RecursionError:
        raise AuditInputError(f"{path}: YAML nested too deeply") from None
    for index, exchange in enumerate(cassette.exchanges):
        if exchange.started_at == 0.0 and exchange.ended_at is None:
            exchange.started_at = index * VCRPY_STEP_S
            exchange.ended_at = (
                exchange.started_at + VCRPY_STEP_S / 2 if exchange.response is not None else None
            )
        if exchange.id == f"interaction-{index}":
            exchange.id = f"{path.name}#{index}"
    if recorded is not None:
        recorded.extend(cassette.findings)
    return cassette.exchanges


# --- HAR -----------------------------------------------------------------------------------------


def read_har(path: Path) -> list[Exchange]:
    """A HAR 1.2 file: one exchange per entry (HAR records no client address)."""
    try:
        document = json.loads(_read_text(path))
    except (ValueError, RecursionError) as error:
        raise AuditInputError(f"{path}: not a HAR file (invalid JSON: {error})") from None
    log = document.get("log") if isinstance(document, dict) else None
    entries = log.get("entries") if isinstance(log, dict) else None
    if not isinstance(entries, list):
        raise AuditInputError(f"{path}: not a HAR file (no log.entries list)")
    try:
        return [_har_exchange(path, index, entry) for index, entry in enumerate(entries)]
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, binascii.Error) as error:
        raise AuditInputError(f"{path}: malformed HAR entry: {error}") from None


def _har_exchange(path: Path, index: int, entry: dict[str, Any]) -> Exchange:
    started = _utc_timestamp(datetime.fromisoformat(entry["startedDateTime"]))
    duration = max(float(entry.get("time") or 0), 0.0) / 1000
    req, resp = entry["request"], entry.get("response")
    request = Request(
        method=str(req["method"]).upper(),
        url=str(req["url"]),
        headers=_har_headers(req.get("headers")),
        body=_har_post_data(req.get("postData")),
    )
    response = None
    if isinstance(resp, dict) and int(resp.get("status") or 0) > 0:
        headers = _har_headers(resp.get("headers"))
        headers.remove("Content-Encoding")  # HAR content text is already decoded
        response = Response(
            status=int(resp["status"]),
            headers=headers,
            body=_har_content(resp.get("content")),
            reason=str(resp.get("statusText") or ""),
        )
    return Exchange(
        request=request,
        response=response,
        started_at=started,
        ended_at=started + duration,
        id=f"{path.name}#{index}",
    )


def _utc_timestamp(moment: datetime) -> float:
    """A time without a zone is taken as UTC, never as the auditing machine's local time."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _har_headers(fields: Any) -> Headers:
    """HAR headers, without HTTP/2 pseudo-headers (`:authority`), which the URL already holds."""
    return Headers(
        (str(h["name"]), str(h["value"])) for h in fields or [] if not str(h["name"]).startswith(":")
    )


def _har_post_data(post: Any) -> bytes:
    if not isinstance(post, dict):
        return b""
    if isinstance(post.get("text"), str):
        return post["text"].encode("utf-8")
    params = post.get("params")
    if isinstance(params, list):
        return urlencode([(p["name"], p.get("value", "")) for p in params]).encode()
    return b""


def _har_content(content: Any) -> bytes:
    if not isinstance(content, dict) or not isinstance(content.get("text"), str):
        return b""
    if content.get("encoding") == "base64":
        return base64.b64decode(content["text"], validate=True)
    return content["text"].encode("utf-8")


# --- mitmproxy flow files ------------------------------------------------------------------------


def read_flows(path: Path) -> list[Exchange]:
    """A `mitmdump -w` file: its HTTP flows (other flow types carry no Ticketmaster calls)."""
    from mitmproxy import exceptions, http, io

    from addons.convert import exchange_of

    exchanges: list[Exchange] = []
    try:
        with path.open("rb") as stream:
            for flow in io.FlowReader(cast(BinaryIO, _CappedReads(stream, path.stat().st_size))).stream():
                if isinstance(flow, http.HTTPFlow):
                    exchanges.append(exchange_of(flow))
    except OSError as error:
        raise AuditInputError(f"{path}: cannot read: {error.strerror or error}") from None
    except RecursionError:
        raise AuditInputError(f"{path}: not a mitmproxy flow file (nested too deeply)") from None
    except (
        exceptions.FlowReadException,
        ValueError,
        TypeError,
        KeyError,
        AttributeError,
        IndexError,
    ) as error:  # what a flow file's records decode to is untrusted: any shape may come out
        raise AuditInputError(f"{path}: not a mitmproxy flow file ({error})") from None
    logger.debug("%s: %d HTTP flows", path, len(exchanges))
    return exchanges


class _CappedReads:
    """A flow file for mitmproxy's reader, which reads each record's declared length in one go: a length
    beyond the file's size (up to 12 digits, a terabyte) must not make it try to allocate that much."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream = stream
        self._size = size

    def read(self, n: int = -1) -> bytes:
        return self._stream.read(self._size if n < 0 or n > self._size else n)

    def peek(self, n: int) -> bytes:
        return self._stream.peek(n) if hasattr(self._stream, "peek") else b""
