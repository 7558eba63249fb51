"""Model time and dated parameters.

Model time is measured in months from the first day of the scenario's start month: ``t = 0`` is
``start``, ``t = 12.5`` is the middle of the thirteenth month. A *dated parameter* is a mapping from a
year (``2011``) or a year-month (``"2024-07"``) to a value, each value holding until the next one,
as OpenFisca does. :func:`resolve_monthly` turns one into an array with a value per simulated month, so
the model looks values up by month index in constant time.
"""

from __future__ import annotations

import calendar
import math
import datetime as dt
import re
from dataclasses import dataclass

import numpy as np

_KEY = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


@dataclass(frozen=True, order=True)
class YearMonth:
    year: int
    month: int  # 1..12

    @classmethod
    def parse(cls, text: str | int) -> "YearMonth":
        """Parse ``2011``, ``"2011"`` or ``"2011-06"``; raise ValueError with the rule broken."""
        m = _KEY.match(str(text).strip())
        if not m:
            raise ValueError(f"{text!r} is not a year (2011) or a year-month (2011-06)")
        year, month = int(m.group(1)), int(m.group(2) or 1)
        if not 1 <= month <= 12:
            raise ValueError(f"{text!r}: month must be 01 to 12")
        return cls(year, month)

    def index(self) -> int:
        """Months since year 0, for differences."""
        return self.year * 12 + (self.month - 1)

    def plus(self, months: int) -> "YearMonth":
        i = self.index() + months
        return YearMonth(i // 12, i % 12 + 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def months_between(a: YearMonth, b: YearMonth) -> int:
    """Number of months from a to b (b - a)."""
    return b.index() - a.index()


def month_labels(start: YearMonth, n_months: int) -> list[str]:
    """``["2010-01", "2010-02", ...]`` for n months from start."""
    return [str(start.plus(i)) for i in range(n_months)]


def iso_date(start: YearMonth, t: float) -> str:
    """The calendar date (ISO ``YYYY-MM-DD``) of model time t (months since start)."""
    whole = int(np.floor(t))
    ym = start.plus(whole)
    days = calendar.monthrange(ym.year, ym.month)[1]
    day = min(days, 1 + int((t - whole) * days))
    return dt.date(ym.year, ym.month, day).isoformat()


def parse_dated(value: float | dict) -> list[tuple[YearMonth, float]]:
    """Turn a scalar or a ``{date: value}`` table into sorted (date, value) steps.

    Raises ValueError naming the rule broken: bad date keys, dates not in increasing order,
    or non-numeric values.
    """
    if isinstance(value, bool):
        raise ValueError("expected a number or a table of date = number")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError(f"expected a finite number, got {value!r}")
        return [(YearMonth(1, 1), float(value))]
    if not isinstance(value, dict) or not value:
        raise ValueError("expected a number or a non-empty table of date = number, e.g. {2011 = 1.0}")
    steps: list[tuple[YearMonth, float]] = []
    seen: dict[YearMonth, str] = {}
    for key, v in value.items():
        when = YearMonth.parse(key)
        if when in seen:
            raise ValueError(f"the date {when} is given twice (as {seen[when]} and as {key}); give each date once")
        seen[when] = str(key)
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"value at {key} must be a number, got {v!r}")
        if not math.isfinite(v):
            raise ValueError(f"value at {key} must be a finite number, got {v!r}")
        if steps and when <= steps[-1][0]:
            raise ValueError(f"dates out of order: {key} comes after {steps[-1][0]}; list dates in increasing order")
        steps.append((when, float(v)))
    return steps


def resolve_monthly(steps: list[tuple[YearMonth, float]], start: YearMonth, n_months: int) -> np.ndarray:
    """Value in force in each of n months from start (a float array of length n)."""
    out = np.full(n_months, np.nan)  # months before the first date have no value
    first = start.index()
    for i, (when, v) in enumerate(steps):
        lo = max(0, when.index() - first)
        hi = n_months if i + 1 == len(steps) else max(0, steps[i + 1][0].index() - first)
        if lo < n_months and hi > lo:
            out[lo:min(hi, n_months)] = v
    return out


def value_at(steps: list[tuple[YearMonth, float]], when: YearMonth) -> float:
    """The value in force at a date (the one resolver used outside the hot path)."""
    current = None
    for date, v in steps:
        if date <= when:
            current = v
        else:
            break
    if current is None:
        raise ValueError(f"no value in force at {when}; the first date is {steps[0][0]}")
    return current
