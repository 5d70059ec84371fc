import pytest

from proxy.netaddr import is_loopback, parse_listen


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("localhost:8080", ("localhost", 8080)),
        ("[::1]:9", ("::1", 9)),
        (":7000", ("127.0.0.1", 7000)),
        ("127.0.0.1", ("127.0.0.1", 9000)),
    ],
)
def test_listen_addresses(listen, expected):
    assert parse_listen(listen, default_port=9000) == expected


@pytest.mark.parametrize("listen", ["host:port", "h:70000", "[::1"])
def test_bad_listen_addresses(listen):
    with pytest.raises(ValueError):
        parse_listen(listen, default_port=9000)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.2", False),
        ("example.com", False),
    ],
)
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback
