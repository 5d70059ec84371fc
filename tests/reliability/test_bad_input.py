"""Bad input through a real `tmproxy record`: malformed bodies and headers, every compression, huge and
deep bodies, unknown paths. Each case checks what a partner would notice: the app got exactly the
upstream's answer, the cassette holds exactly one interaction per request (bodies stored decoded), and
the findings are the expected ones, live (`tmproxy.findings`) and in an offline audit of the cassette.

One proxy serves every case (each case has its own events and session ids, so rule state never
crosses cases); the last test stops it and checks the whole cassette.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import brotli
import pytest
import vcr
from mitmproxy.net import encoding
from reliability.harness import Fields, Reply, ScriptedUpstream, scripted_upstream, send

from proxy.audit.engine import audit_exchanges
from proxy.cassette import load_cassette
from proxy.exchange import Exchange
from proxy.processes import CliProcess
from proxy.processes import recording as recording_to

JSON = (("Content-Type", "application/json"),)
SID_HEADER = "X-TM-SESSION-SID"


def sid_of(case: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tmproxy-bad-input/{case}"))


def ticket_of(case: str) -> str:
    return f"resale-listing-{case}"


def now_ms() -> int:
    return int(time.time() * 1000)


def picks(
    case: str, price: float = 100.0, start: Any = None, expire: Any = None, **extra: Any
) -> dict[str, Any]:
    start = now_ms() if start is None else start
    expire = now_ms() + 3_600_000 if expire is None else expire
    sid: dict[str, Any] = {"sessionId": sid_of(case)}
    if start != "absent":
        sid["sessionStartTime"] = start
    if expire != "absent":
        sid["sessionExpireTime"] = expire
    body = {
        "fanSession": {"resaleSid": sid},
        "_embedded": {
            "offer": [
                {
                    "offerId": f"R-{case}",
                    "ticketId": ticket_of(case),
                    "totalPrice": price,
                    "inventoryType": "resale",
                }
            ]
        },
    }
    body.update(extra)
    return body


SID_MISSING = frozenset({"sid-missing"})


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


def reserve_body(case: str) -> bytes:
    return dumps({"reserve": {"tickets": [{"id": ticket_of(case), "quantity": 2}]}})


def charged(case: str, price: float) -> bytes:
    """A reserve's 200 answer charging `price` per ticket (no cart_id: no cart is left open)."""
    item = {
        "id": ticket_of(case),
        "offer_id": f"R-{case}",
        "quantity": 2,
        "inventory_type": "Resale",
        "charges": [{"type": "face_value", "price": price, "quantity": 2, "tax": 0}],
    }
    return dumps({"cart": {"items": [item], "totals": {"grand": price * 2}}})


def nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@dataclass
class Step:
    method: str
    path: str
    reply: Reply
    headers: Fields = ()
    body: bytes | None = None
    chunked: bool = False
    expect: frozenset[str] = frozenset()
    check: Callable[[Exchange, Reply], None] | None = None
    offline: frozenset[str] | None = None  # what an audit of the cassette finds, when not `expect`


@dataclass
class Case:
    id: str
    steps: list[Step] = field(default_factory=list)


def top_picks(case: str, reply: Reply, expect: frozenset[str] = frozenset(), **kw: Any) -> Step:
    return Step("GET", f"/top-picks/v1/events/EV-{case}?apikey=k", reply, expect=expect, **kw)


def reserve(
    case: str,
    sid: str | None | list[str] = "own",
    reply: Reply | None = None,
    expect: frozenset[str] = frozenset(),
    body: bytes | None = None,
    headers: Fields = (),
    **kw: Any,
) -> Step:
    fields = list(JSON) + list(headers)
    sids = [sid_of(case)] if sid == "own" else ([] if sid is None else [sid] if isinstance(sid, str) else sid)
    fields += [(SID_HEADER, s) for s in sids]
    return Step(
        "POST",
        f"/partners/v1/events/EV-{case}/cart?apikey=k",
        reply or Reply(200, charged(case, 100.0)),
        headers=fields,
        body=reserve_body(case) if body is None else body,
        expect=expect,
        **kw,
    )


