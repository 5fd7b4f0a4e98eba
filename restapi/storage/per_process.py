"""
Store objects made once per process (a Redis client and its guard, the deployment id).

Each is made on first use from the settings and made again when the ``CHAT``
settings change, which happens only in tests.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeVar

from django.core.signals import setting_changed
from django.dispatch import receiver

T = TypeVar("T")

_MADE: list[Any] = []


def per_process(make: Callable[[], T]) -> Callable[[], T]:
    """Decorates a factory so that its object is made once, and again after ``forget_all()``."""
    cached = lru_cache(maxsize=1)(make)
    _MADE.append(cached)
    return cached


def forget_all() -> None:
    """Drop every object made so far; each is made again on next use."""
    for cached in _MADE:
        cached.cache_clear()


@receiver(setting_changed)
def _forget_on_settings_change(*, setting: str, **kwargs: Any) -> None:
    if setting == "CHAT":
        forget_all()
