"""Units as scenario files write them: durations, rates, sizes, fractions."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from simsys.formatting import fmt_bytes, fmt_duration
from simsys.spec.limits import MAX_DURATION, MAX_RATE, MAX_SIZE
from simsys.spec.units import (
    DURATION_UNITS,
    parse_duration,
    parse_fraction,
    parse_rate,
    parse_size,
)

PARSERS = [parse_duration, parse_rate, parse_size, parse_fraction]


# -- examples -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, seconds",
    [
        ("250us", 250e-6), ("250µs", 250e-6), ("5ms", 0.005), ("2s", 2.0), ("10min", 600.0),
        ("1h", 3600.0), ("1d", 86400.0), ("100ns", 1e-7), ("1.5s", 1.5), (".5ms", 0.0005),
        ("1e-3s", 0.001), (" 5 ms ", 0.005), ("3", 3.0), (3, 3.0), (0.25, 0.25), ("0", 0.0),
        ("-5s", -5.0),  # the sign is kept; fields that need ≥ 0 say so themselves
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@pytest.mark.parametrize(
    "text",
    ["10 minutes", "5m", "5MS", "5 sec", "ms", "", " ", "5s5", "five", "1,5s", "nan", "inf",
     "1e400s", True, None, [5], {"value": 5}, float("nan"), float("inf")],
)
def test_bad_durations(text):
    with pytest.raises(ValueError, match="expected a duration such as"):
        parse_duration(text)


def test_bad_duration_unit_lists_the_units():
    with pytest.raises(ValueError) as info:
        parse_duration("10 minutes")
    assert "units: ns, us, µs, ms, s, min, h, d" in str(info.value)
    assert "got '10 minutes'" in str(info.value)


@pytest.mark.parametrize(
    "text, per_second",
    [("200/s", 200.0), ("3/min", 0.05), ("0.5/ms", 500.0), ("7200/h", 2.0), ("5", 5.0), (5, 5.0),
     (" 10 / s ", 10.0), ("1e3/s", 1000.0)],
)
def test_parse_rate(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize("text", ["200/sec", "200 per s", "/s", "200/", "3/fortnight", "fast",
                                  True, None, float("inf")])
def test_bad_rates(text):
    with pytest.raises(ValueError, match="expected a rate such as"):
        parse_rate(text)


@pytest.mark.parametrize(
    "text, num_bytes",
    [("512B", 512), ("64KB", 64_000), ("64KiB", 65_536), ("1.5MiB", 1_572_864), ("2GB", 2e9),
     ("1 KB", 1000), ("100", 100), (100, 100), (0, 0)],
)
def test_parse_size(text, num_bytes):
    assert parse_size(text) == num_bytes


@pytest.mark.parametrize("text", ["lots", "64 kilobytes", "-5", "-5KB", "KB", "", True, None,
                                  float("nan")])
def test_bad_sizes(text):
    with pytest.raises(ValueError, match="expected a size such as"):
        parse_size(text)


@pytest.mark.parametrize("text, num_bytes", [("1.0e+2B", 100.0), ("1.5e", None)])
def test_sizes_with_exponents_are_not_exabytes(text, num_bytes):
    if num_bytes is None:
        with pytest.raises(ValueError):
            parse_size(text)
    else:
        assert parse_size(text) == num_bytes


@pytest.mark.parametrize("text, fraction",
                         [("50%", 0.5), ("0.1%", 0.001), (0.001, 0.001), ("0.25", 0.25), (1, 1.0),
                          ("100%", 1.0), ("0%", 0.0)])
def test_parse_fraction(text, fraction):
    assert parse_fraction(text) == pytest.approx(fraction, rel=1e-12)


@pytest.mark.parametrize("text", ["150%", "-1%", 1.5, -0.1, "half", "", True, None, "nan"])
def test_bad_fractions(text):
    with pytest.raises(ValueError, match="expected a fraction between 0 and 1"):
        parse_fraction(text)


@pytest.mark.parametrize(
    "seconds, text",
    [(0, "0 s"), (0.004, "4 ms"), (0.00025, "250 µs"), (2.5, "2.5 s"), (600, "10 min"),
     (5400, "90 min"), (20_000, "5.56 h"), (3e-9, "3 ns")],
)
def test_format_duration(seconds, text):
    assert fmt_duration(seconds) == text


@pytest.mark.parametrize("num_bytes, text", [(0, "0 B"), (512, "512 B"), (1_500_000, "1.5 MB"),
                                             (64_000, "64 KB"), (1e12, "1 TB")])
def test_format_size(num_bytes, text):
    # decimal units, the ones scenario files parse: what is shown reads back as written
    assert fmt_bytes(num_bytes) == text
    assert parse_size(text.replace(" ", "")) == num_bytes


@pytest.mark.parametrize("parse", PARSERS)
def test_integers_beyond_float_range_raise_value_error(parse):
    with pytest.raises(ValueError):
        parse(10**400)


# -- properties ---------------------------------------------------------------------------------
finite = dict(allow_nan=False, allow_infinity=False)


@given(st.floats(min_value=-0.99 * MAX_DURATION, max_value=0.99 * MAX_DURATION, **finite))
@example(0.0)
@example(59.99999)
@example(1e-12)
def test_format_duration_round_trips(seconds):
    # shown with three significant digits (half a unit in the last: 0.5 %); thousands separated
    text = fmt_duration(seconds).replace(",", "").replace("µs", "us")
    assert parse_duration(text) == pytest.approx(seconds, rel=5e-3, abs=1e-9)


@given(st.floats(min_value=0, max_value=1e12, **finite),
       st.sampled_from(sorted(DURATION_UNITS)), st.sampled_from(["", " "]))
def test_written_durations_parse(number, unit, space):
    text = f"{number!r}{space}{unit}"
    seconds = number * DURATION_UNITS[unit]
    if seconds > MAX_DURATION:  # bounded: the message names the bound
        with pytest.raises(ValueError, match=r"of at most 1e\+09 s"):
            parse_duration(text)
    else:
        assert parse_duration(text) == pytest.approx(seconds, rel=1e-12)


@given(st.floats(min_value=0, max_value=1e12, **finite), st.sampled_from(sorted(DURATION_UNITS)))
def test_written_rates_parse(number, unit):
    per_second = number / DURATION_UNITS[unit]
    if per_second > MAX_RATE:
        with pytest.raises(ValueError, match=r"of at most 1e\+07 per s"):
            parse_rate(f"{number!r}/{unit}")
    else:
        assert parse_rate(f"{number!r}/{unit}") == pytest.approx(per_second, rel=1e-12)


@given(st.integers(min_value=0, max_value=int(0.99 * MAX_SIZE)))
@example(1023)
@example(1024)
@example(1_048_575)
def test_format_size_round_trips(num_bytes):
    assert parse_size(fmt_bytes(num_bytes).replace(",", "")) == pytest.approx(num_bytes, rel=5e-3)


@given(st.floats(min_value=0, max_value=1, **finite))
def test_percentages_round_trip(fraction):
    assert parse_fraction(f"{fraction * 100!r}%") == pytest.approx(fraction, rel=1e-12, abs=1e-15)


garbage = st.one_of(
    st.text(max_size=20),
    st.text(alphabet="0123456789.eE+-/ %µsmhdnuKMGTiBbk", max_size=12),  # near misses
    st.integers(min_value=-(10**300), max_value=10**300),
    st.floats(),
    st.none(),
    st.booleans(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@given(garbage, st.sampled_from(PARSERS))
def test_garbage_raises_value_error_and_nothing_else(value, parse):
    try:
        out = parse(value)
    except ValueError:
        return
    assert isinstance(out, float) and math.isfinite(out)
