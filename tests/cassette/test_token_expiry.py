"""The redactor forgets access tokens once they have expired by both clocks, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from cassette.cassette_helpers import UPSTREAM, exchange, json_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.cassette import CassetteWriter, Redactor, SecretLeakError, load_cassette
from proxy.cassette.redact import (
    EXPIRY_MARGIN_S,
    Secret,
    SecretMatcher,
    encoded_forms,
    issued_token_lifetimes,
    looks_secret,
)
from proxy.exchange import Exchange

APIKEY = "Ak7elxdku9GGG5k8j0Xm8KWdANDgecHMV0"
ACCESS = "at-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
NEXT_ACCESS = "at-11112222333344445555666677778888"
REFRESH = "rt-0a1b2c3d4e5f60718293a4b5c6d7e8f9"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.sig123"
T0 = 1_700_000_000.0
LIFETIME = 3600
LATER = LIFETIME + EXPIRY_MARGIN_S + 1  # just past a token's expiry and margin


class Clock:
    """The machine's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def token_response(at: float, expires_in: Any = LIFETIME, access: str = ACCESS, **extra: Any) -> Exchange:
    answer = {
        "access_token": access,
        "refresh_token": REFRESH,
        "id_token": ID_TOKEN,
        "expires_in": expires_in,
    }
    return exchange(
        "POST",
        "https://oauth.ticketmaster.com/oauth/token",
        [("Content-Type", "application/x-www-form-urlencoded")],
        b"grant_type=client_credentials&client_id=partner",
        response_body=json_bytes({**answer, **extra}),
        started_at=at,
        ended_at=at + 0.1,
    )


def echo(at: float, *values: str) -> Exchange:
    """A call that sends the apikey and gets the values back in a body no rule knows."""
    return exchange(
        url=f"{UPSTREAM}/partners/v1/events/E?apikey={APIKEY}",
        response_body=f"echo {' '.join(values)}".encode(),
        started_at=at,
        ended_at=at + 0.1,
    )


def scrubbed(redactor: Redactor, value: str, at: float) -> bool:
    """Whether the redactor still removes `value` from an exchange at traffic time `at`."""
    redacted, _ = redactor.redact(echo(at, value))
    assert redacted.response is not None
    return value.encode() not in redacted.response.body


def test_an_access_token_is_forgotten_once_expired_by_both_clocks() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0))
    machine.now += LATER
    assert scrubbed(redactor, ACCESS, T0 + 10)  # the machine says expired, the traffic does not
    assert not scrubbed(redactor, ACCESS, T0 + LATER)  # both do: no longer a secret
    assert redactor.forgotten == 1


def test_the_traffic_clock_alone_forgets_nothing() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0))
    assert scrubbed(redactor, ACCESS, T0 + 100 * LATER)
    machine.now += LATER
    assert not scrubbed(redactor, ACCESS, T0 + 100 * LATER)


def test_refresh_and_id_tokens_and_the_apikey_are_never_forgotten() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0))
    machine.now += 100 * LATER
    for value in (REFRESH, ID_TOKEN, APIKEY):
        assert scrubbed(redactor, value, T0 + 100 * LATER)
    with pytest.raises(SecretLeakError):
        redactor.check(f"leak {REFRESH}")


@pytest.mark.parametrize(
    ("expires_in", "forgotten"),
    [
        (LIFETIME, True),
        (str(LIFETIME), True),  # a numeric string, as some servers send it
        (float(LIFETIME), True),
        ("٣٦٠٠", True),  # decimal digits of another script: int() reads them
        ("³⁶⁰⁰", False),  # digits, but not decimal ones: int() refuses them
        (" 3600", False),
        ("3600.0", False),
        ("1e3", False),
        (-5, False),
        (True, False),
        (None, False),
        ("9" * 40, False),
        (float("nan"), False),
    ],
)
def test_only_a_sure_expires_in_lets_a_token_be_forgotten(expires_in: Any, forgotten: bool) -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0, expires_in))
    machine.now += LATER
    assert scrubbed(redactor, ACCESS, T0 + LATER) is not forgotten


def test_a_forgotten_token_seen_again_is_a_secret_again() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0))
    machine.now += LATER
    assert not scrubbed(redactor, ACCESS, T0 + LATER)
    late_use = exchange(
        request_headers=[("Authorization", f"Bearer {ACCESS}")], started_at=T0 + LATER, ended_at=T0 + LATER
    )
    redactor.redact(late_use)
    machine.now += 10 * LATER
    assert scrubbed(redactor, ACCESS, T0 + 11 * LATER)  # seen without an expiry now: kept for good


def test_a_token_issued_again_lives_until_its_later_expiry() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0))
    machine.now += LIFETIME
    redactor.redact(token_response(T0 + LIFETIME))
    machine.now += EXPIRY_MARGIN_S + 1
    assert scrubbed(redactor, ACCESS, T0 + LATER)
    machine.now += LIFETIME
    assert not scrubbed(redactor, ACCESS, T0 + LIFETIME + LATER)


def test_tokens_known_before_their_expiry_or_without_traffic_times_stay() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(exchange(request_headers=[("Authorization", f"Bearer {ACCESS}")], started_at=T0))
    redactor.redact(token_response(T0))  # already a secret without an expiry: it stays one
    redactor.redact(token_response(0.0, access=NEXT_ACCESS))  # no traffic time recorded
    machine.now += 10 * LATER
    assert scrubbed(redactor, ACCESS, T0 + 10 * LATER)
    assert scrubbed(redactor, NEXT_ACCESS, T0 + 10 * LATER)


