import numpy as np
import pytest

from sim.timeline import YearMonth, iso_date, parse_dated, resolve_monthly, value_at


def test_parse_and_hold_until_next():
    steps = parse_dated({"2010": 1.0, "2011-07": 2.0, "2013": 3.0})
    start = YearMonth.parse("2011-05")
    # months 2011-05, -06 hold 1.0; 2011-07 .. 2012-12 hold 2.0; from 2013-01 3.0
    got = resolve_monthly(steps, start, 22)
    assert got[:2].tolist() == [1.0, 1.0] and got[2:20].tolist() == [2.0] * 18 and got[20:].tolist() == [3.0, 3.0]
    assert value_at(steps, YearMonth(2012, 12)) == 2.0
    assert resolve_monthly(parse_dated(5), start, 3).tolist() == [5.0, 5.0, 5.0]


@pytest.mark.parametrize("bad", [{"2012": 1, "2011": 2}, {"2011-13": 1}, {"20x1": 1}, {}, {"2011": "a"}, True])
def test_bad_dated_values(bad):
    with pytest.raises(ValueError):
        parse_dated(bad)


def test_out_of_order_message():
    with pytest.raises(ValueError, match="out of order"):
        parse_dated({"2012": 1, "2011": 2})


def test_iso_date_and_months():
    start = YearMonth.parse("2010-01")
    assert iso_date(start, 0.0) == "2010-01-01"
    assert iso_date(start, 13.5) == "2011-02-15"
    assert str(start.plus(17)) == "2011-06"
    assert np.isclose(YearMonth(2011, 6).index() - start.index(), 17)
