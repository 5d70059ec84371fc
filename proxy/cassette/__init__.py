"""Cassettes: vcrpy's version-1 format plus keys vcrpy ignores; redacted, append-only, crash-safe.

No mitmproxy here: the addons convert flows to `Exchange`s and call this API.
"""

from proxy.cassette.errors import CassetteError, SecretLeakError
from proxy.cassette.format import decode_body, exchange_to_interaction, interaction_to_exchange
from proxy.cassette.reader import Cassette, CassetteStream, load_cassette, open_cassette, parse_cassette
from proxy.cassette.redact import PLACEHOLDER, RedactionRules, Redactor, Secret, redact_exchange
from proxy.cassette.writer import CassetteWriter

__all__ = [
    "PLACEHOLDER",
    "Cassette",
    "CassetteError",
    "CassetteStream",
    "CassetteWriter",
    "RedactionRules",
    "Redactor",
    "Secret",
    "SecretLeakError",
    "decode_body",
    "exchange_to_interaction",
    "interaction_to_exchange",
    "load_cassette",
    "open_cassette",
    "parse_cassette",
    "redact_exchange",
]
