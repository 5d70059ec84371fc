"""One `Exchange` <-> one vcrpy version-1 interaction dict, exactly as vcrpy writes them.

vcrpy reads only `request` and `response` of an interaction (`vcr.serialize.deserialize`), and builds its
`Request` from exactly the four keys `body`, `headers`, `method`, `uri`; so what the audit needs beyond
that lives under an interaction-level `tmproxy` key, which vcrpy ignores.

Bodies are stored decoded (no Content-Encoding) so that cassettes are readable and diffable; text bodies
(valid UTF-8) are stored as strings and binary ones as bytes (YAML `!!binary`), as vcrpy does.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from http import HTTPStatus
from typing import Any

from proxy.cassette.errors import CassetteError
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.findings import Finding, Severity

log = logging.getLogger(__name__)

CASSETTE_VERSION = 1
TMPROXY_KEY = "tmproxy"


class _Undecodable(Exception):
    """A content coding we cannot undo: the body is kept as it travelled."""


def _decode_gzip(body: bytes) -> bytes:
    return gzip.decompress(body)


def _decode_deflate(body: bytes) -> bytes:
    """HTTP "deflate" is meant to be zlib-wrapped, but some servers send raw deflate."""
    try:
        return zlib.decompress(body)
    except zlib.error:
        return zlib.decompress(body, -zlib.MAX_WBITS)


def _decode_brotli(body: bytes) -> bytes:
    import brotli  # imported lazily: optional, shipped with mitmproxy

    result: bytes = brotli.decompress(body)
    return result


class _Zstandard:
    """`zstandard` (what mitmproxy 11 ships) behind the standard library's compress/decompress."""

    @staticmethod
    def compress(body: bytes) -> bytes:
        import zstandard

        result: bytes = zstandard.ZstdCompressor().compress(body)
        return result

    @staticmethod
    def decompress(body: bytes) -> bytes:
        import zstandard

        # A decompressobj also handles frames that do not record their content size.
        result: bytes = zstandard.ZstdDecompressor().decompressobj().decompress(body)
        return result


def _zstd_codec() -> Any:
    """Imported lazily, zstd being optional: the standard library's (3.14), its backport (which
    mitmproxy 12 ships), else `zstandard`; an ImportError when there is none."""
    try:
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        try:
            from backports import zstd  # type: ignore[import-not-found, no-redef, unused-ignore]
        except ImportError:
            return _Zstandard
    return zstd


def _decode_zstd(body: bytes) -> bytes:
    decoded: bytes = _zstd_codec().decompress(body)
    return decoded


_DECODERS = {
    "gzip": _decode_gzip,
    "x-gzip": _decode_gzip,
    "deflate": _decode_deflate,
    "br": _decode_brotli,
    "zstd": _decode_zstd,
}


def _encode_gzip(body: bytes) -> bytes:
    return gzip.compress(body, mtime=0)


def _encode_brotli(body: bytes) -> bytes:
    import brotli

    result: bytes = brotli.compress(body)
    return result


def _encode_zstd(body: bytes) -> bytes:
    encoded: bytes = _zstd_codec().compress(body)
    return encoded


_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": _encode_gzip,
    "x-gzip": _encode_gzip,
    "deflate": zlib.compress,
    "br": _encode_brotli,
    "zstd": _encode_zstd,
}


def content_codings(headers: Headers) -> list[str]:
    """The Content-Encoding codings in the order they were applied, without `identity`."""
    codings: list[str] = []
    for value in headers.get_all("Content-Encoding"):
        codings.extend(c.strip().lower() for c in value.split(","))
    return [c for c in codings if c and c != "identity"]


def _undo_coding(coding: str, body: bytes) -> bytes:
    decoder = _DECODERS.get(coding)
    if decoder is None:
        raise _Undecodable(f"unknown content coding {coding!r}")
    try:
        return decoder(body)
    except ImportError as exc:
        raise _Undecodable(f"no decoder installed for {coding!r}") from exc
    except Exception as exc:  # each decoder has its own error type; a corrupt body must not stop recording
        raise _Undecodable(f"corrupt {coding!r} body: {exc}") from exc


def decode_body(body: bytes, headers: Headers) -> tuple[bytes, Headers]:
    """The body without its Content-Encoding, and headers to match (no Content-Encoding, fixed length).

    Codings are undone in reverse order of application. When one cannot be undone (unknown coding,
    missing decoder, corrupt data) the raw bytes and the original headers are kept, so nothing is lost.
    """
    codings = content_codings(headers)
    if not codings or not body:
        return body, headers
    decoded = body
    try:
        for coding in reversed(codings):
            decoded = _undo_coding(coding, decoded)
    except _Undecodable as exc:
        log.debug("keeping an encoded body as it travelled: %s", exc)
        return body, headers
    fixed = Headers(headers.items())
    fixed.remove("Content-Encoding")
    fixed.set("Content-Length", str(len(decoded)))
    return decoded, fixed


