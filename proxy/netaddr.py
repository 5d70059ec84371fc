"""Listen addresses: parsing `HOST:PORT` and keeping servers on loopback unless told otherwise."""

from __future__ import annotations

import ipaddress
import sys


class ListenAddressError(ValueError):
    pass


def parse_listen(value: str, default_port: int) -> tuple[str, int]:
    """`HOST:PORT`, `HOST`, `:PORT` or `[v6]:PORT` into (host, port); port 0 asks for a free one."""
    value = value.strip()
    host, port_text = value, ""
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise ListenAddressError(f"invalid listen address {value!r}: missing ']'")
        host, rest = value[1:end], value[end + 1 :]
        port_text = rest[1:] if rest.startswith(":") else rest
    elif value.count(":") == 1:
        host, port_text = value.split(":")
    host = host or "127.0.0.1"
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ListenAddressError(f"invalid port in listen address {value!r}: use 0-65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, allow_remote: bool) -> None:
    """Servers stay on loopback unless the user asked for more with --allow-remote."""
    if not is_loopback(host) and not allow_remote:
        raise ListenAddressError(
            f"{host} is not a loopback address: anyone who can reach it could use this server; "
            "pass --allow-remote (or TMPROXY_ALLOW_REMOTE=1) if that is what you want"
        )


def warn_if_exposed(host: str, what: str) -> None:
    """Say so loudly when a server will be reachable from other machines."""
    if not is_loopback(host):
        print(
            f"warning: {what} listens on {host}, reachable beyond this machine; "
            "anyone who can reach it can use it",
            file=sys.stderr,
        )


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
