"""Fuzzing with hypothesis: the cassette reader raises nothing but CassetteError; the Ticketmaster body
parsers, the audit rules, the live fan-session guard and the recorder's write path raise nothing at all,
whatever the traffic. Example counts are modest: these run on every CI run."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proxy import ticketmaster as tm
from proxy.audit.engine import audit_exchanges
from proxy.cassette import CassetteError, CassetteWriter, load_cassette, open_cassette, parse_cassette
from proxy.cassette.reader import stream_cassette
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.fan_session import FanSessionGuard, SidPolicy
from proxy.replay import shift_session_document, shift_session_times

FUZZ = settings(max_examples=150, deadline=None)
FEW = settings(max_examples=60, deadline=None)

# --- values that Ticketmaster-shaped JSON could hold ----------------------------------------------------

KEYS = st.sampled_from(
    [
        "fanSession", "resaleSid", "sessionId", "sessionStartTime", "sessionExpireTime", "_embedded", "offer",
        "offerId", "ticketId", "totalPrice", "reserve", "tickets", "id", "quantity", "price", "amount",
        "cart", "items", "charges", "offer_id", "inventory_type", "cart_id", "polling_url", "wait",
        "payment", "card", "number", "cin", "encryption_key", "access_token", "expires_in", "error",
        "code", "message", "grant_type",
    ]
)  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(
        ["SESSION_HAS_EXPIRED_PRICE_MIGHT_HAVE_CHANGED", "resale-1", "4111111111111111", "12", "-5"]
    ),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(KEYS, st.text(max_size=6)), children, max_size=5),
    ),
    max_leaves=25,
)


def top_picks_shaped() -> st.SearchStrategy[dict[str, Any]]:
    sid = st.fixed_dictionaries(
        {},
        optional={
            "sessionId": JSONISH | st.uuids().map(str),
            "sessionStartTime": JSONISH,
            "sessionExpireTime": JSONISH,
        },
    )
    offer = st.fixed_dictionaries(
        {}, optional={"offerId": JSONISH, "ticketId": JSONISH, "totalPrice": JSONISH}
    )
    return st.fixed_dictionaries(
        {},
        optional={
            "fanSession": st.one_of(JSONISH, st.fixed_dictionaries({"resaleSid": sid})),
            "_embedded": st.one_of(
                JSONISH, st.fixed_dictionaries({"offer": st.lists(offer | JSONISH, max_size=3)})
            ),
        },
    )


def reserve_shaped() -> st.SearchStrategy[dict[str, Any]]:
    ticket = st.fixed_dictionaries(
        {}, optional={"id": JSONISH | st.just("resale-1"), "quantity": JSONISH, "price": JSONISH}
    )
    item = st.fixed_dictionaries(
        {}, optional={"id": JSONISH, "charges": st.lists(JSONISH | st.fixed_dictionaries({"price": JSONISH}))}
    )
    return st.one_of(
        st.fixed_dictionaries(
            {"reserve": st.one_of(JSONISH, st.fixed_dictionaries({"tickets": st.lists(ticket | JSONISH)}))}
        ),
        st.fixed_dictionaries(
            {"cart": st.one_of(JSONISH, st.fixed_dictionaries({"items": st.lists(item | JSONISH)}))}
        ),
        st.fixed_dictionaries({"cart_id": JSONISH}, optional={"reserve": JSONISH}),
    )


BODY_VALUES = st.one_of(JSONISH, top_picks_shaped(), reserve_shaped())


@FUZZ
@given(
    body=BODY_VALUES,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "post", ""]),
    path=st.text(max_size=60),
)
def test_ticketmaster_parsers_never_raise(body: Any, method: str, path: str):
    tm.top_picks_event(path)
    tm.cart_event(path)
    tm.is_polling_path(path)
    tm.classify_cart_call(method, path)
    tm.is_commit_attempt(method, "/partners/v1/events/E/cart", body)
    tm.is_commit_attempt(method, path, body)
    tm.looks_like_session_id(path)
    tm.parse_epoch_ms(body)
    tm.resale_sid(body)
    tm.offer_prices(body)
    tm.reserved_tickets(body)
    tm.charged_items(body)


# --- arbitrary exchanges ---------------------------------------------------------------------------------

PATHS = st.one_of(
    st.sampled_from(
        [
            "/top-picks/v1/events/E1",
            "/top-picks-preprod/v1/events/E1/",
            "/partners/v1/events/E1/cart",
            "/partners/v1/events/E1/cart/shipping",
            "/partners/v1/events/E1/cart/payment",
            "/partners/v1/polling/abc",
            "/oauth/token",
            "/",
        ]
    ),
    st.text(alphabet="/abcE1%?&=-_.", max_size=30).map(lambda p: "/" + p),
)
QUERIES = st.sampled_from(
    ["", "?apikey=k", "?apikey=secret-apikey-123456&cart_id=c1", "?cart_id=", "?a=%zz&&="]
)
HEADER_NAMES = st.sampled_from(
    ["X-TM-SESSION-SID", "Authorization", "Content-Type", "Content-Encoding", "Set-Cookie", "Cookie",
     "x-api-key", "Retry-After", "Ratelimit-Expiry", "Content-Length", "X-Other"]
)  # fmt: skip
HEADER_VALUES = st.one_of(
    st.text(max_size=30),
    st.uuids().map(str),
    st.sampled_from(
        ["Bearer tok-abcdefghij", "gzip", "br, gzip", "application/json", "60", "1700000000000", ""]
    ),
)


def bodies() -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=40),
        BODY_VALUES.map(lambda v: json.dumps(v, allow_nan=True).encode()),
        st.sampled_from(
            [b"", b"{", b'{"reserve": [', b"\xff\xfe", b"a=1&code=x&client_secret=%E0", b"[" * 3000]
        ),
    )


TIMES = st.one_of(
    st.floats(min_value=0, max_value=4e9), st.sampled_from([0.0, -1.0, math.inf, math.nan, 1_700_000_000.0])
)


@st.composite
def exchanges(draw: st.DrawFn) -> Exchange:
    headers = Headers(draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5)))
    request = Request(
        draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "OPTIONS"])),
        "https://app.ticketmaster.com" + draw(PATHS) + draw(QUERIES),
        headers,
        draw(bodies()),
    )
    response = None
    if draw(st.booleans()):
        response = Response(
            draw(st.sampled_from([200, 202, 204, 400, 404, 428, 429, 500, 999])),
            Headers(draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4))),
            draw(bodies()),
        )
    started = draw(TIMES)
    ended = draw(st.one_of(st.none(), TIMES))
    client = draw(st.sampled_from(["127.0.0.1:1", "10.0.0.2:5", "[::1]:7", "", "nonsense"]))
    return Exchange(request, response, started, ended, client)


@FUZZ
@given(traffic=st.lists(exchanges(), max_size=8))
def test_the_audit_rules_never_raise_on_any_traffic(traffic: list[Exchange]):
    findings = audit_exchanges(traffic)
    ids = {ex.id for ex in traffic}
    assert all(f.exchange_id in ids for f in findings)


@FEW
@given(traffic=st.lists(exchanges(), max_size=6), policy=st.sampled_from(list(SidPolicy)))
def test_the_live_guard_never_raises_on_any_traffic(traffic: list[Exchange], policy: SidPolicy):
    guard = FanSessionGuard(policy)
    for exchange in traffic:
        guard.request(exchange)
        guard.response(exchange)
    guard.finish()
    guard.summary().lines()


@pytest.fixture(scope="module")
def fuzz_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@FEW
@given(traffic=st.lists(exchanges(), min_size=1, max_size=4))
def test_whatever_is_recorded_reads_back(fuzz_folder: Path, traffic: list[Exchange]):
    assume(all(math.isfinite(ex.started_at) for ex in traffic))
    path = fuzz_folder / "fuzzed.yaml"
    with CassetteWriter(path, overwrite=True) as writer:
        written = sum(writer.append(ex) for ex in traffic)
    loaded = load_cassette(path)
    assert len(loaded.exchanges) == written == sum(ex.response is not None for ex in traffic)
    assert not loaded.warnings


# --- the cassette reader ---------------------------------------------------------------------------------


def real_cassette() -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "seed.yaml"
        with CassetteWriter(path) as writer:
            for n in range(2):
                request = Request(
                    "POST", f"https://app.ticketmaster.com/partners/v1/events/E/cart?apikey=k&n={n}"
                )
                writer.append(Exchange(request, Response(200, Headers([("A", "b")]), b'{"cart_id": "c"}')))
            writer.append(Exchange(Request("GET", "https://x/bin"), Response(200, body=b"\xff\x00binary")))
        return path.read_bytes()


SEED = real_cassette()
VCRPY_SEED = (
    b"interactions:\n- request: {body: null, headers: {A: [b]}, method: GET, uri: 'https://a/b'}\n"
    b"  response: {body: {string: ok}, headers: {}, status: {code: 200, message: OK}}\nversion: 1\n"
)
YAML_BITS = st.sampled_from(
    [
        b"version: 1\n", b"interactions:\n", b"interactions: []\n", b"- ", b"{", b"}", b"[", b"]", b": ", b"\n",
        b"  ", b"request: ", b"response: ", b"status: {code: 200}", b"method: GET", b"uri: x", b"body: ",
        b"string: !!binary AAAA", b"!!python/str a", b"!!python/object:os.system", b"&a ", b"*a", b"'", b'"',
        b"# tmproxy:end json\n", b"# tmproxy:end yaml\n", b"metadata: {tmproxy: 1}\n", b"tmproxy: ", b"\t",
        b"\xff", b"%YAML 1.1\n", b"---\n", b"...\n", b"? ", b"|\n", b">\n", b"headers: {Content-Encoding: [gzip]}",
    ]
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "flip"]))
        if action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(YAML_BITS | st.binary(max_size=8))
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 40))]
        elif data:
            data[min(at, len(data) - 1)] ^= draw(st.integers(1, 255))
    return bytes(data)


def reads_or_refuses(data: bytes) -> None:
    try:
        parse_cassette(data, "fuzzed.yaml")
    except CassetteError as exc:
        assert str(exc).startswith("fuzzed.yaml")


@FUZZ
@given(data=st.binary(max_size=300))
def test_the_reader_refuses_random_bytes_with_cassette_error_only(data: bytes):
    reads_or_refuses(data)


@FUZZ
@given(data=st.lists(YAML_BITS, max_size=30).map(b"".join))
def test_the_reader_refuses_yaml_soup_with_cassette_error_only(data: bytes):
    reads_or_refuses(b"version: 1\n" + data)


@FUZZ
@given(data=st.one_of(mutated(SEED), mutated(VCRPY_SEED)))
def test_the_reader_refuses_damaged_cassettes_with_cassette_error_only(data: bytes):
    reads_or_refuses(data)


@FUZZ
@given(
    interactions=st.lists(
        st.one_of(
            JSONISH,
            st.fixed_dictionaries(
                {"request": JSONISH, "response": JSONISH},
                optional={
                    "tmproxy": st.one_of(JSONISH, st.fixed_dictionaries({"findings": st.lists(JSONISH)}))
                },
            ),
            st.fixed_dictionaries(
                {
                    "request": st.fixed_dictionaries(
                        {"method": st.just("GET"), "uri": st.just("https://a/b")},
                        optional={"headers": JSONISH, "body": JSONISH},
                    ),
                    "response": st.fixed_dictionaries(
                        {"status": st.fixed_dictionaries({"code": st.integers() | JSONISH})},
                        optional={"headers": JSONISH, "body": JSONISH},
                    ),
                    "tmproxy": st.fixed_dictionaries(
                        {},
                        optional={
                            "id": JSONISH,
                            "started_at": JSONISH,
                            "ended_at": JSONISH,
                            "findings": JSONISH,
                        },
                    ),
                }
            ),
        ),
        max_size=3,
    ),
    tmproxy_layout=st.booleans(),
)
def test_the_reader_refuses_wrongly_shaped_interactions_with_cassette_error_only(
    interactions: list[Any], tmproxy_layout: bool
):
    if tmproxy_layout:
        items = b"".join(
            b"- " + json.dumps(i, allow_nan=True).encode() + b"\n# tmproxy:end json\n" for i in interactions
        )
        data = b"version: 1\nmetadata:\n  tmproxy: 0.1.0\ninteractions:" + (
            b"\n" + items if items else b" []\n"
        )
    else:
        data = json.dumps({"version": 1, "interactions": interactions}, allow_nan=True).encode()
    reads_or_refuses(data)


def read_outcome(read: Callable[[], Any]) -> Any:
    """What reading gives: every exchange, finding, the metadata and warnings; or the error message."""
    try:
        stream = read()
        interactions = list(stream.interactions)
    except CassetteError as exc:
        return str(exc)
    return interactions, stream.metadata, stream.warnings


@FUZZ
@given(data=st.one_of(mutated(SEED), mutated(VCRPY_SEED)), chunk_size=st.integers(1, 80))
def test_a_cassette_streamed_in_chunks_reads_as_one_read_whole(
    fuzz_folder: Path, data: bytes, chunk_size: int
):
    """The replay index reads a file a chunk at a time (`open_cassette`): whatever the damage, it must
    give what reading the whole file gives, error messages and torn-item warnings included."""
    path = fuzz_folder / "streamed.yaml"
    path.write_bytes(data)
    whole = read_outcome(lambda: stream_cassette(data, str(path)))
    assert read_outcome(lambda: open_cassette(path, chunk_size)) == whole


EPOCH_MS = st.integers(0, 2**53) | st.integers(0, 2**53).map(str) | st.floats(0, 1e13)
USABLE_SESSION = st.fixed_dictionaries(
    {
        "fanSession": st.fixed_dictionaries(
            {
                "resaleSid": st.fixed_dictionaries(
                    {
                        "sessionId": st.uuids().map(str),
                        "sessionStartTime": EPOCH_MS,
                        "sessionExpireTime": EPOCH_MS,
                    },
                    optional={"note": JSONISH},
                )
            },
            optional={"other": JSONISH},
        )
    },
    optional={"_embedded": JSONISH, "page": JSONISH, "name": st.text(max_size=10)},
)


@FUZZ
@given(body=top_picks_shaped() | USABLE_SESSION, now=st.floats(min_value=0, max_value=4e9))
def test_a_session_shifted_from_a_template_is_the_session_shifted_by_hand(body: dict[str, Any], now: float):
    """Replays shift a recorded Top Picks body through a template made once per body: it must give
    what parsing it, moving the times and dumping it again gives, byte for byte."""
    raw = json.dumps(body, allow_nan=True).encode()
    document = json.loads(raw)
    if shift_session_document(document, now):
        expected = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
    else:
        expected = raw
    assert shift_session_times(raw, now) == expected
    assert shift_session_times(raw, now) == expected  # and again, from the template
