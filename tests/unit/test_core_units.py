"""core.units: human durations and sizes, and their ranges."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tw_gates.core.errors import UsageError
from tw_gates.core.units import MAX_DURATION, MAX_SIZE, format_duration, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("48h", 172800), ("1h30m", 5400), ("90s", 90), ("250ms", 0.25), ("2w", 1209600), ("15", 15)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "size"), [("10MiB", 10 * 1024**2), ("500KB", 500_000), ("1.5GiB", 1536 * 1024**2)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("99999999999999d", "duration '99999999999999d' is out of range (0 to 36500d)"),
        ("36501d", "duration '36501d' is out of range (0 to 36500d)"),
        ("9" * 400 + "s", "is out of range (more than 30 digits)"),
        ("9" * 400, "is out of range (more than 30 digits)"),
        ("1e400s", "not a duration: '1e400s'"),
        ("nan", "not a duration: 'nan'"),
        ("inf", "not a duration: 'inf'"),
        ("-5s", "not a duration: '-5s'"),
        (float("inf"), "duration inf is out of range"),
        (float("nan"), "duration nan is out of range"),
        (-1, "duration -1 is out of range"),
        (timedelta(days=10**6), "is out of range (0 to 36500d)"),
    ],
)
def test_durations_out_of_range_are_usage_errors(text, message):
    with pytest.raises(UsageError, match=None) as caught:
        parse_duration(text)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 160  # a 400-digit value is not echoed whole


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("9" * 400 + "TiB", "is out of range (more than 30 digits)"),
        ("1025TiB", "size '1025TiB' is out of range (0 to 1125899906842624 bytes)"),
        ("99999999999999999999TiB", "is out of range"),
        ("-5", "not a size: '-5'"),
        ("1e5", "not a size: '1e5'"),
        (10**30, "is out of range"),
        (-1, "size -1 is out of range"),
        (True, "not a size: True"),
    ],
)
def test_sizes_out_of_range_are_usage_errors(text, message):
    with pytest.raises(UsageError) as caught:
        parse_size(text)
    assert message in str(caught.value)


def test_the_limits_themselves_are_accepted_and_callers_may_narrow_them():
    assert parse_duration("36500d") == MAX_DURATION
    assert parse_size("1024TiB") == MAX_SIZE
    with pytest.raises(UsageError, match=r"out of range \(0 to 1d\)"):
        parse_duration("2d", maximum=timedelta(days=1))
    assert format_duration(timedelta(hours=50)) == "2d2h"


@pytest.mark.parametrize("flag", ["--max-age", "--max-bytes"])
@pytest.mark.parametrize("value", ["99999999999999d", "9" * 40, "99999999999999999999TiB"])
def test_ingest_flags_out_of_range_are_one_line_usage_errors(cli, tmp_path, flag, value):
    artifact = tmp_path / "a.json"
    artifact.write_text("{}")
    code, _, err = cli("ingest", "--artifact", artifact, flag, value)
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error" not in lines[0]
    assert "out of range" in lines[0] or "not a size" in lines[0] or "not a duration" in lines[0]
