"""The three documented X-TM-SESSION-SID rules, plus the sandbox's choices for unknown/malformed ids."""

import uuid

from proxy.sandbox.client import SandboxClient
from proxy.sandbox.errors import INVALID_INPUT
from proxy.sandbox.server import running_sandbox
from proxy.sandbox.testing import assert_error
from proxy.ticketmaster import SESSION_EXPIRED_MESSAGE, SESSION_HEADER, SESSION_MESSAGE_HEADER, resale_sid

HOUR_MS = 3_600_000


def _sid(response):
    assert response.status_code == 200, response.text
    sid = resale_sid(response.json())
    assert sid is not None
    return sid


def test_no_header_creates_a_new_session_in_epoch_milliseconds(sandbox, tm):
    before = round(sandbox.now() * 1000)
    response = tm.top_picks()
    after = round(sandbox.now() * 1000)

    raw = response.json()["fanSession"]["resaleSid"]
    assert isinstance(raw["sessionStartTime"], int) and isinstance(raw["sessionExpireTime"], int)
    sid = _sid(response)
    assert uuid.UUID(sid.session_id).version == 4
    assert before <= sid.start_ms <= after
    assert sid.expire_ms == sid.start_ms + HOUR_MS
    assert "messages" not in response.json()
    assert SESSION_MESSAGE_HEADER not in response.headers
    assert _sid(tm.top_picks()).session_id != sid.session_id


def test_an_unexpired_header_returns_the_same_session(sandbox, tm):
    first = _sid(tm.top_picks())
    sandbox.advance_clock(3599)

    again = tm.top_picks(sid=first.session_id)

    assert _sid(again) == first
    assert SESSION_EXPIRED_MESSAGE not in again.text
    assert SESSION_MESSAGE_HEADER not in again.headers


def test_an_expired_header_renews_the_same_id_with_the_message(sandbox, tm):
    first = _sid(tm.top_picks())
    sandbox.advance_clock(3600)  # expired exactly at sessionExpireTime

    renewed = tm.top_picks(sid=first.session_id)

    sid = _sid(renewed)
    assert sid.session_id == first.session_id
    assert sid.start_ms >= first.expire_ms
    assert sid.expire_ms == sid.start_ms + HOUR_MS
    assert renewed.json()["messages"] == [SESSION_EXPIRED_MESSAGE]
    assert renewed.headers[SESSION_MESSAGE_HEADER] == SESSION_EXPIRED_MESSAGE
    following = tm.top_picks(sid=first.session_id)
    assert _sid(following) == sid
    assert SESSION_EXPIRED_MESSAGE not in following.text


def test_an_unknown_well_formed_id_gets_a_new_session_with_a_new_id(tm):
    unknown = str(uuid.uuid4())
    sid = _sid(tm.top_picks(sid=unknown))
    assert sid.session_id != unknown
    assert SESSION_EXPIRED_MESSAGE not in tm.top_picks(sid=unknown).text


def test_a_malformed_id_is_refused(tm):
    assert_error(tm.top_picks(sid="not-a-session"), 400, INVALID_INPUT)


def test_the_session_lifetime_is_configurable():
    with running_sandbox(seed=1, session_ttl=120) as other:
        sid = _sid(SandboxClient(other.url).top_picks())
        assert sid.expire_ms - sid.start_ms == 120_000


def test_preprod_top_picks_keeps_sessions_too(tm):
    path = "/top-picks-preprod/v1/events/000051048D991EE7"
    first = _sid(tm.request("GET", path))
    again = tm.request("GET", path, headers={SESSION_HEADER: first.session_id})
    assert _sid(again) == first