def stored_decoded(plain: bytes) -> Callable[[Exchange, Reply], None]:
    def check(recorded: Exchange, reply: Reply) -> None:
        assert recorded.response is not None
        assert recorded.response.body == plain
        assert "Content-Encoding" not in recorded.response.headers
        assert recorded.response.headers.get("Content-Length") == str(len(plain))

    return check


def stored_as_travelled(recorded: Exchange, reply: Reply) -> None:
    assert recorded.response is not None and recorded.response.body == reply.body
    assert recorded.response.headers.get("Content-Encoding") == dict(reply.headers)["Content-Encoding"]


def stored_exactly(recorded: Exchange, reply: Reply) -> None:
    assert recorded.response is not None and recorded.response.body == reply.body


def too_deep_replaced(recorded: Exchange, reply: Reply) -> None:
    """JSON too deep to inspect for secrets is kept down to a depth, then replaced by the placeholder."""
    assert recorded.response is not None
    body = recorded.response.json()
    assert isinstance(body, dict) and b'"REDACTED"' in recorded.response.body
    assert recorded.response.body.startswith(b'{"a":' * 100)


def request_stored(body: bytes) -> Callable[[Exchange, Reply], None]:
    def check(recorded: Exchange, reply: Reply) -> None:
        assert recorded.request.body == body

    return check


def compressed(case: str, coding: str, encode: Callable[[bytes], bytes]) -> Case:
    """Top Picks compressed by the upstream: recorded decoded, and its session learnt (no sid-unknown)."""
    plain = dumps(picks(case))
    reply = Reply(200, encode(plain), (*JSON, ("Content-Encoding", coding)))
    return Case(case, [top_picks(case, reply, check=stored_decoded(plain)), reserve(case)])


def raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def unknown_session(case: str, **times: Any) -> Case:
    """Top Picks whose session times are unusable: the session is not learnt, the reserve's id is unknown."""
    reply = Reply(200, dumps(picks(case, **times)))
    return Case(case, [top_picks(case, reply), reserve(case, expect=frozenset({"sid-unknown"}))])


def plain_case(case: str, step: Step) -> Case:
    return Case(case, [step])


BIG = 20 * 1024 * 1024
PICKS_ONLY = Reply(200, b"{}")

