"""tmproxy: a mitmproxy addon suite and CLI for Ticketmaster resale integrations."""

__version__ = "0.1.0"
