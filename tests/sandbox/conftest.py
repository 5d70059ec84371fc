"""`tm`: a Ticketmaster-speaking client for the sandbox."""

import pytest

from proxy.sandbox.testing import SandboxClient


@pytest.fixture
def tm(sandbox):
    return SandboxClient(sandbox.url)
