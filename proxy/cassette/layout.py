"""The byte layout of a tmproxy cassette file, which is a plain vcrpy cassette at every moment.

    version: 1
    metadata:
      created: '2024-05-01T12:00:00Z'
      tmproxy: 0.1.0
    interactions: []                 <- while empty; the first append overwrites " []" in place
    interactions:
    - {                              <- one item per interaction, in JSON syntax (a YAML flow mapping)
        "request": {...},
        "response": {...},
        "tmproxy": {...}
      }
    # tmproxy:end json               <- a YAML comment closing each complete item

Each item is appended in one write, and its closing comment is part of that write: whatever follows the
last closing comment is a torn item left by an interrupted write. Items are JSON (every JSON document
that `render_item` produces is also YAML that means the same) because `json.loads` is far faster than
any YAML loader; an item that JSON cannot carry (a binary body, a float YAML 1.1 would read as a
string) is written as block YAML instead and says so in its closing comment.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from proxy.cassette.errors import CassetteError

VERSION_LINE = b"version: 1\n"
INTERACTIONS_KEY = b"\ninteractions:"
EMPTY_INTERACTIONS = b" []\n"
END_MARKER = b"\n# tmproxy:end "
JSON_STYLE = "json"
YAML_STYLE = "yaml"

try:
    from yaml import CSafeDumper as _Dumper
    from yaml import CSafeLoader as _Loader
except ImportError:  # PyYAML built without libyaml
    from yaml import SafeDumper as _Dumper  # type: ignore[assignment]
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


class CassetteLoader(_Loader):
    """Safe YAML plus the harmless Python string and tuple tags that old vcrpy cassettes contain.

    Every other `!!python/...` tag (objects, modules, `apply`) is refused: a cassette is untrusted input.
    """


def _construct_str(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


def _construct_tuple(loader: yaml.SafeLoader, node: yaml.Node) -> tuple[Any, ...]:
    return tuple(loader.construct_sequence(node))  # type: ignore[arg-type]


CassetteLoader.add_constructor("tag:yaml.org,2002:python/str", _construct_str)
CassetteLoader.add_constructor("tag:yaml.org,2002:python/unicode", _construct_str)
CassetteLoader.add_constructor("tag:yaml.org,2002:python/tuple", _construct_tuple)

# Characters YAML may not hold raw (non-printable) or would read as line breaks: escaped as \uXXXX,
# which JSON and YAML both understand.
_NOT_YAML_SAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _escape_for_yaml(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


MAX_NESTING = 1000
"""Deeper YAML is refused: libyaml builds documents recursively in C, and some ten thousand levels of
`[[[...` overflow its stack, which kills the process instead of raising."""
_OPENING = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
_CLOSING = (yaml.SequenceEndEvent, yaml.MappingEndEvent)


def _too_deep(text: str | bytes) -> bool:
    """Whether the YAML nests deeper than MAX_NESTING, from the parser's events (the parser does not recurse).

    Only checked when the brackets alone could nest that deep: block nesting that deep would take a file
    of hundreds of megabytes of indentation.
    """
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= MAX_NESTING:
        return False
    depth = 0
    try:
        for event in yaml.parse(data, Loader=CassetteLoader):
            if isinstance(event, _OPENING):
                depth += 1
                if depth > MAX_NESTING:
                    return True
            elif isinstance(event, _CLOSING):
                depth -= 1
    except yaml.YAMLError:
        return False  # the load itself reports it, with its line
    return False


def _check_expansion(document: Any, budget: int, path: str | None) -> None:
    """Refuse aliases that make a small file a huge (a "billion laughs") or endless (recursive) tree.

    Counts each collection as often as it is referenced, without walking it more than once.
    """
    sizes: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[Any, bool]] = [(document, False)]
    while stack:
        node, children_done = stack.pop()
        children = list(node.values()) if isinstance(node, Mapping) else node
        if children_done:
            visiting.discard(id(node))
            size = 1 + sum(sizes.get(id(c), 1) for c in children)
            if size > budget:
                raise CassetteError("refused: YAML aliases expand it far beyond its size (a bomb?)", path)
            sizes[id(node)] = size
            continue
        if id(node) in sizes:
            continue
        if id(node) in visiting:
            raise CassetteError("refused: a YAML alias makes it contain itself", path)
        visiting.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in children if isinstance(c, Mapping | list) and id(c) not in sizes)


def safe_load(text: str | bytes, path: str | None = None, first_line: int = 1) -> Any:
    """Load YAML with `CassetteLoader`; any failure becomes a CassetteError naming the file and line."""
    if _too_deep(text):
        raise CassetteError(f"refused: YAML nested more than {MAX_NESTING} levels deep", path)
    try:
        document = yaml.load(text, Loader=CassetteLoader)  # noqa: S506 - CassetteLoader is a safe loader
    except RecursionError:
        raise CassetteError("refused: YAML nested too deeply", path) from None
    except yaml.constructor.ConstructorError as exc:
        raise CassetteError(
            f"refused an unsafe or unknown YAML tag ({exc.problem})", path, _error_line(exc, first_line)
        ) from None
    except yaml.MarkedYAMLError as exc:
        raise CassetteError(f"not valid YAML: {exc.problem}", path, _error_line(exc, first_line)) from None
    except yaml.YAMLError as exc:
        raise CassetteError(f"not valid YAML: {exc}", path) from None
    if isinstance(document, Mapping | list):
        _check_expansion(document, 4 * len(text) + 10_000, path)
    return document


def _error_line(exc: yaml.MarkedYAMLError, first_line: int) -> int | None:
    mark = exc.problem_mark or exc.context_mark
    return first_line + mark.line if mark is not None else None


def render_header(metadata: Mapping[str, Any]) -> bytes:
    """`version` and `metadata`, then an empty `interactions` list that the first append replaces."""
    head = yaml.dump(
        {"version": 1, "metadata": dict(metadata)},
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )
    return head.encode("utf-8") + INTERACTIONS_KEY[1:] + EMPTY_INTERACTIONS


def _json_safe(value: Any) -> bool:
    """Whether JSON syntax means the same to a YAML 1.1 loader: no bytes, and floats written with a dot."""
    if isinstance(value, str | bool | int) or value is None:
        return True
    if isinstance(value, float):
        text = repr(value)
        return math.isfinite(value) and "." in text and "e" not in text
    if isinstance(value, Mapping):
        return all(_json_safe(v) for v in value.values())
    if isinstance(value, list):
        return all(_json_safe(v) for v in value)
    return False


def _render_json(interaction: Mapping[str, Any]) -> str:
    text = json.dumps(interaction, ensure_ascii=False, indent=2)
    text = _NOT_YAML_SAFE.sub(_escape_for_yaml, text)
    # Continuation lines indented past the sequence dash, as YAML flow content must be.
    return "- " + text.replace("\n", "\n  ") + "\n"


def _render_yaml(interaction: Mapping[str, Any]) -> str:
    text: str = yaml.dump(
        [dict(interaction)],
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,  # never fold a line: a folded secret would hide from the canary
    )
    return text


class _NotJsonSafe(Exception):
    """What `_json_safe` refuses: a float JSON would spell unlike YAML, or bytes."""


class _Unusual(Exception):
    """A type `_fast_json` leaves to `json.dumps` (a subclass, a non-dict mapping, a non-str key...)."""


_encode_string = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses (C if built)


def _fast_json(value: Any, newline: str) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=2)` with each line break written as `newline`, for
    plain JSON types only; raises _NotJsonSafe where `_json_safe` is false, _Unusual for anything else.

    Several times faster: with `indent`, json.dumps runs its pure-Python encoder.
    """
    kind = type(value)
    if kind is str:
        return _encode_string(value)
    if kind is dict:
        if not value:
            return "{}"
        inner = newline + "  "
        parts = []
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual
            # Strings, most values, without a call of their own.
            text = _encode_string(item) if type(item) is str else _fast_json(item, inner)
            parts.append(f"{_encode_string(key)}: {text}")
        return "{" + inner + ("," + inner).join(parts) + newline + "}"
    if kind is list:
        if not value:
            return "[]"
        inner = newline + "  "
        items = [_encode_string(item) if type(item) is str else _fast_json(item, inner) for item in value]
        return "[" + inner + ("," + inner).join(items) + newline + "]"
    if value is None:
        return "null"
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        text = float.__repr__(value)
        if not math.isfinite(value) or "." not in text or "e" in text:
            raise _NotJsonSafe
        return text
    if kind is bytes:
        raise _NotJsonSafe
    raise _Unusual


