"""The two ways a cassette operation refuses: a file that is not a usable cassette, and a leaking secret."""

from __future__ import annotations

from pathlib import Path


class CassetteError(ValueError):
    """A file that is not a usable cassette: garbage, unsafe YAML, a wrong version, a wrong shape.

    The message names the file and, where parsing failed, the line (1-based).
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None) -> None:
        self.reason = message
        self.path = str(path) if path is not None else None
        self.line = line
        where = self.path or "cassette"
        if line is not None:
            where = f"{where}, line {line}"
        super().__init__(f"{where}: {message}")


class SecretLeakError(RuntimeError):
    """The canary found a secret in an interaction about to be written; nothing was written.

    Names the kind of field the secret was first seen in (e.g. "query parameter apikey"), never the value.
    """

    def __init__(self, kind: str, exchange_id: str = "") -> None:
        self.kind = kind
        self.exchange_id = exchange_id
        which = f"interaction {exchange_id}" if exchange_id else "an interaction"
        super().__init__(
            f"refusing to write {which}: it still contains a secret seen earlier as {kind}; "
            "add a redaction rule for the field that echoes it"
        )
