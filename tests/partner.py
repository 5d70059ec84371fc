"""Kept for tests written against the old location; use `proxy.partner_flows`."""

from proxy.partner_flows import *  # noqa: F403
from proxy.partner_flows import APIKEY, CLIENT_SECRET, OAUTH_CODE, TM  # noqa: F401