def encode_body(body: bytes, codings: list[str]) -> bytes | None:
    """`body` with `codings` applied in order (a decoded body made to travel as it came);
    None when one of them cannot be applied (unknown coding, encoder not installed)."""
    for coding in codings:
        encoder = _ENCODERS.get(coding)
        if encoder is None:
            return None
        try:
            body = encoder(body)
        except ImportError:
            return None
    return body


def decode_stored_body(body: bytes, headers: Headers) -> tuple[bytes, Headers]:
    """`decode_body` for a body read from a cassette.

    vcrpy 9 records bodies already decoded yet keeps the upstream's Content-Encoding (and its length); so a
    text body that does not decode is taken as plain text (compressed data is never valid UTF-8 in
    practice). A binary one is kept with its Content-Encoding, as a corrupt upstream body was recorded.
    """
    decoded, fixed = decode_body(body, headers)
    if fixed is not headers or not content_codings(headers) or isinstance(body_to_yaml(body), bytes):
        return decoded, fixed
    plain = Headers(headers.items())
    plain.remove("Content-Encoding")
    return body, _fixed_length(body, plain)


def decoded_exchange(exchange: Exchange) -> Exchange:
    """The exchange with both bodies decoded: redaction and replay keys need the real content.

    The exchange itself when neither body has a content coding (nearly always: not copied).
    """
    response = exchange.response
    if not content_codings(exchange.request.headers) and (
        response is None or not content_codings(response.headers)
    ):
        return exchange
    body, headers = decode_body(exchange.request.body, exchange.request.headers)
    request = replace(exchange.request, body=body, headers=headers)
    response = exchange.response
    if response is not None:
        body, headers = decode_body(response.body, response.headers)
        response = replace(response, body=body, headers=headers)
    return replace(exchange, request=request, response=response)


def _fixed_length(body: bytes, headers: Headers) -> Headers:
    """Content-Length must match the stored body, or clients replaying it would hang or truncate.

    An empty body keeps its header: a HEAD response announces the length of a body it does not carry.
    """
    declared = headers.get("Content-Length")
    if declared is None or not body or declared == str(len(body)):
        return headers
    fixed = Headers(headers.items())
    fixed.set("Content-Length", str(len(body)))
    return fixed


