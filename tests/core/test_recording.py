import pytest
from traffic import exchange

from proxy.recording import (
    CassettePlan,
    OnMiss,
    RecordMode,
    UpstreamUnknownError,
    infer_upstream,
    rebase_exchange,
)


@pytest.mark.parametrize(
    ("mode", "has_interactions", "replay", "record", "on_miss"),
    [
        (RecordMode.ONCE, False, False, True, OnMiss.FORWARD),
        (RecordMode.ONCE, True, True, False, OnMiss.ERROR),
        (RecordMode.NEW_EPISODES, True, True, True, OnMiss.FORWARD),
        (RecordMode.ALL, True, False, True, OnMiss.FORWARD),
        (RecordMode.NONE, True, True, False, OnMiss.ERROR),
    ],
)
def test_record_modes_have_vcrpy_meanings(mode, has_interactions, replay, record, on_miss):
    assert CassettePlan.for_record_mode(mode, has_interactions) == CassettePlan(replay, record, on_miss)


def test_replay_forward_records_its_misses():
    assert CassettePlan.for_replay(OnMiss.FORWARD).record
    assert not CassettePlan.for_replay(OnMiss.ERROR).record


def test_upstream_is_inferred_only_from_a_single_host():
    one = exchange("GET", "/top-picks/v1/events/E")
    assert infer_upstream([one.request.url, one.request.url]) == "https://app.ticketmaster.com"
    other = rebase_exchange(one, "http://127.0.0.1:9000")
    with pytest.raises(UpstreamUnknownError, match="2 hosts"):
        infer_upstream([one.request.url, other.request.url])
    with pytest.raises(UpstreamUnknownError, match="no interactions"):
        infer_upstream([])


def test_rebase_moves_url_and_host_header_and_no_other_header():
    sandboxed = exchange("GET", "/x?a=1", headers={"Host": "127.0.0.1:9000", "X-Keep": "yes"})
    moved = rebase_exchange(sandboxed, "https://app.ticketmaster.com")
    assert moved.request.url == "https://app.ticketmaster.com/x?a=1"
    assert moved.request.headers.get("Host") == "app.ticketmaster.com"
    assert moved.request.headers.get("X-Keep") == "yes"
    assert sandboxed.request.headers.get("Host") == "127.0.0.1:9000"


def test_rebase_moves_the_urls_at_the_old_origin_that_the_exchange_carries():
    polling = "/partners/v1/polling/cart/POST/t?apikey=REDACTED&cart_id=c1"
    sandboxed = rebase_exchange(
        exchange(
            "POST",
            "/partners/v1/events/E/cart",
            headers={"Referer": "http://127.0.0.1:9000/page"},
            status=202,
            response_body={
                "polling_url": f"http://127.0.0.1:9000{polling}",
                "doc": "https://elsewhere.example/d",
            },
            response_headers={"Location": "http://127.0.0.1:9000/x"},
        ),
        "http://127.0.0.1:9000",
    )
    moved = rebase_exchange(sandboxed, "https://app.ticketmaster.com")
    assert moved.request.headers.get("Referer") == "https://app.ticketmaster.com/page"
    assert moved.response is not None
    assert moved.response.json() == {
        "polling_url": f"https://app.ticketmaster.com{polling}",
        "doc": "https://elsewhere.example/d",
    }
    assert moved.response.headers.get("Location") == "https://app.ticketmaster.com/x"
