"""Test helpers for the sandbox: pytest fixtures, a small HTTP client and error assertions.

Import the fixtures into a conftest (`from proxy.sandbox.testing import sandbox, sandbox_server`).
`sandbox_server` runs one in-process sandbox (seed 1) for the whole test session; `sandbox` hands it
to a test after resetting it to the seed, so tests are isolated without restarting a server.
`SandboxClient` (from `proxy.sandbox.client`) speaks Ticketmaster's paths to any base URL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from proxy.sandbox.server import RunningSandbox, running_sandbox

SANDBOX_SEED = 1


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[RunningSandbox]:
    with running_sandbox(seed=SANDBOX_SEED) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: RunningSandbox) -> RunningSandbox:
    """A running sandbox with every piece of state (clock included) back to the seed."""
    sandbox_server.reset()
    return sandbox_server


def assert_error(response: requests.Response, status: int, code: int | None = None) -> dict[str, Any]:
    """The documented error shape with `status` (and `code`), and no traceback leaking out."""
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    error = response.json()["error"]
    assert set(error) == {"message", "code", "http_code", "severity"}
    assert error["http_code"] == status
    assert error["severity"] == "ERROR"
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code, error
    return dict(error)
