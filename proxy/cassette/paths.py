"""Cassette names from test suites and configuration, kept inside their folder."""

from __future__ import annotations

from pathlib import Path


class CassettePathError(ValueError):
    pass


def resolve_cassette(name: str, folder: Path) -> Path:
    """`folder/name`, refused when the name is absolute or escapes the folder (`..`, a symlink out)."""
    if not name or "\x00" in name:
        raise CassettePathError(f"cassette name {name!r} is empty or not a file name")
    candidate = Path(name)
    if candidate.is_absolute():
        raise CassettePathError(f"cassette name {name!r} is absolute: name a file inside {folder}")
    root = folder.resolve()
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise CassettePathError(f"cassette name {name!r} escapes the cassette folder {folder}")
    if resolved == root or resolved.is_dir():
        raise CassettePathError(f"cassette name {name!r} names a folder, not a cassette file in {folder}")
    return resolved
