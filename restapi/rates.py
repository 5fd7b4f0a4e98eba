"""
Request rates such as ``100/day`` or ``5/min``: their grammar, in one place.

Plain Python with no Django import, so that EphemeralMessages/config.py can
check ``CHAT_THROTTLE_RATE`` at start-up with the same rule the throttle uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

PERIOD_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hour": 3600, "d": 86400, "day": 86400}
_GRAMMAR = re.compile(r"^\s*(\d+)\s*/\s*([a-z]+)\s*$")


def _parts(text: str) -> tuple[int, str]:
    match = _GRAMMAR.match(text.lower())
    if not match or match.group(2) not in PERIOD_SECONDS or int(match.group(1)) == 0:
        raise ValueError(
            "expected '<requests>/<period>' with period one of second, minute, hour, day "
            f"(for example 100/day or 5/min), got {text!r}."
        )
    return int(match.group(1)), match.group(2)


def normalise_rate(text: str) -> str:
    """``' 7 / Day '`` → ``'7/day'``; ValueError, saying what is expected, if it is not a rate."""
    requests, period = _parts(text)
    return f"{requests}/{period}"


@dataclass(frozen=True, slots=True)
class Rate:
    requests: int
    period: int

    @staticmethod
    @cache
    def parse(text: str) -> Rate:
        """``'100/day'`` → 100 requests per 86400 s."""
        requests, period = _parts(text)
        return Rate(requests, PERIOD_SECONDS[period])

    def window_end(self, now: float) -> int:
        """The end, in whole Unix seconds, of the fixed window that contains ``now``."""
        return (int(now) // self.period + 1) * self.period
