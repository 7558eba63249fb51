"""One replication in, tidy tables out; and many replications of one scenario.

:func:`run_replication` is the single pure function every other part (CLI, sweeps, calibration) calls:
(validated scenario, seed, replication number) -> :class:`Replication`. Its random streams come from
``SeedSequence(seed, spawn_key=(replication, stream))``, so replication r of seed s is the same run
whichever process, machine or executor computes it, and however many replications there are.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from sim.model import FLOWS, LEVELS, STREAMS, Model, collector_paused
from sim.outputs import is_nok
from sim.scenario import Scenario
from sim.timeline import YearMonth, iso_date, month_labels

# Column order of monthly.csv: the headline columns first, then the rest.
HEADLINE = ("tenants", "municipal_units", "in_advice", "waiting_for_frame", "new_owners_municipal",
            "new_owners_private", "startlan_loans", "startlan_nok", "startlan_loans_lte", "startlan_nok_lte",
            "startlan_loans_other", "startlan_nok_other", "tilskudd_grants", "tilskudd_nok", "frame_remaining_nok")
MONTHLY_COLUMNS = HEADLINE + tuple(c for c in LEVELS + FLOWS if c not in HEADLINE)
LOAN_COLUMNS = ("household_id", "group", "approved_t", "t", "startlan_nok", "bank_loan_nok", "tilskudd_nok", "price_nok",
                "rate_pct", "term_years", "default_t", "settled_t", "loss_nok")
EVENT_COLUMNS = ("t", "household_id", "group", "event", "dwelling_id", "startlan_nok", "tilskudd_nok", "price_nok")


class ModelInvariantError(AssertionError):
    """The model's own accounting does not close: a bug in the model, never a user's mistake."""


def streams_for(seed: int, replication: int) -> dict[str, np.random.Generator]:
    """Independent generators, one per purpose, for one replication."""
    return {name: np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(replication, i))))
            for i, name in enumerate(STREAMS)}


@dataclass
class Replication:
    replication: int
    monthly: pd.DataFrame
    loans: pd.DataFrame
    events: pd.DataFrame | None
    arrivals: pd.DataFrame  # every household that entered: id, time, income (for common-random-number checks)
    events_handled: int
    invariants: dict = field(default_factory=dict)


def check_invariants(model: Model) -> dict:
    """The accounting identities of a finished run; raises ModelInvariantError if one fails."""
    entered = model.tenant_households
    present = len(model.waiting) + model.tenants
    exited = sum(model.exited.values())
    frame_min = float(model.level["frame_remaining_nok"].min()) if model.p.n else 0.0
    facts = {
        "households_entered": entered,
        "households_present": present,
        "households_exited": exited,
        "units_initial": model.s.stock.initial_units,
        "units_sold": model.sold,
        "units_bought": model.bought,
        "units_end": len(model.stock),
        "frame_min_nok": frame_min,
    }
    problems = []
    if entered != present + exited:
        problems.append(f"households entered {entered} != present {present} + exited {exited}")
    if len(model.stock) != model.s.stock.initial_units - model.sold + model.bought:
        problems.append(f"units {len(model.stock)} != initial {model.s.stock.initial_units} - sold {model.sold}"
                        f" + bought {model.bought}")
    if frame_min < 0 or min(model.frame.level.values()) < 0:
        problems.append(f"frame went below zero ({frame_min:.2f} NOK)")
    if model.tenants > len(model.stock):
        problems.append(f"more tenants ({model.tenants}) than dwellings ({len(model.stock)})")
    if problems:
        raise ModelInvariantError("; ".join(problems))
    return facts


def run_replication(scenario: Scenario, seed: int, replication: int, record_events: bool = False) -> Replication:
    """Run one replication and return its tables. Pure: same inputs, same tables."""
    # The collector stays paused until the model is freed (by reference counting, see Model.run): resumed
    # earlier, its next pass would scan every object of the finished model once more.
    with collector_paused():
        return _tables(Model(scenario, streams_for(seed, replication), record_events=record_events).run(),
                       scenario, replication, record_events)


def _tables(model: Model, scenario: Scenario, replication: int, record_events: bool) -> Replication:
    """The tidy tables of a finished run."""
    facts = check_invariants(model)
    start = YearMonth.parse(scenario.period.start)
    n = model.p.n
    data = {"replication": np.full(n, replication), "month": month_labels(start, n)}
    for col in MONTHLY_COLUMNS:
        data[col] = model.level[col] if col in model.level else model.flow[col]
    monthly = pd.DataFrame(data)
    loans = pd.DataFrame(model.loans, columns=list(LOAN_COLUMNS))
    loans.insert(0, "replication", replication)
    events = None
    if record_events:
        events = pd.DataFrame(model.events, columns=list(EVENT_COLUMNS)).sort_values("t", kind="stable")
        events.insert(0, "replication", replication)
    drawn = model.arrivals_table()
    arrivals = pd.DataFrame({
        "household_id": drawn["household_id"],
        "group": np.where(drawn["lte"], "lte", "other"),
        "arrived_t": drawn["arrived_t"],
        "income0_nok": drawn["income0_nok"],
    })
    return Replication(replication, monthly, loans, events, arrivals, model.events_handled, facts)


@dataclass
class RunResult:
    """All replications of one scenario, as tidy tables."""

    scenario: Scenario
    seed: int
    replications: list[Replication]

    @property
    def monthly(self) -> pd.DataFrame:
        return pd.concat([r.monthly for r in self.replications], ignore_index=True)

    @property
    def loans(self) -> pd.DataFrame:
        return pd.concat([r.loans for r in self.replications], ignore_index=True)

    @property
    def events(self) -> pd.DataFrame | None:
        parts = [r.events for r in self.replications if r.events is not None]
        return pd.concat(parts, ignore_index=True) if parts else None


def run(scenario: Scenario, replications: int, seed: int, record_events: bool = False,
        scenarios: Callable[[int], Scenario] | None = None,
        progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run replications 0..n-1 in this process. ``scenarios(r)`` may give each replication its own
    parameter set (a draw from a calibration posterior); by default all use ``scenario``."""
    out = []
    for r in range(replications):
        sc = scenarios(r) if scenarios else scenario
        out.append(run_replication(sc, seed, r, record_events))
        if progress:
            progress(r + 1, replications)
    return RunResult(scenario, seed, out)


