"""The Partner API error shape, and the codes the sandbox answers with.

Codes marked "documented" appear in Ticketmaster's public Partner API documentation; the others are
UNCONFIRMED choices of the sandbox, kept in one place so that tests and docs can name them.
"""

from __future__ import annotations

from typing import Any

# documented
INVALID_INPUT = 10002  # "Invalid input data type"
TICKET_LIMIT_REACHED = 10161
TICKETING_SYSTEM_DOWN = 20001
NO_INVENTORY = 20052  # "No inventory found to match request"
PAYMENT_NOT_ACCEPTED = 20122
INVALID_SECURITY_CODE = 20152
INVALID_RESERVE = 21001  # "Invalid reserve request data structure"
INVALID_CART = 90003  # "Invalid cart"

# sandbox choices (UNCONFIRMED)
INTERNAL_ERROR = 10000
UNKNOWN_ENDPOINT = 10001
METHOD_NOT_ALLOWED = 10005
CONCURRENT_CART_CALL = 90009

INVALID_RESERVE_MESSAGE = "Invalid reserve request data structure"


class SandboxError(Exception):
    """A failure the sandbox answers with Ticketmaster's `{"error": {...}}` body."""

    def __init__(self, code: int, message: str, http_status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "code": self.code,
                "http_code": self.http_status,
                "severity": "ERROR",
            }
        }


def invalid_cart() -> SandboxError:
    """Unknown, committed, released or expired carts all answer the same (documented) error."""
    return SandboxError(INVALID_CART, "Invalid cart")


def invalid_reserve(detail: str = "") -> SandboxError:
    message = f"{INVALID_RESERVE_MESSAGE}: {detail}" if detail else INVALID_RESERVE_MESSAGE
    return SandboxError(INVALID_RESERVE, message)


def invalid_input(detail: str, http_status: int = 400) -> SandboxError:
    return SandboxError(INVALID_INPUT, f"Invalid input data type: {detail}", http_status)


def event_not_found(event_id: str) -> SandboxError:
    """The docs give 404 for "API endpoint or event not found"; the code is the no-inventory one."""
    return SandboxError(NO_INVENTORY, f"Event not found: {event_id}", 404)


def concurrent_cart_call() -> SandboxError:
    return SandboxError(CONCURRENT_CART_CALL, "Concurrent calls to a cart are not supported", 409)


def ticketing_system_down(http_status: int) -> SandboxError:
    return SandboxError(TICKETING_SYSTEM_DOWN, "Ticketing system is down/unavailable/niterun", http_status)
