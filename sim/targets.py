"""Observed figures to calibrate on: the targets file, and the same quantities computed from a model run.

A targets file is a CSV with the columns ``date, quantity, value, lower, upper, scope, source``. ``value`` is
the observed figure; ``lower`` and/or ``upper`` may bound it instead (one-sided: "more than NOK 65 million").
``quantity`` is one of :data:`QUANTITIES`; a row whose quantity is ``programme_start`` is information only.
Cumulative quantities count from the programme start to ``date``: the months before it, and the share of its
month up to its day (a figure dated 3 September counts 3/30 of September's flow; one dated on a month's last
day, or given as ``YYYY-MM``, the whole month). Levels are taken at the date in the same way, between the
month ends on either side of it.
"""

from __future__ import annotations

import calendar
import datetime
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import ScenarioError
from sim.outputs import read_any_csv
from sim.scenario import MAX_COUNT_PER_YEAR, MAX_NOK_PER_YEAR, MAX_YEARS, Scenario
from sim.timeline import YearMonth, months_between

# quantity -> (how it is computed from the monthly table, kind of figure, meaning)
QUANTITIES: dict[str, tuple[str, str, str]] = {
    "cumulative_owners": ("cum:new_owners_municipal+new_owners_private", "count", "tenants who became owners since the programme start"),
    "cumulative_owners_bought_municipal": ("cum:new_owners_municipal", "count", "of which bought their municipal dwelling"),
    "cumulative_owners_bought_private": ("cum:new_owners_private", "count", "of which bought on the private market"),
    "cumulative_sales_municipal_to_tenants": ("cum:units_sold", "count", "municipal dwellings sold to their tenants"),
    "cumulative_municipal_units_bought": ("cum:units_bought", "count", "replacement dwellings bought"),
    "startlan_disbursed_nok_year": ("year:startlan_nok", "nok", "startlån paid out in the calendar year of date (all borrowers)"),
    "share_immigrant_background_municipal_buyers": ("share:new_owners_municipal_immigrant/new_owners_municipal", "share", "share of municipal-dwelling buyers with immigrant background"),
    "share_immigrant_background_private_buyers": ("share:new_owners_private_immigrant/new_owners_private", "share", "share of private buyers with immigrant background"),
    "share_introduction_programme_municipal_buyers": ("share:new_owners_municipal_introduction/new_owners_municipal", "share", "share of municipal-dwelling buyers in the introduction programme"),
    "share_introduction_programme_private_buyers": ("share:new_owners_private_introduction/new_owners_private", "share", "share of private buyers in the introduction programme"),
    "share_introduction_participants_municipal_buyers": ("share:new_owners_municipal_introduction_ever/new_owners_municipal", "share", "share of municipal-dwelling buyers who came through the introduction programme (in it, or earlier)"),
    "share_introduction_participants_private_buyers": ("share:new_owners_private_introduction_ever/new_owners_private", "share", "share of private buyers who came through the introduction programme (in it, or earlier)"),
    "municipal_rental_dwellings": ("level:municipal_units", "level", "municipal rental dwellings at the date"),
    "startlan_default_rate": ("ratio:loans_in_default/active_loans", "rate", "share of startlån in default at the date"),
}
INFORMATION_ONLY = ("programme_start",)
SCOPES = ("leie_til_eie", "all_startlan", "stock")  # whose figure a target is: the programme's, all startlån, the stock
# the largest figure of each kind a scenario could produce: counts are households or dwellings (at most
# MAX_COUNT_PER_YEAR a year, over the longest period), a NOK sum is a year's (as a scenario's NOK a year)
MAX_COUNT = MAX_COUNT_PER_YEAR * MAX_YEARS
LARGEST = {"count": (MAX_COUNT, f"{MAX_COUNT_PER_YEAR:,} households or dwellings a year, the most a scenario allows, "
                                f"over its longest period of {MAX_YEARS} years"),
           "level": (MAX_COUNT, f"{MAX_COUNT_PER_YEAR:,} dwellings a year, the most a scenario allows, "
                                f"over its longest period of {MAX_YEARS} years"),
           "nok": (MAX_NOK_PER_YEAR, "the most NOK a year a scenario allows")}


