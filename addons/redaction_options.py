"""The redaction options the recorder and the replayer share (declared identically by both)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from mitmproxy import ctx, exceptions

from proxy.cassette import RedactionRules

REDACTION_OPTIONS = {
    "tm_redact_headers": "Extra header names to redact, beyond the built-in secrets.",
    "tm_redact_params": "Extra query parameter names to redact.",
    "tm_redact_fields": "Extra JSON and form field names to redact, at any depth.",
    "tm_redact_patterns": "Regular expressions whose matches are redacted in URLs, headers and text bodies.",
}


def add_redaction_options(loader: Any) -> None:
    for name, help_text in REDACTION_OPTIONS.items():
        loader.add_option(name, Sequence[str], [], help_text)


def redaction_rules() -> RedactionRules:
    """The rules the options ask for; a bad regular expression is an options error naming it."""
    try:
        return RedactionRules.build(
            headers=ctx.options.tm_redact_headers,
            query_params=ctx.options.tm_redact_params,
            fields=ctx.options.tm_redact_fields,
            patterns=ctx.options.tm_redact_patterns,
        )
    except re.error as exc:
        raise exceptions.OptionsError(
            f"tm_redact_patterns: {exc.pattern!r} is not a regular expression: {exc}"
        ) from None
