"""Reading cassettes: tmproxy's own (fast path) and any version-1 cassette vcrpy wrote, into `Exchange`s.

Only safe YAML is ever loaded (`layout.CassetteLoader`): a cassette is untrusted input. A tmproxy file whose
last item was torn by an interrupted write is read without that item, with a warning; the writer's
open-for-append truncates the torn bytes away (`CassetteWriter`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, BinaryIO

from proxy.cassette.errors import CassetteError
from proxy.cassette.format import (
    CASSETTE_VERSION,
    TMPROXY_KEY,
    interaction_to_exchange,
    is_complete_interaction,
)
from proxy.cassette.layout import (
    END_MARKER,
    INTERACTIONS_KEY,
    Item,
    Layout,
    parse_item,
    safe_load,
    split_layout,
)
from proxy.exchange import Exchange
from proxy.findings import Finding

log = logging.getLogger(__name__)


@dataclass
class Cassette:
    """A loaded cassette: its exchanges in file order, their findings, metadata, and load warnings."""

    path: str
    metadata: dict[str, Any] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def load_cassette(path: str | Path) -> Cassette:
    """Load a cassette file; raises CassetteError for anything that is not a usable cassette."""
    return parse_cassette(_read(path), str(path))


def _read(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CassetteError(f"cannot read: {exc.strerror or exc}", path) from None


def parse_cassette(data: bytes, path: str = "<cassette>") -> Cassette:
    """Parse the bytes of a cassette file (see `load_cassette`)."""
    stream = stream_cassette(data, path)
    cassette = Cassette(path=path, metadata=stream.metadata, warnings=stream.warnings)
    for exchange, findings in stream.interactions:
        cassette.exchanges.append(exchange)
        cassette.findings.extend(findings)
    return cassette


@dataclass
class CassetteStream:
    """A cassette whose header was read and checked, and whose interactions are converted one at a time
    as they are iterated (a CassetteError, naming the interaction, comes when a bad one is reached)."""

    path: str
    metadata: dict[str, Any]
    warnings: list[str]
    interactions: Iterator[tuple[Exchange, list[Finding]]]


READ_CHUNK = 1 << 16


def open_cassette(path: str | Path, chunk_size: int = READ_CHUNK) -> CassetteStream:
    """`load_cassette` keeping neither the file nor every exchange in memory: a tmproxy cassette's items
    are read `chunk_size` bytes at a time as they are iterated. Any other layout is read whole, as YAML
    must be. The warning about a torn last item joins `warnings` once the iteration reaches it."""
    try:
        handle = Path(path).open("rb")  # noqa: SIM115 - closed by the item generator, or below
    except OSError as exc:
        raise CassetteError(f"cannot read: {exc.strerror or exc}", path) from None
    try:
        head = _read_head(handle, chunk_size)
        layout = split_layout(head)
        metadata = _tmproxy_metadata(head, layout, str(path)) if layout is not None else None
        if layout is None or metadata is None or layout.empty_at is not None:
            with handle:  # not streamed: another layout, or no item yet
                return stream_cassette(head + handle.read(), str(path))
    except BaseException:
        handle.close()
        raise
    start = layout.header_end + len(INTERACTIONS_KEY)  # after "interactions:\n", where items begin
    warnings: list[str] = []
    items = _streamed_items(handle, head, start, str(path), chunk_size, warnings)
    return CassetteStream(str(path), metadata, warnings, _converted(items, str(path)))


def _read_head(handle: BinaryIO, chunk_size: int) -> bytes:
    """The file up to a little past `interactions:`, or all of it when it has no such line."""
    head = handle.read(chunk_size)
    while (head.find(INTERACTIONS_KEY) < 0 or len(head) < head.find(INTERACTIONS_KEY) + 16) and (
        more := handle.read(chunk_size)
    ):
        head += more
    return head


def _streamed_items(
    handle: BinaryIO, buffer: bytes, start: int, path: str, chunk_size: int, warnings: list[str]
) -> Iterator[Any]:
    """The parsed items of a tmproxy cassette from `start` on (`split_layout`'s scan, a chunk at a time),
    then the whole unmarked items after the last one; a torn tail becomes a warning."""
    with handle:
        line = buffer.count(b"\n", 0, start) + 1
        consumed = 0  # bytes of the file before buffer[0]
        at_end = False
        while True:
            marker = buffer.find(END_MARKER, start - 1)
            line_end = buffer.find(b"\n", marker + 1) if marker >= 0 else -1
            if line_end < 0:
                if at_end:
                    break
                try:
                    more = handle.read(chunk_size)
                except OSError as exc:
                    raise CassetteError(f"cannot read: {exc.strerror or exc}", path) from None
                at_end = not more
                consumed += start - 1
                buffer, start = buffer[start - 1 :] + more, 1
                continue
            style = buffer[marker + len(END_MARKER) : line_end].decode("ascii", "replace")
            yield parse_item(buffer, Item(style, start, marker + 1), path, first_line=line)
            line += buffer.count(b"\n", start, line_end + 1)
            start = line_end + 1
    unmarked, torn = _classify_tail(buffer[start:], consumed + start, path)
    if torn:
        warnings.append(torn)
    yield from unmarked


def stream_cassette(data: bytes, path: str = "<cassette>") -> CassetteStream:
    """The bytes of a cassette file as a `CassetteStream`."""
    if not data or data.isspace():  # not `data.strip()`: that copies the whole file
        raise CassetteError("empty file, not a cassette", path)
    own = inspect_tmproxy_file(data, path)
    items: Iterable[Any]
    if own is not None:
        metadata = own.metadata
        # Parsed one at a time as they are converted: never all the parsed dicts at once in memory.
        items = chain((parse_item(data, item, path) for item in own.layout.items), own.unmarked)
        warnings = [own.torn] if own.torn else []
    else:
        metadata, items = _read_any_layout(data, path)
        warnings = []
    return CassetteStream(path, metadata, warnings, _converted(items, path))


def _converted(items: Iterable[Any], path: str) -> Iterator[tuple[Exchange, list[Finding]]]:
    for index, item in enumerate(items):
        try:
            yield interaction_to_exchange(item, index)
        except CassetteError as exc:
            raise CassetteError(f"interaction {index}: {exc.reason}", path) from None


@dataclass
class TmproxyFile:
    """A file in tmproxy's append-only layout, and the state of what follows its last complete item."""

    layout: Layout
    metadata: dict[str, Any]
    unmarked: list[Any]  # whole items without a closing comment (added by hand): kept
    torn: str | None  # the warning when a torn item follows: ignored, and truncated by the writer


def inspect_tmproxy_file(data: bytes, path: str) -> TmproxyFile | None:
    """The layout of a file tmproxy wrote (its metadata has a `tmproxy` key), or None for any other file."""
    layout = split_layout(data)
    if layout is None:
        return None
    metadata = _tmproxy_metadata(data, layout, path)
    if metadata is None:
        return None
    unmarked, torn = _classify_tail(layout.tail(data), layout.complete_end, path)
    return TmproxyFile(layout, metadata, unmarked, torn)


def _tmproxy_metadata(data: bytes, layout: Layout, path: str) -> dict[str, Any] | None:
    """The metadata of a header tmproxy wrote (checked), or None when it has no `tmproxy` key."""
    header = safe_load(data[: layout.header_end], path)
    metadata = header.get("metadata") if isinstance(header, Mapping) else None
    if not isinstance(metadata, Mapping) or TMPROXY_KEY not in metadata:
        return None
    _check_document(header, path, needs_interactions=False)
    return dict(metadata)


def _classify_tail(tail: bytes, complete_end: int, path: str) -> tuple[list[Any], str | None]:
    """After the last closing comment: nothing, whole items (kept), or a torn item (a warning)."""
    if not tail.strip():
        return [], None
    try:
        items = safe_load(tail.lstrip(b"\n"), path)
    except CassetteError:
        items = None
    if isinstance(items, list) and items and all(is_complete_interaction(i) for i in items):
        return items, None
    warning = (
        f"{path}: ignored a torn last interaction ({len(tail)} bytes after byte {complete_end}), "
        "left by an interrupted write"
    )
    log.warning("%s", warning)
    return [], warning


def _read_any_layout(data: bytes, path: str) -> tuple[dict[str, Any], list[Any]]:
    document = _check_document(safe_load(data, path), path, needs_interactions=True)
    return _metadata(document), document.get("interactions") or []


def _check_document(document: Any, path: str, needs_interactions: bool) -> Mapping[str, Any]:
    """A cassette is a mapping with `version: 1` and a list of `interactions` (null counts as empty)."""
    if (
        isinstance(document, list)
        and document
        and isinstance(document[0], Mapping)
        and "request" in document[0]
    ):
        raise CassetteError(
            "an old (pre-1.0) vcrpy cassette: migrate it with `python -m vcr.migration`", path
        )
    if not isinstance(document, Mapping):
        raise CassetteError(
            f"not a cassette: the top level is a {type(document).__name__}, not a mapping", path
        )
    if needs_interactions and "interactions" not in document:
        raise CassetteError("not a cassette: it has no 'interactions'", path)
    version = document.get("version")
    if version != CASSETTE_VERSION:
        raise CassetteError(f"unsupported cassette version {version!r}: tmproxy reads version 1", path)
    interactions = document.get("interactions")
    if interactions is not None and not isinstance(interactions, list):
        raise CassetteError("'interactions' must be a list", path)
    return document


def _metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    metadata = document.get("metadata")
    return dict(metadata) if isinstance(metadata, Mapping) else {}