def posterior_scenarios(scenario: Scenario, draws: list[dict]) -> Callable[[int], Scenario]:
    """Replication r runs with parameter draw r mod len(draws) (each validated once)."""
    from sim.scenario import with_overrides

    cache: dict[int, Scenario] = {}

    def for_replication(r: int) -> Scenario:
        k = r % len(draws)
        if k not in cache:
            cache[k] = with_overrides(scenario, draws[k], "<posterior draw>")
        return cache[k]

    return for_replication


@functools.cache
def code_hash() -> str:
    """A hash of the package's source (every module of ``sim``): saved results (a fit's generations, a sweep's
    runs) were made by this code, and resuming them after the model changed would mix the work of two models."""
    return source_hash(Path(__file__).parent)


def source_hash(folder: Path) -> str:
    """A hash of the Python modules in ``folder``, by name and content. Line endings do not count: the same commit
    checked out with CRLF (Git's default on Windows) is the same code, and gives the same run ids."""
    h = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes().replace(b"\r\n", b"\n"))
    return h.hexdigest()


# ---------------------------------------------------------------------------------------------- aggregation
def yearly(monthly: pd.DataFrame, keys: Iterable[str] = ("replication",)) -> pd.DataFrame:
    """Sum flows and take December levels per key and year; add derived means."""
    keys = list(keys)
    df = monthly.copy()
    df.insert(len(keys), "year", df["month"].str.slice(0, 4).astype(int))
    groups = df.groupby(keys + ["year"], sort=True)
    flows = [c for c in FLOWS if c in df.columns]
    levels = [c for c in LEVELS if c in df.columns]
    out = groups[flows].sum()
    out[levels] = groups[levels].last()
    out = out.reset_index()
    out["new_owners"] = out["new_owners_municipal"] + out["new_owners_private"]
    # empty (NaN) in a year without a loan granted: nobody waited and got one, which is not a wait of 0
    out["frame_wait_months_mean"] = out["frame_wait_months_sum"] / out["frame_approved"].where(out["frame_approved"] > 0)
    ordered = keys + ["year"] + [c for c in MONTHLY_COLUMNS if c in out.columns] + ["new_owners", "frame_wait_months_mean"]
    return out[ordered]


def summary(table: pd.DataFrame, keys: Iterable[str] = ()) -> pd.DataFrame:
    """Per (keys, year) and column: mean and 5th, 50th, 95th percentiles across replications (long format)."""
    keys = list(keys)
    value_cols = [c for c in table.columns if c not in keys + ["replication", "year", "month"]]
    long = table.melt(id_vars=keys + ["year"], value_vars=value_cols, var_name="column", value_name="value")
    g = long.groupby(keys + ["year", "column"], sort=False)["value"]
    out = pd.DataFrame({
        "mean": g.mean(),
        "p5": g.quantile(0.05),
        "p50": g.quantile(0.5),
        "p95": g.quantile(0.95),
    }).reset_index()
    nok = out["column"].map(is_nok).to_numpy(bool)  # NOK rows in whole kroner, as every other table writes NOK
    stats = ["mean", "p5", "p50", "p95"]
    out.loc[nok, stats] = out.loc[nok, stats].round(0)
    order = {c: i for i, c in enumerate(value_cols)}
    out["_o"] = out["column"].map(order)
    out = out.sort_values(keys + ["year", "_o"], kind="stable").drop(columns="_o").reset_index(drop=True)
    return out


def add_dates(table: pd.DataFrame, start: YearMonth, columns: Iterable[str]) -> pd.DataFrame:
    """Replace model-time columns (``*_t``, ``t``) with ISO dates."""
    out = table.copy()
    for col in columns:
        if col in out.columns:
            name = "date" if col == "t" else col[:-2] + "_date"
            out[col] = [iso_date(start, t) if isinstance(t, float) and not math.isnan(t) else "" for t in out[col]]
            out = out.rename(columns={col: name})
    return out
