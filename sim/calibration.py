"""Calibration: fit behavioural parameters to observed figures by ABC-SMC, with uncertainty.

Approximate Bayesian computation with sequential Monte Carlo (Toni et al. 2009; Beaumont et al. 2009):

1. Draw a population of parameter sets (particles) from the uniform priors declared in the scenario's
   ``[calibration.parameters]``, simulate each, and measure its distance to the targets.
2. In each later generation, lower the tolerance to the median distance of the last population; propose
   new particles by perturbing old ones (a Gaussian kernel with twice the population's weighted covariance,
   in the unit cube of the priors), keep those within the tolerance, and weight them by prior / proposal.
3. The final weighted population is the posterior sample: its weighted median is the point estimate and its
   5th-95th weighted percentiles the 90 % interval.

The distance is the root mean square of each target's miss in units of its own uncertainty
(:func:`sim.targets.scale`), averaged over a few replications per particle. Every evaluation has its own seed
from ``SeedSequence(seed, spawn_key=(generation, proposal))``, and proposals are accepted in their order, so
the fit is the same with any number of workers. Each generation is saved as it ends; ``resume`` continues
from the last one saved.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from sim import __version__
from sim import scenario as sc
from sim import targets as tg
from sim.errors import ScenarioError, UserError
from sim.runner import code_hash, run_replication


@dataclass
class Problem:
    """What is fitted: the scenario (ending at the last target), the free parameters and the targets."""

    scenario: sc.Scenario
    keys: list[str]
    low: np.ndarray
    high: np.ndarray
    targets: list[tg.Target]
    replications: int

    def values(self, unit: np.ndarray) -> dict[str, float]:
        x = self.low + unit * (self.high - self.low)
        return {k: float(v) for k, v in zip(self.keys, x)}

    def scenario_for(self, unit: np.ndarray) -> sc.Scenario:
        return sc.with_overrides(self.scenario, self.values(unit), "<calibration>")


def make_problem(scenario: sc.Scenario, targets: list[tg.Target], replications: int, file: str) -> Problem:
    params = scenario.calibration.parameters
    if not params:
        raise ScenarioError(file, [("calibration.parameters", "no free parameters declared: add a table "
                                    "[calibration.parameters] of key = [low, high]")])
    if not targets:
        raise UserError("no targets to fit (check --until and the targets file)")
    keys = list(params)
    data = scenario.model_dump(mode="json")
    for k in keys:
        sc.get_value(data, k, file)  # the key (and its dated entry) exists
    ends_at = tg.last_month(targets)
    short = sc.with_overrides(scenario, {"period.end": max(ends_at, scenario.period.programme_start)}, file)
    return Problem(short, keys, np.array([params[k][0] for k in keys], float),
                   np.array([params[k][1] for k in keys], float), targets, replications)


def simulate(problem: Problem, unit: np.ndarray, seed: int) -> np.ndarray:
    """Mean of each target's quantity over the problem's replications (shares: mean over those defined)."""
    s = problem.scenario_for(unit)
    sims = np.array([tg.simulate_all(run_replication(s, seed, r).monthly, s, problem.targets)
                     for r in range(problem.replications)])
    with np.errstate(invalid="ignore"):
        return np.array([np.nanmean(col) if np.isfinite(col).any() else 0.0 for col in sims.T])


def distance(problem: Problem, sims: np.ndarray) -> float:
    misses = np.array([t.miss(v) for t, v in zip(problem.targets, sims)])
    return float(np.sqrt(np.mean(misses ** 2)))


def _evaluate(task):
    problem, index, unit, seed = task
    sims = simulate(problem, unit, seed)
    return index, sims, distance(problem, sims)


def _eval_seed(seed: int, generation: int, index: int) -> int:
    return int(np.random.SeedSequence(seed, spawn_key=(generation, index)).generate_state(1)[0])


@dataclass
class Population:
    generation: int
    unit: np.ndarray  # particles in the unit cube, (n, d)
    weights: np.ndarray
    distances: np.ndarray
    sims: np.ndarray
    epsilon: float
    evaluations: int


def _kernel_cov(pop: Population) -> np.ndarray:
    w = pop.weights / pop.weights.sum()
    mean = w @ pop.unit
    diff = pop.unit - mean
    cov = 2.0 * (diff * w[:, None]).T @ diff
    return cov + np.eye(cov.shape[0]) * 1e-6


def _log_kernel(x: np.ndarray, centres: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """log N(x | centre, cov) for every x (rows) and centre (columns)."""
    inv = np.linalg.inv(cov)
    _, logdet = np.linalg.slogdet(cov)
    d = x[:, None, :] - centres[None, :, :]
    q = np.einsum("ijk,kl,ijl->ij", d, inv, d)
    return -0.5 * (q + logdet + x.shape[1] * np.log(2 * np.pi))


def _weighted_quantile(x: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(x)
    cw = np.cumsum(w[order]) / w.sum()
    return float(np.interp(q, cw - w[order] / (2 * w.sum()), x[order]))


def _planned_tolerance(prev: Population) -> float:
    """The tolerance a generation aims at: the weighted median distance of the generation before."""
    return _weighted_quantile(prev.distances, prev.weights, 0.5)


def abc_smc(problem: Problem, particles: int, generations: int, seed: int, executor,
            checkpoint: Path | None = None, progress: Callable[[int, int], None] | None = None,
            max_evals_per_generation: int | None = None) -> list[Population]:
    """Run (or resume) ABC-SMC; returns every generation's population."""
    d = len(problem.keys)
    cap = max_evals_per_generation or 4 * particles
    # a saved fit with more generations than asked for is cut: its first generations are what this many would be
    history: list[Population] = (_load_checkpoint(checkpoint) if checkpoint else [])[:generations]
    total = generations * particles
    if progress:
        progress(len(history) * particles, total)
    for g in range(len(history), generations):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(10_000 + g,)))
        accepted_idx, proposals, results = [], [], {}
        if g == 0:
            proposals = list(rng.random((particles, d)))
            epsilon = float("inf")
        else:
            prev = history[-1]
            epsilon = _planned_tolerance(prev)
            cov = _kernel_cov(prev)
            chol = np.linalg.cholesky(cov)
        batch = particles
        while True:
            if g > 0:
                new = []
                while len(new) < batch:
                    i = rng.choice(len(prev.unit), p=prev.weights / prev.weights.sum())
                    x = prev.unit[i] + chol @ rng.standard_normal(d)
                    if np.all((x >= 0) & (x <= 1)):
                        new.append(x)
                start = len(proposals)
                proposals.extend(new)
                todo = range(start, len(proposals))
            else:
                todo = range(len(proposals))
            tasks = [(problem, i, proposals[i], _eval_seed(seed, g, i)) for i in todo]
            for index, sims, dist in executor.map_unordered(_evaluate, tasks):
                results[index] = (sims, dist)
                if progress:
                    progress(len(history) * particles + min(sum(1 for j in results if results[j][1] <= epsilon),
                                                            particles), total)
            accepted_idx = [i for i in range(len(proposals)) if results[i][1] <= epsilon]
            if len(accepted_idx) >= particles or len(proposals) >= cap:
                break
        if len(accepted_idx) < particles:  # tolerance was too tight for the budget: take the closest
            order = sorted(range(len(proposals)), key=lambda i: (results[i][1], i))[:particles]
            epsilon = results[order[-1]][1]
            accepted_idx = sorted(order)
        accepted_idx = accepted_idx[:particles]
        unit = np.array([proposals[i] for i in accepted_idx])
        dists = np.array([results[i][1] for i in accepted_idx])
        sims = np.array([results[i][0] for i in accepted_idx])
        if g == 0:
            weights = np.full(len(unit), 1.0 / len(unit))
        else:
            logk = _log_kernel(unit, prev.unit, cov)
            mix = np.log(prev.weights / prev.weights.sum())[None, :] + logk
            m = mix.max(axis=1, keepdims=True)
            weights = np.exp(-(m[:, 0] + np.log(np.exp(mix - m).sum(axis=1))))
            weights /= weights.sum()
        pop = Population(g, unit, weights, dists, sims, epsilon, len(proposals))
        history.append(pop)
        if checkpoint:
            _save_checkpoint(checkpoint, pop)
        if progress:
            progress((g + 1) * particles, total)
    return history