def body_to_yaml(body: bytes) -> str | bytes:
    """vcrpy's convention: text as a string, anything else as bytes (YAML `!!binary`)."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body


def body_from_yaml(value: Any) -> bytes:
    """A stored body back to bytes; vcrpy writes null for a request without a body."""
    if value is None:
        return b""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    raise CassetteError(f"a body must be a string or bytes, not {type(value).__name__}")


def _clean_text(value: str) -> str:
    """Header fields and URLs may carry undecodable bytes as lone surrogates, which no file can hold."""
    if value.isascii():
        return value
    return value.encode("utf-8", "replace").decode("utf-8")


def _headers_to_yaml(headers: Headers) -> dict[str, list[str]]:
    return {_clean_text(k): [_clean_text(v) for v in vs] for k, vs in headers.as_lists().items()}


def _headers_from_yaml(value: Any) -> Headers:
    if value is None:
        return Headers()
    if not isinstance(value, Mapping):
        raise CassetteError(f"headers must be a mapping, not {type(value).__name__}")
    return Headers.from_mapping(dict(value))


def request_to_dict(request: Request) -> dict[str, Any]:
    body, headers = decode_body(request.body, request.headers)
    headers = _fixed_length(body, headers)
    return {
        "body": body_to_yaml(body) if body else None,
        "headers": _headers_to_yaml(headers),
        "method": _clean_text(request.method),
        "uri": _clean_text(request.url),
    }


def response_to_dict(response: Response) -> dict[str, Any]:
    body, headers = decode_body(response.body, response.headers)
    headers = _fixed_length(body, headers)
    return {
        "body": {"string": body_to_yaml(body)},
        "headers": _headers_to_yaml(headers),
        "status": {"code": response.status, "message": response.reason or _reason_phrase(response.status)},
    }


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _plain(value: Any) -> Any:
    """Finding evidence as plain data that safe YAML and JSON can both hold."""
    if isinstance(value, Mapping):
        return {_clean_text(str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _clean_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return _clean_text(str(value))


def finding_to_dict(finding: Finding) -> dict[str, Any]:
    plain: dict[str, Any] = _plain(finding.to_dict())
    return plain


def finding_from_dict(value: Any, exchange_id: str) -> Finding:
    if not isinstance(value, Mapping):
        raise CassetteError("a finding must be a mapping")
    request = value.get("request")
    request = request if isinstance(request, Mapping) else {}
    evidence = value.get("evidence")
    try:
        severity = Severity.parse(str(value.get("severity", "info")))
    except ValueError as exc:
        raise CassetteError(str(exc)) from exc
    return Finding(
        rule=str(value.get("rule", "")),
        severity=severity,
        message=str(value.get("message", "")),
        exchange_id=str(value.get("interaction") or exchange_id),
        method=str(request.get("method", "")),
        url=str(request.get("uri", "")),
        evidence=dict(evidence) if isinstance(evidence, Mapping) else {},
    )


def exchange_to_interaction(exchange: Exchange, findings: Iterable[Finding] = ()) -> dict[str, Any]:
    """The vcrpy interaction for an exchange (which must have a response), plus the `tmproxy` key."""
    if exchange.response is None:
        raise ValueError("an exchange without a response cannot be stored as a vcrpy interaction")
    audit: dict[str, Any] = {
        "id": exchange.id,
        "started_at": exchange.started_at,
        "ended_at": exchange.ended_at,
        "client": exchange.client,
        "findings": [finding_to_dict(f) for f in findings],
    }
    if exchange.fan:
        audit["fan"] = dict(exchange.fan)
    return {
        "request": request_to_dict(exchange.request),
        "response": response_to_dict(exchange.response),
        TMPROXY_KEY: audit,
    }


AUDIT_KEYS = frozenset({"id", "started_at", "ended_at", "client", "findings"})


def is_complete_interaction(value: Any) -> bool:
    """Whether an item holds everything tmproxy writes (the request, the response, the whole `tmproxy` key)."""
    if not isinstance(value, Mapping):
        return False
    request, response, audit = value.get("request"), value.get("response"), value.get(TMPROXY_KEY)
    return (
        isinstance(request, Mapping)
        and isinstance(request.get("method"), str)
        and isinstance(request.get("uri"), str)
        and isinstance(response, Mapping)
        and isinstance(response.get("status"), Mapping)
        and isinstance(response["status"].get("code"), int)
        and isinstance(audit, Mapping)
        and audit.keys() >= AUDIT_KEYS
    )


def _mapping(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise CassetteError(f"{what} must be a mapping, not {type(value).__name__}")
    return value


def _request_from_dict(value: Any) -> Request:
    request = _mapping(value, "request")
    if not isinstance(request.get("method"), str) or not isinstance(request.get("uri"), str):
        raise CassetteError("request needs a method and a uri")
    body, headers = decode_stored_body(
        body_from_yaml(request.get("body")), _headers_from_yaml(request.get("headers"))
    )
    return Request(method=request["method"], url=request["uri"], headers=headers, body=body)


def _response_from_dict(value: Any) -> Response:
    response = _mapping(value, "response")
    status = _mapping(response.get("status"), "response status")
    code = status.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        raise CassetteError("response status needs an integer code")
    body = response.get("body")
    string = body.get("string") if isinstance(body, Mapping) else None
    decoded, headers = decode_stored_body(body_from_yaml(string), _headers_from_yaml(response.get("headers")))
    return Response(status=code, headers=headers, body=decoded, reason=str(status.get("message") or ""))


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _fan_record(value: Any) -> dict[str, str] | None:
    """The fan key digests a recording kept (see proxy.fans); anything else is not a fan record."""
    if not isinstance(value, Mapping):
        return None
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def interaction_to_exchange(interaction: Any, index: int) -> tuple[Exchange, list[Finding]]:
    """An interaction (tmproxy's or plain vcrpy's) back to an exchange with decoded bodies, and its findings.

    Bodies vcrpy stored compressed (with `decode_compressed_response` off) are decoded here.

    Interactions without a `tmproxy` key get the id `interaction-<index>` and time 0.
    """
    item = _mapping(interaction, "an interaction")
    audit = item.get(TMPROXY_KEY)
    audit = audit if isinstance(audit, Mapping) else {}
    exchange = Exchange(
        request=_request_from_dict(item.get("request")),
        response=_response_from_dict(item.get("response")),
        started_at=_number(audit.get("started_at")) or 0.0,
        ended_at=_number(audit.get("ended_at")),
        client=str(audit.get("client") or ""),
        id=str(audit.get("id") or f"interaction-{index}"),
        fan=_fan_record(audit.get("fan")),
    )
    findings = audit.get("findings")
    found = [finding_from_dict(f, exchange.id) for f in findings] if isinstance(findings, list) else []
    return exchange, found
