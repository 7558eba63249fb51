"""Paired comparison of two sets of runs that share replication seeds (common random numbers).

Replication r of one policy is compared with replication r of the other: they saw the same households and
the same luck, so the per-replication differences vary much less than the outcomes themselves, and the
interval on the mean difference is narrow. The interval is a t-interval on the paired differences.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special

from sim.outputs import is_nok

# Outcomes compared by default (columns of yearly.csv).
OUTCOMES = (
    "new_owners", "new_owners_municipal", "new_owners_private", "startlan_loans", "startlan_nok",
    "startlan_nok_lte", "startlan_nok_other", "frame_wait_months_mean", "frame_gave_up", "waiting_for_frame",
    "frame_expired_nok", "frame_lapsed_nok", "tilskudd_nok", "units_sold", "units_bought", "loss_nok",
    "loss_municipality_nok",
)


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, outcomes=OUTCOMES, level: float = 0.9) -> pd.DataFrame:
    """Per year and outcome: mean of A, mean of B, the mean of (A - B) with a ``level`` interval, and the 5th and
    95th percentiles of the pairs' differences (how the difference itself varies from pair to pair: with posterior
    draws, from one draw to another).

    ``a`` and ``b`` are yearly tables with ``replication`` and ``year``; rows are paired on both.
    """
    outcomes = [o for o in outcomes if o in a.columns and o in b.columns]
    keys = ["replication", "year"]
    ka, kb = a[keys].to_numpy(), b[keys].to_numpy()
    if ka.shape == kb.shape and (ka == kb).all():  # the same pairs in the same order (a sweep's points): no merge
        va, vb = a[outcomes].to_numpy(float), b[outcomes].to_numpy(float)
        years = a["year"].to_numpy()
    else:
        merged = a[[*keys, *outcomes]].merge(b[[*keys, *outcomes]], on=keys, suffixes=("_a", "_b"))
        va = merged[[f"{o}_a" for o in outcomes]].to_numpy(float)
        vb = merged[[f"{o}_b" for o in outcomes]].to_numpy(float)
        years = merged["year"].to_numpy()
    per_year = []
    unique_years = np.unique(years)  # sorted
    for year in unique_years:
        sel = years == year
        ga, gb = va[sel], vb[sel]
        d = ga - gb
        n = np.full(len(outcomes), len(d))
        with np.errstate(invalid="ignore", divide="ignore"):
            mean, sd = d.mean(axis=0), d.std(axis=0, ddof=1) if len(d) > 1 else np.full(len(outcomes), np.nan)
            ma, mb = ga.mean(axis=0), gb.mean(axis=0)
            # a mean wait in a year without a loan granted is empty: that outcome pairs the replications where
            # both runs have a value, and its means are over the same pairs (so difference = mean - baseline)
            for i in np.flatnonzero(np.isnan(d).any(axis=0)):
                both = ~np.isnan(d[:, i])
                n[i] = both.sum()
                mean[i], ma[i], mb[i] = (x[both, i].mean() if n[i] else np.nan for x in (d, ga, gb))
                sd[i] = d[both, i].std(ddof=1) if n[i] > 1 else np.nan
        # the t quantile (what scipy.stats.t.ppf computes, without its per-call overhead)
        with np.errstate(invalid="ignore", divide="ignore"):
            half = np.where(n > 1, special.stdtrit(np.maximum(n - 1, 1), 0.5 + level / 2) * sd / np.sqrt(n), np.nan)
        spread = _percentiles_5_95(d)
        spread[:, n < 2] = np.nan
        per_year.append((ma, mb, mean, mean - half, mean + half, spread[0], spread[1], n))
    table = {"year": np.repeat(unique_years, len(outcomes)), "outcome": [o for _ in per_year for o in outcomes]}
    # NOK in whole kroner, as every other table writes NOK (the outcome names the unit, so rows, not columns)
    nok = np.tile([is_nok(o) for o in outcomes], len(per_year))
    for i, name in enumerate(("mean", "baseline_mean", "difference", "difference_low90", "difference_high90",
                              "difference_p5", "difference_p95")):
        values = np.concatenate([year[i] for year in per_year]) if per_year else np.empty(0)
        table[name] = np.where(nok, np.round(values, 0), values)
    table["replications"] = np.concatenate([year[-1] for year in per_year]) if per_year else np.empty(0, int)
    return pd.DataFrame(table)


def _percentiles_5_95(d: np.ndarray) -> np.ndarray:
    """Each column's 5th and 95th percentiles, over its values that are not NaN (NaN for a column of none): what
    ``np.nanpercentile(d, [5, 95], axis=0)`` gives, to the last bit (a test checks it), at a tenth of its cost,
    which it spends on a Python call per column (a sweep's comparison makes one per point and year)."""
    out = np.full((2, d.shape[1]), np.nan)
    clean = ~np.isnan(d).any(axis=0)
    if clean.any():
        out[:, clean] = np.percentile(d[:, clean], [5, 95], axis=0)
    for i in np.flatnonzero(~clean):
        values = d[~np.isnan(d[:, i]), i]
        if len(values):
            out[:, i] = np.percentile(values, [5, 95])
    return out


def period_totals(yearly: pd.DataFrame, outcomes=OUTCOMES) -> pd.DataFrame:
    """Each replication's outcomes over the whole period: flows summed; the line for the frame (a level) averaged
    over the years; the wait for the frame the mean over every loan granted in the period (all months waited over
    all loans granted, so a busy year weighs as many loans as it granted, and a year with none does not count;
    empty (NaN) if no loan was granted at all)."""
    outcomes = [o for o in outcomes if o in yearly.columns]
    averaged = {"frame_wait_months_mean", "waiting_for_frame"}
    by_replication = yearly.groupby("replication")
    summed = by_replication[[o for o in outcomes if o not in averaged]].sum()
    means = by_replication[[o for o in outcomes if o in averaged]].mean()
    if "frame_wait_months_mean" in outcomes and {"frame_wait_months_sum", "frame_approved"} <= set(yearly.columns):
        waited = by_replication[["frame_wait_months_sum", "frame_approved"]].sum()
        means["frame_wait_months_mean"] = (waited["frame_wait_months_sum"]
                                           / waited["frame_approved"].where(waited["frame_approved"] > 0))
    out = pd.concat([summed, means], axis=1)[outcomes].reset_index()
    out["year"] = 0
    return out


def _split_ref(ref: str):
    """A run or sweep reference, ``FOLDER`` or ``SWEEPDIR:POINT``: (the folder, the point as written or "").
    A path that exists is a folder, whatever colons it holds."""
    from pathlib import Path

    folder, _, point = ref.partition(":") if ":" in ref and not Path(ref).exists() else (ref, "", "")
    return Path(folder), point


def load_yearly(ref: str):
    """A run's yearly table and its manifest, from an ``lte run`` folder or ``SWEEPDIR:POINT``."""
    import json

    from sim.errors import UserError
    from sim.outputs import check_rows, read_result_table, result_keys

    folder, point = _split_ref(ref)
    if not (folder / "yearly.csv").is_file() or not (folder / "manifest.json").is_file():
        raise UserError(f"{folder}: not a finished run or sweep folder (yearly.csv and manifest.json are needed)")
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (ValueError, OSError) as exc:
        raise UserError(f"{folder}: cannot read its manifest.json ({exc})") from None
    if not isinstance(manifest, dict):
        raise UserError(f"{folder}/manifest.json: not a manifest written by lte (a JSON object of keys is "
                        "expected); run it again")
    table = read_result_table(folder / "yearly.csv", ("replication", "year"), OUTCOMES)
    # every replication (of every point) in every year of its period: a row missing would pair what is left
    check_rows(folder / "yearly.csv", table, result_keys(manifest, sweep="point" in table.columns))
    if point != "":
        if "point" not in table.columns:
            raise UserError(f"{ref}: {folder} is a run, not a sweep; leave out ':{point}'")
        try:
            p = int(point)
        except ValueError:
            raise UserError(f"{ref}: the point after ':' must be a number from points.csv") from None
        if p not in set(table["point"]):
            raise UserError(f"{ref}: no point {p} in {folder}/points.csv")
        table = table[table["point"] == p].drop(columns="point")
    elif "point" in table.columns:
        raise UserError(f"{ref}: {folder} is a sweep; name a point as {folder}:POINT (see points.csv)")
    return table, manifest


def parameter_set(draws: list[dict], replication: int) -> dict:
    """The behavioural values replication r ran with, from a manifest's ``parameter_draws`` (draw r mod the number
    of draws, see ``runner.posterior_scenarios``); empty for the fit's estimates (sweeps, ``--parameter-draws 0``,
    a scenario without a fit)."""
    return draws[replication % len(draws)] if draws else {}


def _ran_with(ref: str, draws: list[dict]) -> str:
    return f"{ref} ran with {len(draws)} parameter sets drawn from the calibration posterior" if draws \
        else f"{ref} with the fit's estimates"


def _unpaired_draws(ref_a: str, draws_a: list[dict], ref_b: str, draws_b: list[dict], replications) -> str | None:
    """Why replication r of A and of B did not run with the same behavioural values, or None if they did.

    A value either side sets itself (a variant's own value of a fitted key) is a difference between the two
    scenarios like any other; a value both took from the fit must be the same in both."""
    for r in sorted(replications):
        pa, pb = parameter_set(draws_a, r), parameter_set(draws_b, r)
        if not pa and not pb:
            continue
        if not pa or not pb:
            return (f"{_ran_with(ref_a, draws_a)} and {_ran_with(ref_b, draws_b)}: their replications are not "
                    "paired; run both the same way (lte run --parameter-draws 0 uses the estimates, as sweeps do)")
        differ = sorted(k for k in pa.keys() & pb.keys() if pa[k] != pb[k])
        if differ:
            return (f"{ref_a} and {ref_b}: replication {r} ran with different draws from the calibration posterior "
                    f"({differ[0]}: {pa[differ[0]]} and {pb[differ[0]]}), so their replications are not paired; "
                    "run both with the same --parameter-draws and the same fit")
    return None


def _period(manifest: dict, yearly: pd.DataFrame) -> tuple[str, str]:
    """What a run covers: its months (from an lte run's scenario, or a sweep's period, which all its points share;
    "" if its manifest does not say), and the years of its table."""
    scenario = manifest.get("scenario")
    period = scenario.get("period") if isinstance(scenario, dict) else manifest.get("period")
    months = f"{period['start']} to {period['end']}" if isinstance(period, dict) and period.get("start") \
        and period.get("end") else ""
    years = sorted(set(yearly["year"]))
    span = "no year" if not years else \
        f"the years {years[0]} to {years[-1]}" if len(years) > 1 else f"the year {years[0]}"
    return months, span


def compare_runs(ref_a: str, ref_b: str) -> pd.DataFrame:
    """Paired comparison of two finished runs: per year, and the whole period as year 0.

    Refused unless they are paired: the same seed, the same replications, the same period, and each replication
    run with the same behavioural values from the calibration (the same posterior draw, or the estimates on both
    sides)."""
    from sim.errors import UserError

    a, manifest_a = load_yearly(ref_a)
    b, manifest_b = load_yearly(ref_b)
    seed_a, seed_b = manifest_a.get("seed"), manifest_b.get("seed")
    if seed_a != seed_b:
        raise UserError(f"{ref_a} (seed {seed_a}) and {ref_b} (seed {seed_b}) used different seeds: "
                        "their replications are not paired; run both with the same --seed")
    if set(a["replication"]) != set(b["replication"]):
        raise UserError(f"{ref_a} and {ref_b} have different replications; run both with the same --replications")
    (months_a, years_a), (months_b, years_b) = _period(manifest_a, a), _period(manifest_b, b)
    same_sweep = _split_ref(ref_a)[0].resolve() == _split_ref(ref_b)[0].resolve()  # one sweep: one period
    for ref, months in ((ref_a, months_a), (ref_b, months_b)):
        if not months and not same_sweep:
            raise UserError(f"{ref}: its manifest.json does not say which months it covers (written by an older "
                            "lte, or edited); run it again")
    if (months_a, years_a) != (months_b, years_b):
        shown_a, shown_b = (months_a, months_b) if months_a != months_b else (years_a, years_b)
        raise UserError(f"{ref_a} covers {shown_a} and {ref_b} {shown_b}: their years and whole-period totals do "
                        "not match; run both over the same period")
    draws_a, draws_b = manifest_a.get("parameter_draws") or [], manifest_b.get("parameter_draws") or []
    unpaired = _unpaired_draws(ref_a, draws_a, ref_b, draws_b, set(a["replication"]))
    if unpaired:
        raise UserError(unpaired)
    n_draws = len(draws_a or draws_b)
    averaged = 0 < n_draws < a["replication"].nunique()
    if averaged:
        # replication r ran with draw r mod N: those sharing a draw are not independent of each other, so each
        # draw's replications are averaged first and the interval is over the N draws
        a, b = _by_draw(a, n_draws), _by_draw(b, n_draws)
    per_year = paired_difference(a, b)
    total = paired_difference(period_totals(a), period_totals(b))
    table = pd.concat([total, per_year], ignore_index=True)
    table.attrs["draws_averaged"] = n_draws if averaged else 0  # for the command line's note
    return table


def _by_draw(yearly: pd.DataFrame, n_draws: int) -> pd.DataFrame:
    """A yearly table with the replications that ran with the same posterior draw (r mod ``n_draws``) averaged:
    one row per draw and year, the draw in place of the replication."""
    numeric = yearly.select_dtypes("number").drop(columns=["replication", "year"])
    keyed = numeric.assign(replication=yearly["replication"] % n_draws, year=yearly["year"])
    return keyed.groupby(["replication", "year"], as_index=False).mean()