def run_key(problem: Problem, particles: int, seed: int) -> str:
    """Identity of a calibration (not its number of generations: a resume may add more), including the model's
    code, so that only generations simulated by this very model are resumed."""
    h = hashlib.sha256(json.dumps(problem.scenario.model_dump(mode="json"), sort_keys=True).encode())
    h.update(json.dumps([problem.keys, problem.low.tolist(), problem.high.tolist(),
                         [(t.quantity, t.date, t.value, t.lower, t.upper) for t in problem.targets],
                         problem.replications, particles, seed, __version__, code_hash()]).encode())
    return h.hexdigest()[:16]


def _save_checkpoint(folder: Path, pop: Population) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".gen_{pop.generation:02d}.tmp.npz"
    np.savez(tmp, unit=pop.unit, weights=pop.weights, distances=pop.distances, sims=pop.sims,
             epsilon=pop.epsilon, evaluations=pop.evaluations)
    tmp.replace(folder / f"gen_{pop.generation:02d}.npz")


def _load_checkpoint(folder: Path) -> list[Population]:
    out = []
    for g in range(1000):
        f = folder / f"gen_{g:02d}.npz"
        if not f.exists():
            break
        try:
            with np.load(f) as z:
                pop = Population(g, z["unit"], z["weights"], z["distances"], z["sims"], float(z["epsilon"]),
                                 int(z["evaluations"]))
            n = len(pop.weights)
            if pop.unit.ndim != 2 or n == 0 or any(len(a) != n for a in (pop.unit, pop.distances, pop.sims)):
                raise ValueError("its arrays do not fit together")
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            # cut short (a full disk, a copy that stopped) or written over; numpy's own words would mislead (it
            # offers to unpickle a file of garbage)
            raise UserError(f"{f}: a saved generation of this calibration is damaged and cannot be read; run the "
                            "same command with --restart to discard the saved generations and start afresh") from exc
        out.append(pop)
    return out


