"""Audit reports: one `AuditReport` rendered as text, JSON, JUnit XML or a self-contained HTML page.

Every format names an interaction by its exchange id (see `proxy.audit.inputs` for where ids come
from) and escapes whatever the traffic contained: reports are read by people and tools that must
not be fooled by hostile URLs or bodies.
"""

from __future__ import annotations

from collections.abc import Callable

from . import html, jsonfmt, junit, text
from .model import AuditReport

RENDERERS: dict[str, Callable[[AuditReport], str]] = {
    "text": text.render,
    "json": jsonfmt.render,
    "junit": junit.render,
    "html": html.render,
}
FORMATS = tuple(RENDERERS)


def render(report: AuditReport, fmt: str, *, color: bool = False) -> str:
    """The report in one of `FORMATS`; `color` (ANSI, text only) is the caller's call: a TTY, no NO_COLOR."""
    if fmt == "text":
        return text.render(report, color=color)
    return RENDERERS[fmt](report)


__all__ = ["FORMATS", "AuditReport", "render"]