def render_item(interaction: Mapping[str, Any]) -> str:
    """One interaction as the text appended to the file, closing comment (which names its style) included."""
    try:
        # What `_render_json` writes, the sequence dash's indentation included.
        text = _fast_json(interaction, "\n  ")
        style, text = JSON_STYLE, "- " + _NOT_YAML_SAFE.sub(_escape_for_yaml, text) + "\n"
    except _NotJsonSafe:
        style, text = YAML_STYLE, _render_yaml(interaction)
    except _Unusual:
        if _json_safe(interaction):
            style, text = JSON_STYLE, _render_json(interaction)
        else:
            style, text = YAML_STYLE, _render_yaml(interaction)
    return text + END_MARKER[1:].decode() + style + "\n"


@dataclass
class Item:
    style: str
    start: int
    end: int


@dataclass
class Layout:
    """Where things are in a tmproxy cassette file (byte offsets)."""

    header_end: int
    items: list[Item] = field(default_factory=list)
    complete_end: int = 0  # end of the last complete item (or of the empty list)
    empty_at: int | None = None  # offset of " []" while the cassette has no interactions

    def tail(self, data: bytes) -> bytes:
        """What follows the last complete item: empty, or a torn item."""
        return data[self.complete_end :]


def split_layout(data: bytes) -> Layout | None:
    """The layout of a file written by tmproxy, or None for anything else (e.g. a cassette vcrpy wrote)."""
    if not data.startswith(VERSION_LINE):
        return None
    key = data.find(INTERACTIONS_KEY)
    if key < 0:
        return None
    after = key + len(INTERACTIONS_KEY)
    if data.startswith(EMPTY_INTERACTIONS, after):
        return Layout(header_end=key + 1, complete_end=after + len(EMPTY_INTERACTIONS), empty_at=after)
    if not data.startswith(b"\n", after):
        return None
    layout = Layout(header_end=key + 1, complete_end=after, empty_at=after)
    start = after + 1
    while (marker := data.find(END_MARKER, start - 1)) >= 0:
        line_end = data.find(b"\n", marker + 1)
        if line_end < 0:
            break
        style = data[marker + len(END_MARKER) : line_end].decode("ascii", "replace")
        layout.items.append(Item(style, start, marker + 1))
        start = layout.complete_end = line_end + 1
        layout.empty_at = None
    return layout


def parse_item(data: bytes, item: Item, path: str | None, first_line: int | None = None) -> Any:
    """One item's interaction dict; JSON items fall back to YAML (a hand-edited item may be either).

    `first_line`: the item's line in the file, when `data` is not the whole file from its start."""
    chunk = data[item.start : item.end]
    if item.style == JSON_STYLE:
        try:
            return json.loads(chunk[2:])
        except (ValueError, RecursionError):
            pass
    if first_line is None:
        first_line = data.count(b"\n", 0, item.start) + 1
    loaded = safe_load(chunk, path, first_line)
    if not isinstance(loaded, list) or len(loaded) != 1:
        raise CassetteError("an interactions item must be a single list entry", path, first_line)
    return loaded[0]