# ---------------------------------------------------------------------------------------------- results
def estimates(problem: Problem, pop: Population) -> dict[str, dict]:
    """Per parameter: weighted median and 90 % interval of the posterior."""
    values = problem.low + pop.unit * (problem.high - problem.low)
    out = {}
    for j, k in enumerate(problem.keys):
        x = values[:, j]
        out[k] = {"median": _weighted_quantile(x, pop.weights, 0.5), "p5": _weighted_quantile(x, pop.weights, 0.05),
                  "p95": _weighted_quantile(x, pop.weights, 0.95), "prior": [float(problem.low[j]), float(problem.high[j])]}
    return out


FIT_HEADER = "# Fitted by `lte calibrate`"  # the first line of every fit file: --out may replace only such a file


def is_fit_file(path: Path) -> bool:
    """Whether ``path`` is a fitted parameter file :func:`fit_toml` wrote (by its first line)."""
    with open(path, "rb") as fh:
        return fh.readline(len(FIT_HEADER) + 1).startswith(FIT_HEADER.encode())


def check_out(out: Path, inputs: dict[str, list[Path]]) -> None:
    """Refuse an --out whose writing would destroy something: an input of the calibration (the scenario, a file
    it extends, the targets), as the fit file or as one of the files written beside it, or an existing file that
    is not a fit written by lte calibrate. An earlier fit is replaced: that is how a fit is resumed or redone."""
    beside = [out, *(out.with_name(f"{out.stem}{suffix}") for suffix in (".targets.csv", ".owners.png", ".report.md"))]
    for what, files in inputs.items():
        for f in files:
            for b in beside:
                if b.exists() and f.exists() and b.resolve() == f.resolve():
                    written = "this" if b == out else f"{b.name}, written beside it,"
                    raise UserError(f"{out}: --out: {written} is the {what} {f}; choose another file for the fit")
    if out.is_dir() or (out.exists() and not out.is_file()):
        raise UserError(f"{out}: --out: not a plain file; name a new file or an earlier fit")
    if out.exists() and not is_fit_file(out):
        raise UserError(f"{out}: --out: the file exists and is not a fit written by lte calibrate (its first line "
                        f"is not \"{FIT_HEADER}...\"); choose another file, or move this one away first")


