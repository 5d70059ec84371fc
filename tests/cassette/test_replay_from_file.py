"""The replay index built as a cassette is read, a chunk at a time: the same answers as from a loaded one."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from cassette.cassette_helpers import UPSTREAM, exchange, json_bytes

from proxy.cassette import CassetteError, CassetteWriter, load_cassette, open_cassette
from proxy.exchange import Headers, Request
from proxy.recording import replayed_response
from proxy.replay import EXHAUST, ReplayIndex

SHIPPED = sorted((Path(__file__).parents[2] / "cassettes").glob("*.yaml"))
CHUNKS = [1, 7, 64, 1 << 20]


def outcome(read) -> object:
    try:
        stream = read()
        return list(stream.interactions), stream.metadata, stream.warnings
    except CassetteError as exc:
        return str(exc)


@pytest.fixture
def recorded(tmp_path: Path) -> bytes:
    path = tmp_path / "seed.yaml"
    with CassetteWriter(path) as writer:
        for n in range(3):
            writer.append(exchange(url=f"{UPSTREAM}/partners/v1/events/E{n}?apikey=KEYabc123456", id=f"i{n}"))
        writer.append(exchange(url=f"{UPSTREAM}/bin", response_body=b"\xff\x00binary", id="bin"))
    return path.read_bytes()


def _damaged(recorded: bytes) -> dict[str, bytes]:
    first_end = recorded.index(b"# tmproxy:end json\n") + len(b"# tmproxy:end json\n")
    second = recorded.index(b"# tmproxy:end json\n", first_end)
    by_hand = b"- request: {method: GET, uri: 'https://a/b'}\n  response: {status: {code: 200}}\n"
    by_hand += b"  tmproxy: {id: hand, started_at: 0, ended_at: 0, client: '', findings: []}\n"
    return {
        "as written": recorded,
        "torn last item": recorded + recorded[first_end:second][:40],
        "an item added by hand": recorded + by_hand,
        "a broken item": recorded[:first_end] + b"- {bad: [\n# tmproxy:end json\n" + recorded[second + 19 :],
        "no item": recorded[: recorded.index(b"\ninteractions:") + 14] + b" []\n",
        "vcrpy's layout": b"interactions:\n- request: {body: null, headers: {}, method: GET, uri: 'https://a/b'}\n"
        b"  response: {body: {string: ok}, headers: {}, status: {code: 200, message: OK}}\nversion: 1\n",
    }


@pytest.mark.parametrize("chunk_size", CHUNKS)
@pytest.mark.parametrize(
    "case",
    ["as written", "torn last item", "an item added by hand", "a broken item", "no item", "vcrpy's layout"],
)
def test_reading_in_chunks_gives_what_reading_whole_gives(
    tmp_path: Path, recorded: bytes, case: str, chunk_size: int
) -> None:
    data = _damaged(recorded)[case]
    path = tmp_path / "c.yaml"
    path.write_bytes(data)
    whole = outcome(lambda: open_cassette(path, chunk_size=len(data) + 1))
    assert outcome(lambda: open_cassette(path, chunk_size)) == whole
    if case == "a broken item":
        assert "line" in str(whole)
    elif case == "torn last item":
        assert len(whole[0]) == 4 and "torn" in whole[2][0]
    elif case == "an item added by hand":
        assert [e.id for e, _ in whole[0]][-1] == "hand"


def test_a_missing_file_is_a_cassette_error(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="cannot read"):
        ReplayIndex.from_cassette(tmp_path / "missing.yaml")


def _requests_of(path: Path) -> list[Request]:
    return [
        Request(e.request.method, e.request.url, Headers(e.request.headers.items()), e.request.body)
        for e in load_cassette(path).exchanges
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
@pytest.mark.parametrize("on_exhausted", ["repeat_last", EXHAUST])
def test_every_shipped_cassette_is_served_the_same_from_the_file(path: Path, on_exhausted) -> None:
    """Each recorded request, twice over, and a miss: the index built from the file answers exactly as
    one built from the loaded exchanges, down to the response served now."""
    loaded = ReplayIndex(load_cassette(path).exchanges, on_exhausted=on_exhausted)
    streamed = ReplayIndex.from_cassette(path, on_exhausted=on_exhausted)
    assert len(streamed) == len(loaded) > 0
    now = time.time()
    requests = _requests_of(path)
    for request in [*requests, *requests, Request("GET", f"{UPSTREAM}/never/recorded?apikey=x")]:
        old, new = loaded.play(request), streamed.play(request)
        assert (new.exchange, new.near_miss, new.repeated) == (old.exchange, old.near_miss, old.repeated)
        if old.exchange is not None and new.exchange is not None:
            assert replayed_response(new.exchange, now) == replayed_response(old.exchange, now)
    assert streamed.usage() == loaded.usage()


def test_plays_from_a_file_are_fresh_copies_that_share_stored_values(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    body = json_bytes({"event": "E"})
    with CassetteWriter(path) as writer:
        for n in range(2):
            writer.append(exchange(url=f"{UPSTREAM}/partners/v1/events/E?n={n}", response_body=body))
    index = ReplayIndex.from_cassette(path)
    first = index.play(Request("GET", f"{UPSTREAM}/partners/v1/events/E?n=0")).exchange
    again = index.play(Request("GET", f"{UPSTREAM}/partners/v1/events/E?n=0")).exchange
    other = index.play(Request("GET", f"{UPSTREAM}/partners/v1/events/E?n=1")).exchange
    assert first is not None and again is not None and other is not None
    assert first == again and first is not again  # a caller changing one cannot change the recording
    assert first.response is not None and other.response is not None
    assert first.response.body is other.response.body  # equal bodies are stored once
    assert json.loads(first.response.body) == {"event": "E"}