def scale(kind: str, value: float) -> float:
    """How far off a simulated figure may be before it counts as one unit of distance.

    Counts: Poisson-like, sqrt(value) but at least 10 % of it; NOK sums: 10 %; shares of buyers: 0.07
    (about the binomial error of a share out of 50-100 buyers); stock size: 1 %; default rate: 0.5 points.
    """
    if kind == "count":
        return max(math.sqrt(abs(value)), 0.1 * abs(value), 1.0)
    if kind == "nok":
        return max(0.1 * abs(value), 1.0)
    if kind == "share":
        return 0.07
    if kind == "level":
        return max(0.01 * abs(value), 1.0)
    return 0.005


@dataclass(frozen=True)
class Target:
    row: int  # line in the file (2 = first data row)
    date: str
    month: str  # YYYY-MM
    quantity: str
    value: float | None
    lower: float | None
    upper: float | None
    scope: str
    source: str

    @property
    def kind(self) -> str:
        return QUANTITIES[self.quantity][1]

    @property
    def reference(self) -> float:
        """The figure the distance is scaled by: the value, else the bound."""
        return next(v for v in (self.value, self.lower, self.upper) if v is not None)

    def miss(self, simulated: float) -> float:
        """Signed distance in units of :func:`scale`: 0 when the figure is matched or within its bounds."""
        s = scale(self.kind, self.reference)
        if self.value is not None:
            return (simulated - self.value) / s
        if self.lower is not None and simulated < self.lower:
            return (simulated - self.lower) / s
        if self.upper is not None and simulated > self.upper:
            return (simulated - self.upper) / s
        return 0.0

    def label(self) -> str:
        return f"{self.quantity} {self.month}"

    @property
    def fraction(self) -> float:
        """How much of the target's month lies up to its date: 1.0 on the month's last day or for a date given as
        ``YYYY-MM``, 0.1 for 3 September."""
        if len(self.date) < 10:
            return 1.0
        day = datetime.date.fromisoformat(self.date[:10])
        return day.day / calendar.monthrange(day.year, day.month)[1]


