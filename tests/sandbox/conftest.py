"""`tm`: a Ticketmaster-speaking client for the sandbox."""

import pytest

from proxy.sandbox.client import SandboxClient


@pytest.fixture
def tm(sandbox):
    return SandboxClient(sandbox.url)
