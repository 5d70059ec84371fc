"""`--fan-key`, checked the same way by the proxy commands and by `tmproxy audit` (whose module the
proxies do not import)."""

from __future__ import annotations

import click

from .fans import FanKeySpec, FanKeySpecError


def check_fan_key(value: str) -> str:
    """A `--fan-key` value, refused as a usage error before anything runs when it is not a fan key."""
    if value:
        try:
            FanKeySpec.parse(value)
        except FanKeySpecError as exc:
            raise click.BadParameter(str(exc)) from None
    return value