def load_targets(path: str | Path, scenario: Scenario, until: str | None = None) -> list[Target]:
    """Read and check a targets file against a scenario's period; ``until`` keeps targets up to that date."""
    path = Path(path)
    f = str(path)
    try:
        df, dialect = read_any_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise ScenarioError(f, [("", "file not found")]) from None
    except UnicodeDecodeError:  # (bytes that are not text: a picture, a program, a spreadsheet's own format)
        raise ScenarioError(f, [("", "not a readable CSV file (not text in UTF-8 or Windows-1252: save the "
                                     "table as CSV)")]) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ScenarioError(f, [("", f"not a readable CSV file ({' '.join(str(exc).split())})")]) from None
    if dialect == "nb":  # saved by Excel with Norwegian settings: decimal commas (read as text here)
        for c in ("value", "lower", "upper"):
            if c in df.columns:
                df[c] = df[c].str.replace(",", ".", regex=False)
    required = ["date", "quantity", "value", "lower", "upper", "scope", "source"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ScenarioError(f, [("", f"missing columns: {', '.join(missing)} (need {', '.join(required)})")])
    start = YearMonth.parse(scenario.period.start)
    end = YearMonth.parse(scenario.period.end)
    cutoff = YearMonth.parse(until) if until else None
    problems, out, seen = [], [], {}
    for i, rec in enumerate(df.to_dict("records")):
        line = i + 2
        key = f"row {line}"
        q = rec["quantity"].strip()
        if q in INFORMATION_ONLY:
            continue
        if q not in QUANTITIES:
            import difflib

            close = difflib.get_close_matches(q, QUANTITIES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(QUANTITIES)}"
            problems.append((f"{key}.quantity", f"unknown quantity {q!r}{hint}"))
            continue
        scope = rec["scope"].strip()
        if scope not in SCOPES:
            problems.append((f"{key}.scope", f"{rec['scope']!r} is not a scope: use one of {', '.join(SCOPES)}"))
            continue
        when = rec["date"].strip()
        try:
            month = YearMonth.parse(when[:7])
            if len(when) > 7:
                datetime.date.fromisoformat(when[:10])
        except ValueError:
            problems.append((f"{key}.date", f"{rec['date']!r} is not an ISO date (YYYY-MM-DD)"))
            continue
        if not start <= month <= end:
            problems.append((f"{key}.date", f"{rec['date']} lies outside the simulated period {start} to {end}"))
            continue
        nums, reported = {}, len(problems)
        kind = QUANTITIES[q][1]
        for c in ("value", "lower", "upper"):
            text = rec[c].strip()
            try:
                nums[c] = float(text) if text else None
            except ValueError:
                problems.append((f"{key}.{c}", f"{text!r} is not a number"))
                nums[c] = None
                continue
            v, share = nums[c], kind in ("share", "rate")
            if v is None:
                continue
            if not math.isfinite(v) or v < 0 or (share and v > 1):
                rule = "a share from 0 to 1" if share else "a number of at least 0"
                problems.append((f"{key}.{c}", f"{text!r}: {q} must be {rule}"))
                nums[c] = None
            elif kind in LARGEST and v > LARGEST[kind][0]:
                most, why = LARGEST[kind]
                problems.append((f"{key}.{c}", f"{text!r}: {q} must be at most {most:,.0f} ({why})"))
                nums[c] = None
        same = (q, when[:4] if QUANTITIES[q][0].startswith("year:") else when)  # a yearly sum: one per year
        if same in seen:
            problems.append((key, f"{q} at {when} is listed twice (row {seen[same]} and row {line}); keep one"))
            continue
        seen[same] = line
        if all(v is None for v in nums.values()):
            if len(problems) == reported:  # (a figure refused above already said what is wrong with the row)
                problems.append((key, "needs a value, or a lower or upper bound"))
            continue
        if nums["lower"] is not None and nums["upper"] is not None and nums["lower"] > nums["upper"]:
            problems.append((key, "lower bound above upper bound"))
            continue
        v = nums["value"]
        if v is not None and nums["lower"] is not None and v < nums["lower"]:
            problems.append((key, f"value {v:g} lies below its lower bound {nums['lower']:g}"))
            continue
        if v is not None and nums["upper"] is not None and v > nums["upper"]:
            problems.append((key, f"value {v:g} lies above its upper bound {nums['upper']:g}"))
            continue
        if cutoff is not None and month > cutoff:
            continue
        out.append(Target(line, when, str(month), q, nums["value"], nums["lower"], nums["upper"],
                          rec["scope"], rec["source"]))
    if problems:
        raise ScenarioError(f, problems)
    return out


def simulate_quantity(monthly: pd.DataFrame, scenario: Scenario, target: Target) -> float:
    """The target's quantity from one replication's monthly table."""
    how, _, _ = QUANTITIES[target.quantity]
    op, _, expr = how.partition(":")
    start = YearMonth.parse(scenario.period.start)
    m = months_between(start, YearMonth.parse(target.month))
    p0 = months_between(start, YearMonth.parse(scenario.period.programme_start))
    cols = {c: monthly[c].to_numpy() for c in expr.replace("+", "/").split("/")}
    f = target.fraction

    def cum(c: str) -> float:  # from the programme start to the target's day
        return float(cols[c][p0:m].sum() + f * cols[c][m]) if m >= p0 else 0.0

    def level(c: str) -> float:  # at the target's day, between the month ends before and after it
        return float((1.0 - f) * cols[c][m - 1] + f * cols[c][m]) if m > 0 and f < 1.0 else float(cols[c][m])

    if op == "cum":
        return sum(cum(c) for c in expr.split("+"))
    if op == "year":
        y0 = months_between(start, YearMonth(int(target.month[:4]), 1))
        return float(cols[expr][max(y0, 0):max(y0, 0) + 12].sum())
    if op == "level":
        return level(expr)
    num, den = expr.split("/")
    if op == "share":
        d = cum(den)
        return cum(num) / d if d > 0 else float("nan")
    d = level(den)
    return level(num) / d if d > 0 else 0.0


def simulate_all(monthly: pd.DataFrame, scenario: Scenario, targets: list[Target]) -> np.ndarray:
    return np.array([simulate_quantity(monthly, scenario, t) for t in targets])


def last_month(targets: list[Target]) -> str:
    return max(t.month for t in targets)
