"""Fixtures for every test: the in-process Ticketmaster sandbox (`sandbox`, reset per test)."""

from proxy.sandbox.testing import sandbox, sandbox_server  # noqa: F401