def fit_toml(problem: Problem, pop: Population, meta: dict) -> str:
    """The fitted parameter file: [fit] (how it was made), [estimate], [interval90], [posterior]."""
    est = estimates(problem, pop)
    values = problem.low + pop.unit * (problem.high - problem.low)

    def num(x: float) -> str:
        return repr(round(float(x), 6))

    lines = [f"{FIT_HEADER}; do not edit by hand. [estimate] is the posterior median and is applied",
             "# to the scenario that names this file; [posterior] is the weighted sample `lte run` draws from.", "",
             "[fit]"]
    for k, v in meta.items():
        lines.append(f"{k} = {json.dumps(v)}")
    lines += ["", "[estimate]"] + [f'"{k}" = {num(e["median"])}' for k, e in est.items()]
    lines += ["", "[interval90]"] + [f'"{k}" = [{num(e["p5"])}, {num(e["p95"])}]' for k, e in est.items()]
    lines += ["", "[prior]"] + [f'"{k}" = [{num(e["prior"][0])}, {num(e["prior"][1])}]' for k, e in est.items()]
    lines += ["", "[posterior]", "weights = [" + ", ".join(num(w) for w in pop.weights) + "]"]
    for j, k in enumerate(problem.keys):
        lines.append(f'"{k}" = [' + ", ".join(num(x) for x in values[:, j]) + "]")
    return "\n".join(lines) + "\n"


def predictive(scenario: sc.Scenario, draws: list[dict[str, float]], seed: int, targets: list[tg.Target],
               executor, progress=None) -> tuple[np.ndarray, list]:
    """Simulated target quantities (draws x targets) and monthly tables, one replication per posterior draw."""
    tasks = [(i, sc.with_overrides(scenario, d, "<fit>"), seed) for i, d in enumerate(draws)]
    out: dict[int, tuple] = {}
    for i, sims, monthly in executor.map_unordered(_predict_task, [(t, targets) for t in tasks]):
        out[i] = (sims, monthly)
        if progress:
            progress(len(out), len(tasks))
    sims = np.array([out[i][0] for i in range(len(tasks))])
    return sims, [out[i][1] for i in range(len(tasks))]


def _predict_task(arg):
    (i, s, seed), targets = arg
    m = run_replication(s, seed, i).monthly
    return i, tg.simulate_all(m, s, targets), m[["month", "new_owners_municipal", "new_owners_private"]]


def elapsed(t0: float) -> float:
    return round(time.monotonic() - t0, 1)