def test_an_access_token_that_is_also_the_refresh_token_is_never_forgotten() -> None:
    machine = Clock()
    redactor = Redactor(clock=machine)
    redactor.redact(token_response(T0, refresh_token=ACCESS))
    machine.now += LATER
    assert scrubbed(redactor, ACCESS, T0 + LATER)


def test_issued_lifetimes_read_camel_case_and_ignore_other_bodies() -> None:
    assert issued_token_lifetimes(json_bytes({"accessToken": ACCESS, "expiresIn": "60"})) == {ACCESS: 60.0}
    assert issued_token_lifetimes(json_bytes({"access_token": ACCESS})) == {}
    assert issued_token_lifetimes(json_bytes([{"access_token": ACCESS, "expires_in": 60}])) == {}
    assert issued_token_lifetimes(b"access_token=x&expires_in=60") == {}


def test_a_recording_with_refreshed_tokens_keeps_every_live_one_out_of_the_file(tmp_path) -> None:
    """Over a day of hourly refreshes the writer forgets dead tokens, and no token reaches the file
    while it is alive: the canary stays exact for everything remembered."""
    machine = Clock()
    path = tmp_path / "c.yaml"
    tokens = [f"at-{i:032x}" for i in range(24)]
    with CassetteWriter(path, redactor=Redactor(clock=machine)) as writer:
        for hour, token in enumerate(tokens):
            at = T0 + hour * LIFETIME
            machine.now = 100.0 + hour * LIFETIME
            writer.append(token_response(at, access=token))
            use = exchange(request_headers=[("Authorization", f"Bearer {token}")], started_at=at + 1)
            writer.append(use)
            with pytest.raises(SecretLeakError):
                writer.redactor.check(f"leak {token}")
        assert writer.redactor.forgotten >= 20
    data = path.read_bytes()
    assert not any(token.encode() in data for token in tokens)
    assert len(load_cassette(path).exchanges) == 48


VALUE_CHARS = st.sampled_from("abcXYZ0189-_./+%'\" é€&=")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.text(VALUE_CHARS, min_size=4, max_size=48), min_size=1, max_size=60, unique=True),
    forgotten=st.sets(st.integers(0, 59)),
    pieces=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 9), st.text(VALUE_CHARS, max_size=30))),
)
def test_the_matcher_finds_exactly_the_forms_of_the_values_it_still_knows(
    values: list[str], forgotten: set[int], pieces: list[tuple[int, int, str]]
) -> None:
    """Learning many secrets (gram tiers, short forms) and forgetting some leaves a matcher that answers
    as searching every form of every remaining value one by one would."""
    _assert_matcher_finds_exactly_the_forms_it_still_knows(values, forgotten, pieces)


# No character beyond ASCII: texts are searched only where their runs of the forms' characters are long
# enough (see `_GramTier`). Long values, fillers of their characters and of others that no form has (!#<>q)
# make runs of every length around forms.
ASCII_VALUE_CHARS = st.sampled_from("abcdef0189XYZ-_./+%'\"&= ")
FILLER_CHARS = st.sampled_from("abcdef0189XYZ-_./+%'\"&= !#<>q")


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(
        st.text(ASCII_VALUE_CHARS, min_size=14, max_size=70), min_size=17, max_size=60, unique=True
    ),
    forgotten=st.sets(st.integers(0, 59), max_size=20),
    pieces=st.lists(st.tuples(st.integers(0, 59), st.integers(0, 9), st.text(FILLER_CHARS, max_size=60))),
)
def test_in_ascii_text_the_matcher_finds_exactly_the_forms_of_the_values_it_still_knows(
    values: list[str], forgotten: set[int], pieces: list[tuple[int, int, str]]
) -> None:
    _assert_matcher_finds_exactly_the_forms_it_still_knows(values, forgotten, pieces)


def _assert_matcher_finds_exactly_the_forms_it_still_knows(
    values: list[str], forgotten: set[int], pieces: list[tuple[int, int, str]]
) -> None:
    matcher = SecretMatcher([Secret("kind", v) for v in values])
    for i in forgotten & set(range(len(values))):
        matcher.forget(values[i])
    known = [v for i, v in enumerate(values) if i not in forgotten and looks_secret(v)]
    text = ""
    for which, form_at, filler in pieces:  # fillers, and forms of known and of forgotten values
        forms = sorted(encoded_forms(values[which % len(values)]))
        text += filler + forms[form_at % len(forms)]
    expected = any(form in text for value in known for form in encoded_forms(value))
    assert (matcher.search(text) is not None) is expected
    assert (matcher.search_bytes(text.encode()) is not None) is expected
    assert (matcher.sub(text) != text) is expected
    assert len(matcher) == len(known)


def test_a_body_the_scrub_cleared_is_searched_again_once_a_secret_is_learnt() -> None:
    """The canary skips the raw bytes of a body the scrub has just told free of every secret, but only
    until the redactor learns another one."""
    redactor = Redactor()
    body = json_bytes({"note": f"see {NEXT_ACCESS}"})
    redacted, _ = redactor.redact(exchange(response_body=body, started_at=T0))
    assert redacted.response is not None
    cleared = redacted.response.body
    redactor.check("", raw=[cleared])
    redactor.observe(token_response(T0, access=NEXT_ACCESS))
    with pytest.raises(SecretLeakError):
        redactor.check("", raw=[cleared])
