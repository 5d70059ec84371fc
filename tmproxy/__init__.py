"""tmproxy's API for test suites: `tmproxy.replay("cassette.yaml")` serves a cassette in-process.

The logic lives in `proxy.inprocess`; this package gives it the name users import.
"""

from proxy.inprocess import InProcessReplay, ReplayMiss, replay

__all__ = ["InProcessReplay", "ReplayMiss", "replay"]
