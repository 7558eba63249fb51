"""Model time and dated parameters: parsing, 'each value holds until the next', resolution per month, dates."""

import re

import numpy as np
import pytest

from sim.timeline import YearMonth, iso_date, month_labels, months_between, parse_dated, resolve_monthly, value_at


def test_year_month_parse():
    assert YearMonth.parse("2011-06") == YearMonth(2011, 6)
    assert YearMonth.parse("2011") == YearMonth(2011, 1)  # a year means its January
    assert YearMonth.parse(2011) == YearMonth(2011, 1)  # TOML bare keys and ints alike
    assert YearMonth.parse(" 2024-07 ") == YearMonth(2024, 7)
    assert str(YearMonth(2011, 6)) == "2011-06"
    for bad in ("2011-13", "2011-00", "2011-6", "11-06", "2011/06", "June 2011", ""):
        with pytest.raises(ValueError):
            YearMonth.parse(bad)


def test_month_arithmetic():
    start = YearMonth.parse("2010-01")
    assert str(start.plus(17)) == "2011-06"
    assert str(YearMonth(2011, 12).plus(1)) == "2012-01"
    assert str(YearMonth(2011, 1).plus(-1)) == "2010-12"
    assert months_between(start, YearMonth(2011, 6)) == 17
    assert month_labels(YearMonth(2010, 11), 4) == ["2010-11", "2010-12", "2011-01", "2011-02"]
    assert YearMonth(2010, 12) < YearMonth(2011, 1)


def test_parse_year_and_year_month_keys():
    steps = parse_dated({"2010": 1, "2011-07": 2.5, "2013": 3})
    assert steps == [(YearMonth(2010, 1), 1.0), (YearMonth(2011, 7), 2.5), (YearMonth(2013, 1), 3.0)]
    assert all(isinstance(v, float) for _, v in steps)
    # a plain number holds for ever
    assert parse_dated(5) == [(YearMonth(1, 1), 5.0)]


def test_values_hold_until_the_next_date():
    steps = parse_dated({"2010": 1.0, "2011-07": 2.0, "2013": 3.0})
    start = YearMonth.parse("2011-05")
    # by hand: 2011-05, 2011-06 hold 1.0 (from 2010); 2011-07 .. 2012-12 (18 months) hold 2.0; 2013-01, -02 hold 3.0
    got = resolve_monthly(steps, start, 22)
    assert got.tolist() == [1.0] * 2 + [2.0] * 18 + [3.0] * 2
    assert value_at(steps, YearMonth(2011, 6)) == 1.0
    assert value_at(steps, YearMonth(2011, 7)) == 2.0  # the new value holds from its own month
    assert value_at(steps, YearMonth(2012, 12)) == 2.0
    assert value_at(steps, YearMonth(2099, 1)) == 3.0  # the last value holds for ever
    assert resolve_monthly(parse_dated(5), start, 3).tolist() == [5.0, 5.0, 5.0]


def test_resolve_monthly_small_hand_example():
    # Husbanken's rate in Drammen's file, from 2024-01 for 12 months: 4.55 until June, 4.64 from July
    steps = parse_dated({"2023": 4.0, "2024": 4.55, "2024-07": 4.64})
    got = resolve_monthly(steps, YearMonth(2023, 11), 10)
    # 2023-11, 2023-12: 4.0; 2024-01 .. 2024-06: 4.55; 2024-07, 2024-08: 4.64
    assert got.tolist() == [4.0, 4.0] + [4.55] * 6 + [4.64, 4.64]
    # a date after the last simulated month never comes into force; one exactly at the start does
    assert resolve_monthly(parse_dated({"2010": 1.0, "2030": 9.0}), YearMonth(2010, 1), 3).tolist() == [1.0] * 3
    assert resolve_monthly(parse_dated({"2009": 1.0, "2010-02": 2.0}), YearMonth(2010, 2), 2).tolist() == [2.0, 2.0]


def test_resolution_agrees_with_value_at_every_month():
    steps = parse_dated({"2010": 50e6, "2011": 80e6, "2012-03": 110e6, "2014": 150e6, "2016": 200e6})
    start = YearMonth(2010, 1)
    got = resolve_monthly(steps, start, 96)
    assert got.tolist() == [value_at(steps, start.plus(i)) for i in range(96)]


def test_no_value_before_the_first_date():
    steps = parse_dated({"2012": 1.0})
    with pytest.raises(ValueError, match="no value in force"):
        value_at(steps, YearMonth(2011, 12))


def test_resolve_monthly_before_the_first_date_gives_no_made_up_values():
    """Months before the first date have no value in force: resolve_monthly must say so (like value_at), or at
    least mark them NaN, never return whatever happened to be in memory (np.empty)."""
    steps = parse_dated({"2012": 1.0})
    try:
        got = resolve_monthly(steps, YearMonth(2011, 1), 14)
    except ValueError:
        return
    assert np.isnan(got[:12]).all(), got[:12]
    assert got[12:].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("bad", [{"2012": 1, "2011": 2}, {"2011": 1, "2011-01": 2}, {"2011-13": 1}, {"20x1": 1},
                                 {}, {"2011": "a"}, {"2011": True}, True, "5", None, [1, 2]])
def test_bad_dated_values(bad):
    with pytest.raises(ValueError):
        parse_dated(bad)


def test_out_of_order_dates_are_rejected_with_the_rule():
    with pytest.raises(ValueError, match="out of order"):
        parse_dated({"2012": 1, "2011": 2})
    with pytest.raises(ValueError, match="out of order"):
        parse_dated({"2012": 1, "2013": 2, "2012-06": 3})
    with pytest.raises(ValueError, match="out of order"):
        parse_dated({"2012-06": 1, "2012": 2})


@pytest.mark.parametrize("table, message", [
    ({"2012-03": 1, "2012-03 ": 2}, "the date 2012-03 is given twice (as 2012-03 and as 2012-03 )"),
    ({"2015": 0.3, "2015-01": 0.5}, "the date 2015-01 is given twice (as 2015 and as 2015-01)"),
    ({"2011": 0.1, "2015-01": 0.3, "2016": 0.4, "2015": 0.5}, "the date 2015-01 is given twice (as 2015-01 and as 2015)"),
])
def test_a_date_given_twice_is_named_as_such(table, message):
    """2015 and 2015-01 are the same month: "given twice", not "2015-01 comes after 2015-01"."""
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_dated(table)


def test_iso_date():
    start = YearMonth.parse("2010-01")
    assert iso_date(start, 0.0) == "2010-01-01"
    assert iso_date(start, 0.5) == "2010-01-16"  # 1 + int(0.5 * 31)
    assert iso_date(start, 13.5) == "2011-02-15"  # February 2011 has 28 days: 1 + 14
    assert iso_date(start, 12.0) == "2011-01-01"
    assert iso_date(start, 11.9999) == "2010-12-31"  # never past the month's last day
    assert iso_date(start, 25.99) == "2012-02-29"  # leap year: 1 + int(0.99 * 29) = 29
    assert iso_date(YearMonth(2011, 6), 7.0) == "2012-01-01"
