"""Kept for tests written against the old location; use `proxy.processes`."""

from proxy.processes import CliProcess, tmproxy  # noqa: F401
