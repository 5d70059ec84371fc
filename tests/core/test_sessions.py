from traffic import SID, T0

from proxy.fans import CLIENT, Fan
from proxy.sessions import SessionTable
from proxy.ticketmaster import ResaleSid, ShownInventory

OTHER = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0de"
THIRD = "0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d3"
ME = Fan((), "me")
ALICE = Fan((("bearer", "a1"),), "backend")
BOB = Fan((("bearer", "b2"),), "backend")


def sid(session_id=SID, start=T0, ttl=3600):
    return ResaleSid(session_id, int(start * 1000), int((start + ttl) * 1000))


def shown(prices=None, resale=()):
    prices = prices or {}
    return ShownInventory(set(prices) | set(resale), dict(prices), set(resale))


def test_same_incarnation_keeps_the_first_price_shown():
    table = SessionTable()
    table.learn(sid(), "E", ME, shown({"R1": 100.0}))
    session = table.learn(sid(), "E", ME, shown({"R1": 110.0, "R2": 50.0}))
    assert session.shown.prices == {"R1": 100.0, "R2": 50.0}


def test_renewal_after_expiry_starts_a_new_incarnation_that_still_counts_what_it_showed():
    table = SessionTable()
    table.learn(sid(), "E", ME, shown({"R1": 100.0, "R9": 5.0}))
    renewed = table.learn(sid(start=T0 + 4000), "E", ME, shown({"R1": 130.0}))
    assert renewed.shown.prices == {"R1": 130.0}
    assert renewed.showed(["R9"])
    assert not renewed.is_expired(T0 + 4001)


def test_long_expired_sessions_are_forgotten_but_recent_ones_kept():
    table = SessionTable(retention_s=3600)
    table.learn(sid("0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d1", start=T0, ttl=60), "E", ME, shown({"R1": 1.0}))
    table.learn(sid("0e7c6f64-8f0b-4ac1-9a53-0d0d37b7c0d2", start=T0 + 3000, ttl=60), "E", ME, shown())
    table.learn(sid(SID, start=T0 + 3700, ttl=60), "E", ME, shown())
    assert [s.session_id[-2:] for s in table] == ["d2", "94"]
    assert table.showing(["R1"]) == []


def test_a_session_stays_the_fan_it_was_issued_to():
    table = SessionTable()
    table.learn(sid(), "E", ALICE, shown({"R1": 10.0}))
    table.learn(sid(), "E", BOB, shown())
    assert table.get(SID).fan == ALICE
    assert table.shown_price(ALICE, ["R1"]) == 10.0
    assert table.shown_price(BOB, ["R1"]) is None


def test_resale_is_what_top_picks_said_or_the_listing_id_shape():
    table = SessionTable()
    table.learn(sid(), "E", ME, shown({"RS5C974596": 80.0, "GJ6DC7BT": 50.0}, resale={"RS5C974596"}))
    assert table.is_resale("RS5C974596")
    assert table.is_resale("resale-listingVer-1:product-2:E")
    assert not table.is_resale("GJ6DC7BT")


def test_resale_knowledge_goes_with_the_sessions_that_showed_it():
    table = SessionTable(retention_s=0)
    table.learn(sid(OTHER, ttl=60), "E", ME, shown({"RS1": 80.0}, resale={"RS1"}))
    table.learn(sid(SID, start=T0 + 120), "E", ME, shown({"GJ1": 50.0}))
    assert not table.is_resale("RS1")


def test_choose_gives_each_fan_the_session_that_showed_them_the_ticket():
    table = SessionTable()
    table.learn(sid(SID), "E", ALICE, shown({"T1": 10.0}))
    table.learn(sid(OTHER), "E", BOB, shown({"T1": 12.0}))
    assert table.choose(ALICE, "E", ["T1"], None, T0 + 1).session.session_id == SID
    assert table.choose(BOB, "E", ["T1"], None, T0 + 1).session.session_id == OTHER


def test_choose_refuses_between_sessions_known_only_by_address():
    table = SessionTable()
    table.learn(sid(SID), "E", ME, shown({"T1": 10.0}))
    table.learn(sid(OTHER), "E", ME, shown({"T1": 12.0}))
    choice = table.choose(ME, "E", ["T1"], None, T0 + 1)
    assert choice.session is None
    assert {s.session_id for s in choice.ambiguous} == {SID, OTHER}
    assert "fan key" in choice.why


def test_choose_guesses_this_fans_newest_session_and_never_another_identified_fans():
    table = SessionTable()
    table.learn(sid(SID), "E", ALICE, shown({"T1": 10.0}))
    table.learn(sid(OTHER), "E", BOB, shown({"T2": 10.0}))
    guess = table.choose(ALICE, "E", ["T2"], None, T0 + 1)
    assert (guess.session.session_id, guess.guessed) == (SID, True)
    assert "no unexpired session of this fan (bearer) showed T2" in guess.why
    stranger = Fan((("bearer", "c3"),), "backend")
    assert table.choose(stranger, "E", ["T1"], None, T0 + 1).session is None


def test_choose_falls_back_to_an_unkeyed_session_and_says_it_guessed():
    table = SessionTable()
    table.learn(sid(SID), "E", Fan((), "elsewhere"), shown({"T1": 10.0}))
    guess = table.choose(ME, "E", ["T9"], None, T0 + 1)
    assert guess.session.session_id == SID and guess.guessed
    assert "from elsewhere" in guess.why


def test_choose_skips_expired_sessions():
    table = SessionTable()
    table.learn(sid(SID), "E", ALICE, shown({"T1": 10.0}))
    assert table.choose(ALICE, "E", ["T1"], None, T0 + 7200).session is None


def test_a_carts_later_calls_get_the_session_its_reserve_carried():
    table = SessionTable()
    table.learn(sid(SID), "E", ALICE, shown({"T1": 10.0}))
    table.learn(sid(OTHER), "E", ALICE, shown({"T2": 10.0}))
    table.bind_cart("cart-1", SID)
    choice = table.choose(ALICE, "E", [], "cart-1", T0 + 1)
    assert (choice.session.session_id, choice.guessed) == (SID, False)
    assert table.choose(ALICE, "E", [], None, T0 + 1).session.session_id == OTHER


def test_fans_are_counted_by_the_kind_of_key_that_tells_them_apart():
    table = SessionTable()
    table.learn(sid(SID), "E", ALICE, shown())
    table.learn(sid(OTHER), "E", BOB, shown())
    table.learn(sid(THIRD), "E", ME, shown())
    assert table.fans_by_kind() == {"bearer": 2, CLIENT: 1}