# ---------------------------------------------------------------------------------------------- the whole job
def calibrate(scenario_path: str, targets_path: str, out_path: str, *, until: str | None = None, seed: int = 1,
              particles: int = 100, generations: int = 5, replications: int = 2, draws: int = 100, executor=None,
              restart: bool = False, progress_factory=None, command: list[str] | None = None) -> dict:
    """Fit, then write the fitted parameter file and its report beside it. Returns a summary."""
    import shutil

    from sim import outputs
    from sim.executors import InProcess

    executor = executor or InProcess()
    t0 = time.monotonic()
    loaded = sc.load(scenario_path, apply_fit=False)
    scenario = loaded.scenario
    if until is not None and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", until):
        # a year alone is refused rather than read as its January
        raise UserError(f"--until {until}: must be a month written YYYY-MM, e.g. 2013-09 "
                        "(2013-12 for the whole of 2013)")
    all_targets = tg.load_targets(targets_path, scenario)
    fit_targets = tg.load_targets(targets_path, scenario, until) if until else all_targets
    if not fit_targets:
        raise UserError(f"{targets_path}: no targets to fit" + (f" up to --until {until}" if until else
                                                                 " (the file lists no figures)"))
    problem = make_problem(scenario, fit_targets, replications, scenario_path)
    out = Path(out_path)
    check_out(out, {"scenario file": [Path(scenario_path), *loaded.files], "targets file": [Path(targets_path)]})
    key = run_key(problem, particles, seed)
    with outputs.locked_dir(out.parent if str(out.parent) else Path("."), allow_existing=True):
        checkpoint = out.parent / f".{out.stem}.abc-{key}"
        if restart and checkpoint.exists():
            shutil.rmtree(checkpoint)
        resumed = len(_load_checkpoint(checkpoint)) if checkpoint.exists() else 0
        history = abc_smc(problem, particles, generations, seed, executor, checkpoint,
                          progress_factory("calibrate") if progress_factory else None)
        pop = history[-1]
        fit_seconds = elapsed(t0)
        import os

        here = out.parent.resolve()  # paths relative to the fit file, so they read the same from any folder
        meta = {"scenario": os.path.relpath(Path(scenario_path).resolve(), here),
                "targets": os.path.relpath(Path(targets_path).resolve(), here), "until": until or "",
                "seed": seed, "particles": particles, "generations": generations, "replications": replications,
                "evaluations": int(sum(p.evaluations for p in history)),
                "tolerance": [round(p.epsilon, 4) if np.isfinite(p.epsilon) else None for p in history],
                "package_version": __version__}
        meta["tolerance"] = [x if x is not None else "inf" for x in meta["tolerance"]]
        text = fit_toml(problem, pop, meta)  # the same command gives the same file: no times in it
        meta["wall_seconds"] = fit_seconds
        # posterior predictive for every target (also those after --until: the hold-out check)
        post = {"estimate": {k: e["median"] for k, e in estimates(problem, pop).items()},
                "posterior": {"weights": pop.weights.tolist(),
                              **{k: (problem.low[j] + pop.unit[:, j] * (problem.high[j] - problem.low[j])).tolist()
                                 for j, k in enumerate(problem.keys)}}}
        fake = sc.LoadedScenario(scenario, [], post)
        horizon = max(tg.last_month(all_targets), scenario.period.programme_start)
        full = sc.with_overrides(scenario, {"period.end": horizon}, scenario_path)
        sims, monthly = predictive(full, fake.posterior_draws(draws, seed), seed + 1, all_targets, executor,
                                   progress_factory("posterior check") if progress_factory else None)
        table = target_table(all_targets, fit_targets, sims)
        with outputs.AtomicWriter(out.parent if str(out.parent) else Path(".")) as w:
            w.bytes(out.name, text.encode())
            w.table(f"{out.stem}.targets.csv", table)
            w.bytes(f"{out.stem}.owners.png", owners_plot(monthly, all_targets, fit_targets, scenario))
            w.bytes(f"{out.stem}.report.md", report_md(problem, history, table, meta, command or []).encode())
    return {"out": str(out), "seconds": elapsed(t0), "fit_seconds": fit_seconds, "resumed_generations": resumed,
            "evaluations": meta["evaluations"], "table": table, "estimates": estimates(problem, pop)}


def target_table(all_targets, fit_targets, sims: np.ndarray):
    import pandas as pd

    used = {(t.quantity, t.month) for t in fit_targets}
    rows = []
    for j, t in enumerate(all_targets):
        col = sims[:, j]
        col = col[np.isfinite(col)]
        med, lo, hi = (np.percentile(col, [50, 5, 95]) if len(col) else (np.nan,) * 3)
        obs = t.value
        inside = (lo <= obs <= hi) if obs is not None else \
            ((t.lower is None or hi >= t.lower) and (t.upper is None or lo <= t.upper))
        rows.append({"date": t.date, "quantity": t.quantity, "observed": obs if obs is not None else "",
                     "lower": t.lower if t.lower is not None else "", "upper": t.upper if t.upper is not None else "",
                     "simulated_median": med, "simulated_p5": lo, "simulated_p95": hi,
                     "within_band": bool(inside), "used_in_fit": (t.quantity, t.month) in used})
    return pd.DataFrame(rows)