CASES: list[Case] = [
    Case("tp-valid", [top_picks("tp-valid", Reply(200, dumps(picks("tp-valid")))), reserve("tp-valid")]),
    plain_case("tp-truncated-json", top_picks("tp-truncated-json", Reply(200, dumps(picks("x"))[:57]))),
    plain_case(
        "tp-malformed-json", top_picks("tp-malformed-json", Reply(200, b'{"fanSession": {"resaleSid": ,]}'))
    ),
    plain_case(
        "tp-html-as-json", top_picks("tp-html-as-json", Reply(200, b"<html><body>Oops</body></html>"))
    ),
    plain_case("tp-empty-body", top_picks("tp-empty-body", Reply(200, b""))),
    plain_case("tp-json-array", top_picks("tp-json-array", Reply(200, b"[1, 2, 3]"))),
    plain_case(
        "tp-wrong-types",
        top_picks(
            "tp-wrong-types",
            Reply(
                200,
                dumps(
                    {
                        "fanSession": {"resaleSid": "abc"},
                        "_embedded": {
                            "offer": [1, None, {"totalPrice": "12", "offerId": 7}, {"totalPrice": True}]
                        },
                        "messages": {"not": "a list"},
                    }
                ),
            ),
        ),
    ),
    Case(
        "tp-times-as-strings",
        [
            top_picks(
                "tp-times-as-strings",
                Reply(
                    200,
                    dumps(
                        picks("tp-times-as-strings", start=str(now_ms()), expire=str(now_ms() + 3_600_000))
                    ),
                ),
            ),
            reserve("tp-times-as-strings"),
        ],
    ),
    unknown_session("tp-times-absent", start="absent", expire="absent"),
    unknown_session("tp-times-negative", start=-5, expire=-1),
    unknown_session("tp-times-nonsense", start="soon", expire="later"),
    unknown_session("tp-times-null", start=[], expire={"ms": 1}),
    Case(
        "tp-session-expired",
        [
            top_picks(
                "tp-session-expired", Reply(200, dumps(picks("tp-session-expired", start=1000, expire=2000)))
            ),
            reserve("tp-session-expired", expect=frozenset({"sid-expired"})),
        ],
    ),
    plain_case(
        "tp-non-utf8",
        top_picks(
            "tp-non-utf8",
            Reply(
                200,
                b'{"name": "Beyonc\xe9 \xff\xfe"}',
                (("Content-Type", "application/json; charset=latin-1"),),
            ),
            check=stored_exactly,
        ),
    ),
    compressed("tp-gzip", "gzip", gzip.compress),
    compressed("tp-x-gzip", "x-gzip", gzip.compress),
    compressed("tp-deflate", "deflate", zlib.compress),
    compressed("tp-deflate-raw", "deflate", raw_deflate),
    compressed("tp-br", "br", brotli.compress),
    compressed("tp-zstd", "zstd", lambda body: encoding.encode(body, "zstd")),
    compressed("tp-br-then-gzip", "br, gzip", lambda body: gzip.compress(brotli.compress(body))),
    plain_case(
        "tp-gzip-corrupt",
        top_picks(
            "tp-gzip-corrupt",
            Reply(200, b"\x1f\x8b\x08\x00garbage, not gzip", (*JSON, ("Content-Encoding", "gzip"))),
            check=stored_as_travelled,
        ),
    ),
    plain_case(
        "tp-unknown-coding",
        top_picks(
            "tp-unknown-coding",
            Reply(200, b"\x00\xff\xfe packed", (*JSON, ("Content-Encoding", "x-tm-pack"))),
            check=stored_as_travelled,
        ),
    ),
    plain_case(
        "tp-expired-message",
        top_picks(
            "tp-expired-message",
            Reply(200, dumps({"errors": [{"code": "SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED"}]})),
            expect=frozenset({"session-expired"}),
        ),
    ),
    plain_case(
        "tp-20mb-body",
        top_picks(
            "tp-20mb-body",
            Reply(200, b'{"filler": "' + b"x" * BIG + b'"}'),
            check=lambda recorded, reply: stored_exactly(recorded, reply),
        ),
    ),
    plain_case("tp-deep-json-100k", top_picks("tp-deep-json-100k", Reply(200, nested(100_000)))),
    plain_case(
        "tp-deep-json-700", top_picks("tp-deep-json-700", Reply(200, nested(700)), check=too_deep_replaced)
    ),
    Case(
        "tp-chunked",
        [
            top_picks("tp-chunked", Reply(200, dumps(picks("tp-chunked")), chunked=True)),
            reserve("tp-chunked"),
        ],
    ),
    plain_case("reserve-no-sid", reserve("reserve-no-sid", sid=None, expect=frozenset({"sid-missing"}))),
    plain_case("reserve-empty-sid", reserve("reserve-empty-sid", sid="", expect=frozenset({"sid-missing"}))),
    plain_case(
        "reserve-blank-sid", reserve("reserve-blank-sid", sid="   ", expect=frozenset({"sid-missing"}))
    ),
    Case(
        "reserve-same-sid-twice",
        [
            top_picks("reserve-same-sid-twice", Reply(200, dumps(picks("reserve-same-sid-twice")))),
            reserve("reserve-same-sid-twice", sid=[sid_of("reserve-same-sid-twice")] * 2),
        ],
    ),
    plain_case(
        "reserve-two-sids",
        reserve("reserve-two-sids", sid=[sid_of("a"), sid_of("b")], expect=frozenset({"sid-malformed"})),
    ),
    plain_case(
        "reserve-sid-not-uuid",
        reserve("reserve-sid-not-uuid", sid="12345", expect=frozenset({"sid-malformed"})),
    ),
    plain_case(
        "reserve-sid-not-utf8",
        reserve(
            "reserve-sid-not-utf8",
            sid=None,
            headers=[(SID_HEADER, b"\xff\xfe-not-a-session".decode("latin-1"))],
            expect=frozenset({"sid-malformed"}),
        ),
    ),
    # An unreadable reserve body names no ticket, but the answer reserved resale inventory without a
    # session: judged on the response, that is still sid-missing.
    plain_case(
        "reserve-truncated-json",
        reserve("reserve-truncated-json", sid=None, body=reserve_body("x")[:30], expect=SID_MISSING),
    ),
    plain_case(
        "reserve-malformed-json",
        reserve("reserve-malformed-json", sid=None, body=b'{"reserve": [}', expect=SID_MISSING),
    ),
    plain_case(
        "reserve-not-utf8-body",
        reserve(
            "reserve-not-utf8-body",
            sid=None,
            body=b'{"reserve": "\xff\xfe\xfd"}',
            check=request_stored(b'{"reserve": "\xff\xfe\xfd"}'),
            expect=SID_MISSING,
        ),
    ),
    plain_case(
        "reserve-chunked-body",
        reserve("reserve-chunked-body", sid=None, chunked=True, expect=frozenset({"sid-missing"})),
    ),
    plain_case(
        "reserve-gzip-body",
        reserve(
            "reserve-gzip-body",
            sid=None,
            body=gzip.compress(reserve_body("reserve-gzip-body")),
            headers=[("Content-Encoding", "gzip")],
            expect=frozenset({"sid-missing"}),
            check=request_stored(reserve_body("reserve-gzip-body")),
        ),
    ),
    Case(
        "reserve-truncated-answer",
        [
            top_picks("reserve-truncated-answer", Reply(200, dumps(picks("reserve-truncated-answer")))),
            reserve(
                "reserve-truncated-answer", reply=Reply(200, charged("reserve-truncated-answer", 140.0)[:40])
            ),
        ],
    ),
    Case(
        "reserve-price-changed",
        [
            top_picks("reserve-price-changed", Reply(200, dumps(picks("reserve-price-changed")))),
            reserve(
                "reserve-price-changed",
                reply=Reply(200, charged("reserve-price-changed", 140.0)),
                expect=frozenset({"price-mismatch"}),
            ),
        ],
    ),
    Case(
        "reserve-price-changed-gzip",
        [
            top_picks("reserve-price-changed-gzip", Reply(200, dumps(picks("reserve-price-changed-gzip")))),
            reserve(
                "reserve-price-changed-gzip",
                reply=Reply(
                    200,
                    gzip.compress(charged("reserve-price-changed-gzip", 140.0)),
                    (*JSON, ("Content-Encoding", "gzip")),
                ),
                expect=frozenset({"price-mismatch"}),
            ),
        ],
    ),
    plain_case(
        "commit-with-post",
        Step(
            "POST",
            "/partners/v1/events/EV-commit-with-post/cart?apikey=k",
            Reply(400, dumps({"error": {"code": 21001}})),
            headers=JSON,
            body=dumps({"cart_id": "cart-commit-with-post"}),
            expect=frozenset({"commit-not-put"}),
        ),
    ),
    plain_case(
        "payment-plain-card",
        Step(
            "PUT",
            "/partners/v1/events/EV-payment-plain-card/cart/payment?apikey=k",
            Reply(200, b"{}"),
            headers=JSON,
            body=dumps({"cart_id": "c", "payment": {"card": {"number": "4111111111111111", "cin": "123"}}}),
            expect=frozenset({"unencrypted-card"}),
            offline=frozenset(),  # the recording holds the card number REDACTED: only the live finding says
        ),
    ),
    plain_case(
        "oauth-bad-form",
        Step(
            "POST",
            "/oauth/token?apikey=k",
            Reply(400, dumps({"error": "invalid_request"})),
            headers=(("Content-Type", "application/x-www-form-urlencoded"),),
            body=b"grant_type=authorization_code&code=%zz&client_secret=%E0%A4&&=&x",
        ),
    ),
    plain_case(
        "unknown-path",
        Step("GET", "/no/such/path?apikey=k", Reply(404, b"not here", (("Content-Type", "text/plain"),))),
    ),
    plain_case(
        "unknown-method", Step("PATCH", "/partners/v2/whatever?apikey=k", Reply(405, b""), body=b"\x00\x01")
    ),
    plain_case(
        "head-request",
        Step("HEAD", "/top-picks/v1/events/EV-head?apikey=k", Reply(200, dumps(picks("head")))),
    ),
    plain_case(
        "no-content", Step("DELETE", "/partners/v1/events/EV-204/cart?apikey=k&cart_id=c", Reply(204, b""))
    ),
]


