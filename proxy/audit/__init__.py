"""Audit: one rules engine for live and offline checks of partner traffic."""

from .engine import AuditEngine, Rule, audit_exchanges

__all__ = ["AuditEngine", "Rule", "audit_exchanges"]
