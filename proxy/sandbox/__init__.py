"""A local stand-in for Ticketmaster's Top Picks and Partner API cart flow, for offline tests.

`state` holds the pure model (events, prices, fan sessions, carts, quotas), `app` exposes it over HTTP
with aiohttp, `server` runs it (as a process or on a background thread) and `testing` offers the
pytest fixture.
"""
