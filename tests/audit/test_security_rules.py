"""Security rules: unencrypted card data, expired access tokens, secrets left in recordings."""

from __future__ import annotations

import pytest
from audit.flows import CART, CIPHERTEXT, OAUTH, ex, payment_body, purchase, token_grant
from traffic import T0

from proxy.audit.engine import audit_exchanges
from proxy.audit.rules.security import ExpiredAccessToken, SecretInRecording, UnencryptedCard
from proxy.cassette.redact import is_redacted
from proxy.findings import Severity

PAYMENT = f"{CART}/payment?apikey=REDACTED"


def found(rule, *exchanges):
    return audit_exchanges(list(exchanges), [rule])


def pay(body, at=T0):
    return ex("PUT", PAYMENT, at=at, body=body)


# --- unencrypted-card ---


@pytest.mark.parametrize(
    ("number", "cin", "fields"),
    [
        ("4111111111111111", CIPHERTEXT, ["payment.card.number"]),
        ("4111 1111 1111 1111", "123", ["payment.card.number", "payment.card.cin"]),
        (CIPHERTEXT, 1234, ["payment.card.cin"]),
    ],
)
def test_plain_card_number_or_cin_is_flagged(number, cin, fields):
    findings = found(UnencryptedCard(), pay(payment_body(number, cin)))
    assert [(f.rule, f.severity) for f in findings] == [("unencrypted-card", Severity.ERROR)]
    assert findings[0].evidence["fields"] == fields
    assert "4111" not in findings[0].message


def test_card_anywhere_in_a_body_is_checked():
    body = {"wallet": [{"card": {"number": "5500000000000004"}}]}
    assert found(UnencryptedCard(), ex("POST", "/partners/v1/anything", at=T0, body=body))[0].evidence == {
        "fields": ["wallet[0].card.number"]
    }


@pytest.mark.parametrize("value", [CIPHERTEXT, "REDACTED", "", "REDACTED:card", None, "41111111111"])
def test_ciphertext_placeholders_and_short_numbers_are_fine(value):
    assert found(UnencryptedCard(), pay(payment_body(value, value))) == []


# --- expired-access-token ---


def bearer_call(at, token):
    return ex("GET", "/partners/v1/orders?order_token=o", at=at, headers={"Authorization": f"Bearer {token}"})


def test_token_used_after_expires_in_is_flagged():
    late = bearer_call(T0 + 3601, "tok-a")
    findings = found(ExpiredAccessToken(), token_grant(T0, "tok-a"), late)
    assert [(f.rule, f.severity, f.exchange_id) for f in findings] == [
        ("expired-access-token", Severity.WARNING, late.id)
    ]


def test_token_used_within_its_lifetime_or_unknown_tokens_are_fine():
    grant = token_grant(T0, "tok-a", expires_in="3600")
    assert (
        found(ExpiredAccessToken(), grant, bearer_call(T0 + 3600, "tok-a"), bearer_call(T0 + 9999, "other"))
        == []
    )


def test_each_token_has_its_own_expiry():
    grants = [token_grant(T0, "tok-a", expires_in=60), token_grant(T0 + 100, "tok-b")]
    late_a = bearer_call(T0 + 200, "tok-a")
    findings = found(ExpiredAccessToken(), *grants, late_a, bearer_call(T0 + 200, "tok-b"))
    assert [f.exchange_id for f in findings] == [late_a.id]


def test_redacted_tokens_take_the_newest_grant():
    grants = [token_grant(T0, "REDACTED"), token_grant(T0 + 3000, "REDACTED")]
    assert found(ExpiredAccessToken(), *grants, bearer_call(T0 + 4000, "REDACTED")) == []
    late = bearer_call(T0 + 6700, "REDACTED-TOKEN")
    assert [f.exchange_id for f in found(ExpiredAccessToken(), *grants, late)] == [late.id]


# --- secret-in-recording ---


def secrets_of(*exchanges):
    return [f.evidence["places"] for f in found(SecretInRecording(), *exchanges)]


def test_apikey_and_auth_headers_are_secrets_in_a_recording():
    call = ex("GET", "/partners/v1/events/E1?apikey=fake-test-key-0000-not-real", at=T0,
              headers={"x-api-key": "abc", "Authorization": "Bearer eyJhbGci", "Cookie": "s=1; t=REDACTED"})  # fmt: skip
    findings = found(SecretInRecording(), call)
    assert [(f.rule, f.severity) for f in findings] == [("secret-in-recording", Severity.ERROR)]
    assert findings[0].evidence["places"] == [
        "query apikey",
        "header x-api-key",
        "header Authorization",
        "header Cookie",
    ]
    assert "fake-test-key-0000-not-real" not in findings[0].message


def test_oauth_secrets_in_forms_and_token_responses():
    grant = ex("POST", f"{OAUTH}/oauth/token", at=T0, body=b"grant_type=authorization_code&code=xyz&client_secret=s3",
               headers={"Content-Type": "application/x-www-form-urlencoded"},
               response_body={"access_token": "real", "refresh_token": "real2", "expires_in": 3600})  # fmt: skip
    assert secrets_of(grant) == [
        ["form code", "form client_secret"],
        ["json access_token", "json refresh_token"],
    ]


def test_card_data_and_apikeys_in_body_urls():
    paid = ex("PUT", PAYMENT, at=T0, body=payment_body(CIPHERTEXT, "REDACTED"), status=202,
              response_body={"polling_url": "https://app.ticketmaster.com/p/1?apikey=LlIL", "wait": 1})  # fmt: skip
    assert secrets_of(paid) == [["json payment.card.number"], ["json polling_url"]]


def test_set_cookie_in_a_response():
    call = ex("GET", "/x", at=T0, response_headers={"Set-Cookie": "session=abc; Path=/; HttpOnly"})
    assert secrets_of(call) == [["header Set-Cookie"]]


def test_a_redacted_recording_has_no_secrets():
    call = ex("GET", "/partners/v1/events/E1?apikey=REDACTED&code=500", at=T0,
              headers={"x-api-key": "redacted", "Authorization": "Bearer REDACTED", "Cookie": "REDACTED"},
              response_body={"error": {"code": "20052", "message": "No inventory"}},
              response_headers={"Set-Cookie": "session=REDACTED; Path=/"})  # fmt: skip
    assert secrets_of(call, *purchase()) == []


@pytest.mark.parametrize(("value", "redacted"), [("REDACTED", True), ("redacted-apikey", True), ("", True),
                                                 ("  ", True), ("abc", False), ("NOT-REDACTED", False)])  # fmt: skip
def test_placeholder_predicate(value, redacted):
    assert is_redacted(value) is redacted
