"""Request rates: the grammar CHAT_THROTTLE_RATE is written in, and its fixed windows."""

from __future__ import annotations

import pytest

from restapi.rates import Rate, normalise_rate


def test_rate_parsing_and_fixed_windows() -> None:
    rate = Rate.parse("5/min")
    assert rate == Rate(5, 60)
    assert Rate.parse("100/day") == Rate(100, 86400)
    assert rate.window_end(120.0) == 180
    assert rate.window_end(179.999) == 180
    assert rate.window_end(180.0) == 240


@pytest.mark.parametrize("text", ["5", "5/fortnight", "0/day", "-1/day", "five/day"])
def test_what_is_not_a_rate_is_refused_saying_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="expected '<requests>/<period>'"):
        normalise_rate(text)