def owners_plot(monthly: list, all_targets, fit_targets, scenario) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    p0 = scenario.period.programme_start
    series = []
    for m in monthly:
        m = m[m["month"] >= p0]
        series.append((m["new_owners_municipal"] + m["new_owners_private"]).cumsum().to_numpy())
    arr = np.array(series)
    months = pd.PeriodIndex(monthly[0]["month"][monthly[0]["month"] >= p0], freq="M").to_timestamp()
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.fill_between(months, np.percentile(arr, 5, axis=0), np.percentile(arr, 95, axis=0), alpha=0.25,
                    label="simulated, 90 % band")
    ax.plot(months, np.median(arr, axis=0), label="simulated, median")
    used = {(t.quantity, t.month) for t in fit_targets}
    for t in all_targets:
        if t.quantity == "cumulative_owners" and t.value is not None:
            fitted = (t.quantity, t.month) in used
            ax.plot(pd.Timestamp(t.date), t.value, "o" if fitted else "s", color="black" if fitted else "tab:red",
                    label="observed (fitted)" if fitted else "observed (held out)")
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles))
    ax.legend(uniq.values(), uniq.keys())
    ax.set_title("Leie til eie: cumulative new owners since June 2011", loc="left", fontsize=11)
    ax.set_ylabel("households")
    ax.grid(alpha=0.3)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def generations_table(history: list[Population]) -> list[dict]:
    """Per generation: the tolerance planned (the median distance of the generation before), the tolerance used,
    the proposals simulated, whether the budget of proposals ran out first (then the closest particles were kept
    and the tolerance used is their largest distance), and the effective sample size of the weights."""
    rows = []
    for g, pop in enumerate(history):
        planned = _planned_tolerance(history[g - 1]) if g else math.inf
        rows.append({"generation": g, "planned": planned, "used": pop.epsilon, "proposals": pop.evaluations,
                     "closest_kept": bool(g and pop.epsilon > planned),
                     "ess": float(pop.weights.sum() ** 2 / (pop.weights ** 2).sum())})
    return rows


def report_md(problem: Problem, history: list[Population], table, meta: dict, command: list[str]) -> str:
    est = estimates(problem, history[-1])
    lines = ["# Calibration report", "", f"Command: `{' '.join(command)}`" if command else "", "",
             f"ABC-SMC: {meta['particles']} particles, {len(history)} generations, {meta['evaluations']} "
             f"model evaluations of {meta['replications']} replications each, fitted in {meta['wall_seconds']:.1f} s "
             "of wall time (the posterior check below not included).", "",
             "## Generations", "", "The tolerance planned is the median distance of the generation before. A "
             "generation whose proposals ran out (at 4 × particles) before enough came within it keeps the closest "
             "particles instead, and its tolerance is the largest distance kept: it did not tighten the fit.", "",
             "| generation | tolerance planned | tolerance used | proposals | closest kept | effective sample size |",
             "|---|---|---|---|---|---|"]
    for r in generations_table(history):
        lines.append(f"| {r['generation']} | {r['planned']:.4g} | {r['used']:.4g} | {r['proposals']} | "
                     f"{'yes' if r['closest_kept'] else ''} | {r['ess']:.0f} |")
    lines += ["", "## Parameters", "", "| parameter | prior | estimate (median) | 90 % interval |", "|---|---|---|---|"]
    for k, e in est.items():
        lines.append(f"| `{k}` | [{e['prior'][0]:g}, {e['prior'][1]:g}] | {e['median']:.4g} | "
                     f"[{e['p5']:.4g}, {e['p95']:.4g}] |")
    lines += ["", "## Targets", "", "Simulated: posterior predictive, one replication for each of the posterior "
              "draws. `within band`: the observed figure (or its bound) lies inside the simulated 5-95 % band.", "",
              "| date | quantity | observed | simulated median | 90 % band | within band | used in fit |",
              "|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        obs = r.observed if r.observed != "" else (f"> {r.lower:g}" if r.lower != "" else f"< {r.upper:g}")
        fmt = (lambda x: f"{x:,.3g}" if abs(x) < 10 else f"{x:,.1f}" if abs(x) < 1000 and not float(x).is_integer()
               else f"{x:,.0f}")  # counts keep a half (19.5); money is whole kroner
        lines.append(f"| {r.date} | {r.quantity} | {obs if isinstance(obs, str) else fmt(obs)} | "
                     f"{fmt(r.simulated_median)} | {fmt(r.simulated_p5)} - {fmt(r.simulated_p95)} | "
                     f"{'yes' if r.within_band else 'NO'} | {'yes' if r.used_in_fit else 'held out'} |")
    return "\n".join(lines) + "\n"
