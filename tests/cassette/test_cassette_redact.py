"""Redaction: every secret kind in every place, the scrub, and the canary that refuses to write a leak."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from cassette.cassette_helpers import EVENT, UPSTREAM, exchange, json_bytes

from proxy.cassette import (
    PLACEHOLDER,
    CassetteWriter,
    RedactionRules,
    Redactor,
    SecretLeakError,
    load_cassette,
    redact_exchange,
)
from proxy.cassette.redact import looks_secret
from proxy.exchange import Exchange, Headers, Request, Response
from proxy.findings import Finding, Severity

APIKEY = "Ak7elxdku9GGG5k8j0Xm8KWdANDgecHMV0"
ACCESS = "at-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
REFRESH = "rt-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
CLIENT_SECRET = "cs-S3cr3t/With+Odd=Chars&more"
CODE = "ac-55aa66bb77cc88dd"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig123"
CARD = "4111111111111111"
CIN = "737"
ENC_KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
COOKIE = "sess-0123456789abcdef"
SET_COOKIE = "tmid-fedcba9876543210"
SECRETS = [APIKEY, ACCESS, REFRESH, CLIENT_SECRET, CODE, ID_TOKEN, CARD, ENC_KEY, COOKIE, SET_COOKIE]


def _token_exchange() -> Exchange:
    form = f"grant_type=authorization_code&client_id=partner&client_secret={quote(CLIENT_SECRET, safe='')}&code={CODE}"
    return exchange(
        "POST",
        "https://oauth.ticketmaster.com/oauth/token",
        [("Content-Type", "application/x-www-form-urlencoded")],
        form.encode(),
        response_body=json_bytes(
            {"access_token": ACCESS, "refresh_token": REFRESH, "id_token": ID_TOKEN, "expires_in": 3600}
        ),
    )


def _payment_exchange() -> Exchange:
    payment = {
        "cart_id": "cart-1",
        "payment": {
            "first_name": "Ada",
            "amount": "123.00",
            "card": {"number": CARD, "cin": CIN, "encryption_key": ENC_KEY, "expire_month": 12},
        },
    }
    return exchange(
        "PUT",
        f"{UPSTREAM}/partners/v1/events/{EVENT}/cart/payment?apikey={APIKEY}",
        [
            ("Content-Type", "application/json"),
            ("Authorization", f"Bearer {ACCESS}"),
            ("x-api-key", APIKEY),
            ("Cookie", f"session={COOKIE}; theme=dark"),
        ],
        json_bytes(payment),
        response_headers=[
            ("Content-Type", "application/json"),
            ("Set-Cookie", f"tmid={SET_COOKIE}; Path=/; HttpOnly"),
        ],
        response_body=json_bytes({"cart": {"payment": {"card": {"number": CARD}}}, "page": {"number": 3}}),
    )


def _all_text(ex: Exchange) -> str:
    assert ex.response is not None
    parts = [ex.request.url, *(v for _, v in ex.request.headers), *(v for _, v in ex.response.headers)]
    return "\n".join([*parts, ex.request.body.decode(), ex.response.body.decode()])


def test_query_apikey_and_oauth_parameters() -> None:
    url = f"{UPSTREAM}/cb?code={CODE}&apikey={APIKEY}&access_token={ACCESS}&keep=1&refresh_token={REFRESH}"
    result = redact_exchange(exchange(url=url))
    assert result.exchange.request.url == (
        f"{UPSTREAM}/cb?code=REDACTED&apikey=REDACTED&access_token=REDACTED&keep=1&refresh_token=REDACTED"
    )
    assert {s.kind for s in result.secrets} >= {"query parameter apikey", "query parameter code"}


def test_headers_authorization_api_key_cookie_and_set_cookie() -> None:
    redacted = redact_exchange(_payment_exchange()).exchange
    assert redacted.request.headers.get("Authorization") == "Bearer REDACTED"
    assert redacted.request.headers.get("X-Api-Key") == PLACEHOLDER
    assert redacted.request.headers.get("Cookie") == "session=REDACTED; theme=REDACTED"
    assert redacted.response is not None
    assert redacted.response.headers.get("Set-Cookie") == "tmid=REDACTED; Path=/; HttpOnly"


def test_card_data_at_depth_but_not_other_numbers() -> None:
    redacted = redact_exchange(_payment_exchange()).exchange
    card = json.loads(redacted.request.body)["payment"]["card"]
    assert card == {"number": "REDACTED", "cin": "REDACTED", "encryption_key": "REDACTED", "expire_month": 12}
    assert redacted.response is not None
    response = json.loads(redacted.response.body)
    assert response == {"cart": {"payment": {"card": {"number": "REDACTED"}}}, "page": {"number": 3}}


def test_oauth_token_exchange_request_form_and_response_json() -> None:
    redacted = redact_exchange(_token_exchange()).exchange
    assert redacted.request.body == (
        b"grant_type=authorization_code&client_id=partner&client_secret=REDACTED&code=REDACTED"
    )
    assert redacted.response is not None
    assert json.loads(redacted.response.body) == {
        "access_token": "REDACTED",
        "refresh_token": "REDACTED",
        "id_token": "REDACTED",
        "expires_in": 3600,
    }


def test_json_code_is_secret_only_in_oauth_payloads() -> None:
    error = json_bytes({"error": {"code": 20052, "message": "No inventory found"}})
    kept = redact_exchange(exchange(response_body=error)).exchange
    assert kept.response is not None and kept.response.body == error
    oauth = json_bytes({"grant_type": "authorization_code", "code": CODE, "redirect_uri": "https://p/cb"})
    redacted = redact_exchange(exchange("POST", f"{UPSTREAM}/x", request_body=oauth)).exchange
    assert json.loads(redacted.request.body)["code"] == PLACEHOLDER


def test_camel_case_and_nested_list_fields() -> None:
    body = json_bytes({"data": [{"auth": {"accessToken": ACCESS, "Client-Secret": CLIENT_SECRET}}]})
    redacted = redact_exchange(exchange("POST", f"{UPSTREAM}/x", request_body=body)).exchange
    assert json.loads(redacted.request.body) == {
        "data": [{"auth": {"accessToken": "REDACTED", "Client-Secret": "REDACTED"}}]
    }


def test_configured_extra_rules() -> None:
    rules = RedactionRules.build(
        headers=["X-Partner-Token"], query_params=["sig"], fields=["ssn"], patterns=[r"acct-\d{6}"]
    )
    ex = exchange(
        "POST",
        f"{UPSTREAM}/x?sig=abcdef123456&q=1",
        [("X-Partner-Token", "ptok-123456789"), ("Content-Type", "application/json")],
        json_bytes({"ssn": "123-45-6789", "note": "for acct-123456 only"}),
    )
    redacted = redact_exchange(ex, rules).exchange
    assert redacted.request.url == f"{UPSTREAM}/x?sig=REDACTED&q=1"
    assert redacted.request.headers.get("X-Partner-Token") == PLACEHOLDER
    assert json.loads(redacted.request.body) == {"ssn": "REDACTED", "note": "for REDACTED only"}


def test_the_scrub_removes_secrets_echoed_elsewhere_and_in_later_exchanges() -> None:
    fault = {"fault": {"faultstring": f"Rate limit quota violation. Identifier : {APIKEY}"}}
    quota = exchange(
        url=f"{UPSTREAM}/top-picks/v1/events/E?apikey={APIKEY}", status=429, response_body=json_bytes(fault)
    )
    redactor = Redactor()
    first, _ = redactor.redact(quota)
    assert first.response is not None and APIKEY not in first.response.body.decode()
    later = exchange(url=f"{UPSTREAM}/x?token={quote(APIKEY)}", response_body=f"echo {APIKEY}".encode())
    second, _ = redactor.redact(later)
    assert APIKEY not in _all_text(second)


def test_findings_are_redacted_too() -> None:
    redactor = Redactor()
    ex = _payment_exchange()
    finding = Finding(
        "TM-CARD",
        Severity.ERROR,
        f"card {CARD} sent in plain digits",
        ex.id,
        "PUT",
        ex.request.url,
        {"card": {"number": CARD}, "seen": [CARD]},
    )
    _, (clean,) = redactor.redact(ex, [finding])
    assert CARD not in repr(clean) and APIKEY not in clean.url


def test_canary_file_holds_no_secret_in_any_encoding(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    with CassetteWriter(path) as writer:
        writer.append(_token_exchange())
        writer.append(_payment_exchange())
        quota = {"fault": {"faultstring": f"Identifier : {APIKEY}"}}
        writer.append(
            exchange(url=f"{UPSTREAM}/tp?apikey={APIKEY}", status=429, response_body=json_bytes(quota))
        )
    data = path.read_bytes()
    for secret in SECRETS:
        for form in {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}:
            assert form.encode() not in data, "a secret reached the file"
    assert b"apikey=REDACTED" in data and len(load_cassette(path).exchanges) == 3


def test_canary_refuses_an_echo_the_rules_miss_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    writer = CassetteWriter(path, redactor=Redactor(RedactionRules(scrub_seen_values=False)))
    writer.append(_token_exchange())
    before = path.read_bytes()
    echo = exchange("POST", f"{UPSTREAM}/notes", response_body=f"your token was {ACCESS}".encode())
    with pytest.raises(SecretLeakError) as raised:
        writer.append(echo)
    writer.close()
    assert raised.value.kind == "JSON field access_token"
    assert ACCESS not in str(raised.value) and path.read_bytes() == before


def test_canary_sees_secrets_inside_binary_bodies() -> None:
    redactor = Redactor(RedactionRules(scrub_seen_values=False))
    redactor.observe(_token_exchange())
    with pytest.raises(SecretLeakError, match="JSON field refresh_token"):
        redactor.check("nothing here", raw=[b"\xff\x00" + REFRESH.encode()])


def test_secret_values_never_appear_in_logs_or_reprs(caplog: pytest.LogCaptureFixture) -> None:
    redactor = Redactor(RedactionRules(scrub_seen_values=False))
    result = redact_exchange(_payment_exchange())
    redactor.observe(_payment_exchange())
    with caplog.at_level("DEBUG"), pytest.raises(SecretLeakError):
        redactor.check(f"leak {CARD}")
    assert CARD not in caplog.text and CARD not in repr(result.secrets)


@pytest.mark.parametrize(
    ("value", "searched"),
    [("abc12", False), ("enabled", False), ("REDACTED", False), ("abc123", True), ("secret-value", True)],
)
def test_only_secret_looking_values_are_searched(value: str, searched: bool) -> None:
    assert looks_secret(value) is searched


def test_input_exchange_is_not_modified() -> None:
    original = _payment_exchange()
    before = (original.request.url, original.request.headers.items(), original.request.body)
    redact_exchange(original)
    assert (original.request.url, original.request.headers.items(), original.request.body) == before


def test_unparseable_bodies_pass_through() -> None:
    ex = Exchange(
        Request("POST", f"{UPSTREAM}/x", Headers(), b"\x00\x01{not json"), Response(200, Headers(), b"{bad")
    )
    redacted = redact_exchange(ex).exchange
    assert redacted.request.body == b"\x00\x01{not json"
    assert redacted.response is not None and redacted.response.body == b"{bad"
    assert re.fullmatch(r"[0-9a-f]{32}", redacted.id)


LONE_SURROGATE_TOKEN = "\ud800at-1c2d3e4f5a6b7c8d9e0f1a2b3c4d"  # a JSON "\ud800" escape parsed
UNDECODABLE_TOKEN = "at-\udcff5e6f7a8b9c0d1e2f3a4b5c6d7e8f"  # a header's 0xff byte, decoded as mitmproxy does


def test_secrets_no_utf8_can_spell_are_remembered_and_redacted_not_a_failed_append(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    token_answer = json.dumps({"access_token": LONE_SURROGATE_TOKEN, "expires_in": 3600}).encode()
    echoed = json.dumps({"note": f"seen {LONE_SURROGATE_TOKEN}"}).encode()
    with CassetteWriter(path) as writer:
        assert writer.append(_token_exchange_answering(token_answer))
        assert writer.append(exchange(url=f"{UPSTREAM}/app/v1/echo", response_body=echoed))
        assert writer.append(
            exchange(
                url=f"{UPSTREAM}/app/v1/me",
                request_headers=[("Authorization", f"Bearer {UNDECODABLE_TOKEN}")],
            )
        )
    data = path.read_bytes()
    for tail in (LONE_SURROGATE_TOKEN[1:], UNDECODABLE_TOKEN[4:]):
        assert tail.encode() not in data, "a secret reached the file"
    assert len(load_cassette(path).exchanges) == 3


def _token_exchange_answering(body: bytes) -> Exchange:
    return exchange(
        "POST",
        "https://oauth.ticketmaster.com/oauth/token",
        [("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=client_credentials&client_id=partner",
        response_body=body,
    )