@dataclass
class Recording:
    proxy: CliProcess
    upstream: ScriptedUpstream
    cassette: Path
    sent: dict[str, Step] = field(default_factory=dict)


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recording]:
    cassette = tmp_path_factory.mktemp("bad-input") / "bad-input.yaml"
    with scripted_upstream() as upstream:
        with recording_to(cassette, upstream.url) as proxy:
            yield Recording(proxy, upstream, cassette)


def test_there_are_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_case(recording: Recording, case: Case):
    keys = []
    for n, step in enumerate(case.steps):
        key = f"{case.id}.{n}"
        keys.append(key)
        recording.upstream.replies[key] = step.reply
        answer = send(
            recording.proxy.url, step.method, f"{step.path}&case={key}", step.headers, step.body, step.chunked
        )
        recording.sent[key] = step
        assert answer.status == step.reply.status, answer.body[:300]
        assert answer.body == (b"" if step.method == "HEAD" else step.reply.body)
        assert recording.proxy.proc.poll() is None, "the proxy died"

    cassette = load_cassette(recording.cassette)
    assert not cassette.warnings
    for key, step in zip(keys, case.steps, strict=True):
        recorded = [ex for ex in cassette.exchanges if ex.request.url.endswith(f"&case={key}")]
        assert len(recorded) == 1, f"{key}: {len(recorded)} interactions recorded"
        (exchange,) = recorded
        assert exchange.response is not None and exchange.response.status == step.reply.status
        live = {f.rule for f in cassette.findings if f.exchange_id == exchange.id}
        assert live == step.expect, key
        if step.check is not None:
            step.check(exchange, step.reply)


def test_the_whole_bad_input_cassette_loads_everywhere_and_audits_the_same(recording: Recording):
    assert recording.proxy.stop() == 0
    assert "Traceback" not in recording.proxy.stderr_text, recording.proxy.stderr_text[-3000:]
    cassette = load_cassette(recording.cassette)
    assert len(cassette.exchanges) == len(recording.sent)
    assert f"recorded: {len(recording.sent)} interactions" in recording.proxy.stdout

    offline = audit_exchanges(cassette.exchanges)
    by_key = {ex.id: ex.request.url.rsplit("&case=", 1)[1] for ex in cassette.exchanges}
    for key, step in recording.sent.items():
        found = {f.rule for f in offline if by_key.get(f.exchange_id) == key}
        assert found == (step.expect if step.offline is None else step.offline), key
    assert not [f for f in offline if f.exchange_id not in by_key]

    with vcr.use_cassette(str(recording.cassette), record_mode="none") as played:
        assert len(played.data) == len(recording.sent)
