"""Durations written by people (``30m``, ``26h``, ``2d``): parsed once, for settings and CLI flags."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``26h``, ``2d``, ``1w`` (one number and one unit) → a timedelta."""
    found = _DURATION.match(text or "")
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration like 30m, 26h, 2d or 1w (a positive number and a unit)")
    return timedelta(seconds=float(found.group(1)) * _UNITS[found.group(2)])
