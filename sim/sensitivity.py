"""Sobol sensitivity: which uncertain assumption moves the main outcomes most.

Saltelli's scheme with Jansen's estimators: two quasi-random matrices A and B over the sweep's uncertainties
(levers held at the sweep's baseline), and for each uncertainty i the matrix A with column i taken from B.
First-order index S1: the share of the outcome's variance due to that assumption alone; total index ST:
its share including its interactions with the others. Intervals are bootstrap 90 % intervals over the rows.
Every evaluation is the mean over the sweep's replications, with the same seeds everywhere.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
import pandas as pd
from scipy.stats import qmc

from sim import scenario as sc
from sim.compare import period_totals
from sim.errors import ScenarioError, UserError
from sim.sweep import MAX_POINTS, MAX_RUNS, Sweep, baseline_levers, uncertainty_overrides, yearly_task

OUTCOMES = ("new_owners", "startlan_nok", "frame_gave_up", "frame_expired_nok", "tilskudd_nok", "loss_nok")


def saltelli_rows(sweep: Sweep, samples: int) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    d = len(sweep.uncertainties)
    base = qmc.Sobol(d=2 * d, scramble=True, seed=np.random.default_rng(sweep.design_seed)).random(samples)
    lo = np.array([u.low for u in sweep.uncertainties])
    hi = np.array([u.high for u in sweep.uncertainties])
    a = lo + base[:, :d] * (hi - lo)
    b = lo + base[:, d:] * (hi - lo)
    ab = []
    for i in range(d):
        m = a.copy()
        m[:, i] = b[:, i]
        ab.append(m)
    return a, b, ab


def indices(fa: np.ndarray, fb: np.ndarray, fab: list[np.ndarray]) -> list[tuple[float, float]]:
    """(S1, ST) per input from model values on A, B and each AB_i (Saltelli 2010 / Jansen 1999)."""
    # centre on the mean first: the estimators are unbiased either way, but an outcome far from zero (NOK
    # billions) that varies little would otherwise give S1 estimates swamped by noise (far outside 0..1)
    centre = np.mean(np.concatenate([fa, fb]))
    fa, fb, fab = fa - centre, fb - centre, [f - centre for f in fab]
    var = np.var(np.concatenate([fa, fb]), ddof=1)
    out = []
    for f_i in fab:
        if var <= 0:
            out.append((np.nan, np.nan))
            continue
        s1 = np.mean(fb * (f_i - fa)) / var
        st = 0.5 * np.mean((fa - f_i) ** 2) / var
        out.append((float(s1), float(st)))
    return out


def run_sensitivity(sweep: Sweep, samples: int, executor, progress: Callable[[int, int], None] | None = None,
                    outcomes=OUTCOMES, bootstrap: int = 200) -> pd.DataFrame:
    if not sweep.uncertainties:
        raise ScenarioError(str(sweep.file), [("uncertainties", "sensitivity needs at least one uncertainty")])
    if samples < 2 or samples & (samples - 1):
        lower = 1 << max(samples.bit_length() - 1, 1)
        raise UserError(f"--samples {samples}: the number of samples must be a power of 2 for Sobol sampling "
                        f"(use {lower} or {2 * lower})")
    points = samples * (len(sweep.uncertainties) + 2)
    if points > MAX_POINTS or points * sweep.replications > MAX_RUNS:
        raise UserError(f"{sweep.file}: --samples {samples}: {samples:,} x ({len(sweep.uncertainties)} uncertainties "
                        f"+ 2) = {points:,} points x {sweep.replications:,} replications; at most {MAX_POINTS:,} "
                        f"points and {MAX_RUNS:,} runs: give fewer --samples")
    a, b, ab = saltelli_rows(sweep, samples)
    matrices = [a, b, *ab]
    # levers at the baseline, uncertainties applied to the base scenario's values (a baseline *point* already
    # carries its own uncertainty sample, so it must not be the starting point)
    levers = baseline_levers(sweep)
    base_dump = sweep.base.model_dump(mode="json")
    scenarios = [sc.with_overrides(sweep.base, {**levers, **uncertainty_overrides(sweep, row, base_dump)},
                                   str(sweep.file), computed=True)
                 for m in matrices for row in m]
    tasks = [((j, r), s, sweep.seed, r) for j, s in enumerate(scenarios) for r in range(sweep.replications)]
    per_run = np.zeros((len(outcomes), len(scenarios), sweep.replications))
    done = 0
    for (j, r), table in executor.map_unordered(yearly_task, tasks):
        totals = period_totals(table, outcomes)
        per_run[:, j, r] = [float(totals[o].iloc[0]) for o in outcomes]
        done += 1
        if progress:
            progress(done, len(tasks))
    # averaged after all runs are in, in replication order: the same numbers whatever order runs finish in
    values = {o: per_run[k].mean(axis=1) for k, o in enumerate(outcomes)}
    n = samples
    rng = np.random.default_rng(sweep.design_seed)
    boot = rng.integers(0, n, size=(bootstrap, n))
    rows = []
    for o in outcomes:
        v = values[o]
        fa, fb, fab = v[:n], v[n:2 * n], [v[(2 + i) * n:(3 + i) * n] for i in range(len(ab))]
        point = indices(fa, fb, fab)
        reps = np.array([indices(fa[k], fb[k], [f[k] for f in fab]) for k in boot])  # (boot, d, 2)
        for i, u in enumerate(sweep.uncertainties):
            s1, st = point[i]
            with warnings.catch_warnings():  # an outcome that never varies has no indices (NaN)
                warnings.simplefilter("ignore", RuntimeWarning)
                lo = np.nanpercentile(reps[:, i, :], 5, axis=0)
                hi = np.nanpercentile(reps[:, i, :], 95, axis=0)
            rows.append((o, u.key, s1, lo[0], hi[0], st, lo[1], hi[1]))
    return pd.DataFrame(rows, columns=["outcome", "uncertainty", "S1", "S1_low90", "S1_high90", "ST", "ST_low90",
                                       "ST_high90"])
