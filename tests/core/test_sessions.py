from traffic import SID, T0

from proxy.sessions import SessionTable
from proxy.ticketmaster import ResaleSid

OTHER = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"


def sid(session_id=SID, start=T0, ttl=3600):
    return ResaleSid(session_id, int(start * 1000), int((start + ttl) * 1000))


def test_same_incarnation_keeps_the_first_price_shown():
    table = SessionTable()
    table.learn(sid(), "E", "c", {"R1": 100.0})
    session = table.learn(sid(), "E", "c", {"R1": 110.0, "R2": 50.0})
    assert session.shown_prices == {"R1": 100.0, "R2": 50.0}


def test_renewal_after_expiry_starts_a_new_incarnation():
    table = SessionTable()
    table.learn(sid(), "E", "c", {"R1": 100.0})
    renewed = table.learn(sid(start=T0 + 4000), "E", "c", {"R1": 130.0})
    assert renewed.shown_prices == {"R1": 130.0}
    assert not renewed.is_expired(T0 + 4001)


def test_newest_valid_prefers_this_client_and_event_then_anyone():
    table = SessionTable()
    table.learn(sid(OTHER), "E", "other-client", {})
    table.learn(sid(SID), "E2", "me", {})
    assert table.newest_valid("me", "E2", T0 + 1).session_id == SID
    assert table.newest_valid("me", "E", T0 + 1).session_id == SID
    assert table.newest_valid("stranger", "E", T0 + 1).session_id == SID
    assert table.newest_valid("me", "E", T0 + 7200) is None


def test_long_expired_sessions_are_forgotten_but_recent_ones_kept():
    table = SessionTable(retention_s=3600)
    table.learn(sid("0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d1", start=T0, ttl=60), "E", "c", {})
    table.learn(sid("0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d2", start=T0 + 3000, ttl=60), "E", "c", {})
    table.learn(sid(SID, start=T0 + 3700, ttl=60), "E", "c", {})
    assert [s.session_id[-2:] for s in table] == ["d2", "94"]


def test_relearning_moves_a_session_to_its_new_client():
    table = SessionTable()
    table.learn(sid(), "E", "first", {"R1": 10.0})
    table.learn(sid(), "E", "second", {})
    assert table.shown_price("first", "R1") is None
    assert table.shown_price("second", "R1") == 10.0
    assert table.newest_valid("second", "E", T0 + 2).session_id == SID
