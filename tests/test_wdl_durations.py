"""ISO 8601 durations for limit.timeout and retry-policy intervals.

The examples come from the Logic Apps docs quoted in
/work/shared/reference/logicapps-webhook.md: ``"timeout": "PT10S"`` and
``"PT1H"`` (WAT22, WH26), retry intervals ``PT7S``, ``PT5S``, ``PT30S``,
``PT1H``, ``P1D`` and the range ``PT5S``-``P1D`` (EXC22).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hooknb.wdl.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("PT10S", timedelta(seconds=10)),
        ("PT1H", timedelta(hours=1)),
        ("PT7S", timedelta(seconds=7)),
        ("PT5S", timedelta(seconds=5)),
        ("PT30S", timedelta(seconds=30)),
        ("P1D", timedelta(days=1)),
        ("PT1M", timedelta(minutes=1)),
        ("PT10M", timedelta(minutes=10)),
        ("PT0.5S", timedelta(milliseconds=500)),
        ("P1W", timedelta(weeks=1)),
        ("P1DT2H", timedelta(days=1, hours=2)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("P90D", timedelta(days=90)),
        ("P1W2D", timedelta(days=9)),
        ("P1DT2H3M4.25S", timedelta(days=1, hours=2, minutes=3, seconds=4.25)),
        ("PT36H", timedelta(hours=36)),
        ("PT0S", timedelta(0)),
        ("PT1.5H", timedelta(minutes=90)),
        ("P0.5D", timedelta(hours=12)),
        ("PT0,5S", timedelta(milliseconds=500)),  # ISO 8601 allows a decimal comma
        ("pt10m", timedelta(minutes=10)),
        ("  PT10M ", timedelta(minutes=10)),
        ("PT0.0000004S", timedelta(0)),  # rounded to microseconds
        ("PT0.0000006S", timedelta(microseconds=1)),
    ],
)
def test_parse(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is not an ISO 8601 duration"),
        ("P", "is not an ISO 8601 duration"),
        ("PT", "is not an ISO 8601 duration"),
        ("P1DT", "is not an ISO 8601 duration"),
        ("10M", "is not an ISO 8601 duration"),
        ("PT10", "is not an ISO 8601 duration"),
        ("P1H", "is not an ISO 8601 duration"),  # hours need the T
        ("PT1D", "is not an ISO 8601 duration"),
        ("P1S", "is not an ISO 8601 duration"),
        ("PT1.5.5S", "is not an ISO 8601 duration"),
        ("PT1M1H", "is not an ISO 8601 duration"),  # wrong order
        ("P 1D", "is not an ISO 8601 duration"),
        ("10", "is not an ISO 8601 duration"),
        ("P1M", "months have no fixed length; write the duration in days (for example 'P30D'"),
        ("P1Y", "years have no fixed length"),
        ("P1Y2M3D", "years have no fixed length"),
        ("-PT5M", "negative durations are not allowed"),
        ("P" + "9" * 400 + "D", "is too long a duration"),
        ("P99999999999D", "is too long a duration"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_duration(text)


def test_error_messages_clip_long_input() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("P" + "9" * 400 + "D")
    assert len(str(info.value)) < 100


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="is a string"):
        parse_duration(10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (timedelta(minutes=10), "PT10M"),
        (timedelta(days=1), "P1D"),
        (timedelta(days=1, hours=2), "P1DT2H"),
        (timedelta(hours=1, minutes=30), "PT1H30M"),
        (timedelta(milliseconds=500), "PT0.5S"),
        (timedelta(weeks=1), "P7D"),
        (timedelta(0), "PT0S"),
        (timedelta(seconds=1, microseconds=1), "PT1.000001S"),
        (timedelta(days=90, seconds=59), "P90DT59S"),
    ],
)
def test_format(value: timedelta, expected: str) -> None:
    assert format_duration(value) == expected


def test_format_rejects_negative_and_non_timedelta() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))
    with pytest.raises(ValueError, match="expected a timedelta"):
        format_duration(10)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=99_999)))
def test_format_then_parse_round_trips(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="PTYMWDHS0123456789.,- ptdhms", max_size=20))
def test_parse_only_raises_value_error(text: str) -> None:
    try:
        result = parse_duration(text)
    except ValueError:
        return
    assert result >= timedelta(0)
