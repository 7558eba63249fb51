"""Policy sweeps: a sweep file, its design of points, running every (point, replication), resume, outputs.

A sweep file (TOML) names a base scenario, the **levers** (policy keys and the values to try: every
combination is a point), optional **uncertainties** (exogenous keys and their ranges, sampled by a design:
grid, Latin hypercube or Sobol), the replications per point and the seed. Every point runs replications
0..n-1 of the same seed, so all points meet the same households and the same luck (common random numbers)
and differences between policies are paired.

Each finished run is written at once to ``DIR/runs/<run id>.csv`` (the run id is a hash of the resolved
scenario, the seed, the replication and the package version), so a sweep that is interrupted and started
again skips what is done and ends with the same files as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from scipy.stats import qmc

from sim import __version__, outputs
from sim import scenario as sc
from sim.compare import OUTCOMES, paired_difference, period_totals
from sim.errors import OutputError, ScenarioError
from sim.runner import code_hash, run_replication, yearly
from sim.timeline import parse_dated

TOP_KEYS = ("name", "description", "base", "replications", "seed", "overrides", "levers", "uncertainties", "design")
DESIGN_KEYS = ("kind", "samples", "seed", "baseline")
DESIGNS = ("grid", "lhs", "sobol")
TRANSFORMS = ("range", "scale", "shift")
RANGE_KEYS = {"min", "max", "steps"}
NAME = re.compile(sc.NAME_PATTERN)
# upper bounds that keep a mistyped number from exhausting memory (a sweep's runs are held until it ends)
MAX_SAMPLES = 100_000
MAX_STEPS = 10_000
MAX_POINTS = 100_000
MAX_RUNS = 1_000_000


@dataclass
class Lever:
    key: str
    labels: list[str]
    values: list[Any]
    from_range: bool = False  # values computed between a written min and max (steps)


@dataclass
class Uncertainty:
    """``range``: the key takes values in [low, high]; ``scale``: every value of a (dated) path is multiplied;
    ``shift``: every value is moved by an amount (e.g. percentage points on a rate)."""

    key: str
    how: str
    low: float
    high: float
    steps: int = 3

    def apply(self, base_value: Any, x: float) -> Any:
        if self.how == "range":
            return x
        steps = parse_dated(base_value)
        op = (lambda v: v * x) if self.how == "scale" else (lambda v: v + x)
        if isinstance(base_value, dict):
            return {str(when) if when.month != 1 else str(when.year): op(v) for when, v in steps}
        return op(float(base_value))


@dataclass
class Point:
    id: int
    levers: dict[str, str]  # key -> label
    uncertainties: dict[str, float]
    sample: int
    scenario: sc.Scenario
    baseline: bool = False


@dataclass
class Sweep:
    file: Path
    name: str
    description: str
    base_file: Path
    base: sc.Scenario
    replications: int
    seed: int
    levers: list[Lever]
    uncertainties: list[Uncertainty]
    design: str
    samples: int
    design_seed: int
    baseline: dict[str, str]
    points: list[Point] = field(default_factory=list)
    base_files: list[Path] = field(default_factory=list)  # the base scenario and the files it extends or names
    base_files_sha256: str = ""  # (as lte run's manifest records them)

    def spec_hash(self) -> str:
        """Identity of the sweep's work: every point's resolved scenario, seeds, the package version and its code."""
        h = hashlib.sha256()
        for p in self.points:
            h.update(json.dumps(p.scenario.model_dump(mode="json"), sort_keys=True).encode())
        h.update(f"{self.seed}/{self.replications}/{__version__}/{code_hash()}".encode())
        return h.hexdigest()


# ---------------------------------------------------------------------------------------------- loading
def load(path: str | Path) -> Sweep:
    """Read and validate a sweep file and build its points; a ScenarioError names file, key and rule (every
    problem the file has, one line each, where one does not hide the others)."""
    path = Path(path)
    raw = sc.read_toml(path)
    f = str(path)
    if "base" not in raw and ("extends" in raw or any(k in sc.Scenario.model_fields and k not in TOP_KEYS for k in raw)):
        raise ScenarioError(f, [("", "is a scenario file (it names no base scenario), not a sweep file; "
                                     "run it with lte run, or name it as the base of a sweep file")])
    problems = [(key, f"unknown key{sc._suggest(key, TOP_KEYS)}") for key in raw if key not in TOP_KEYS]
    base_loaded, base, base_ok = _base(raw, path, problems)
    name, reps, seed = _settings(raw, path, base, problems)
    not_tables = [key for key in ("levers", "uncertainties", "design") if not isinstance(raw.get(key, {}), dict)]
    problems += [(key, f"must be a table ([{key}] with key = value lines)") for key in not_tables]
    if not_tables:
        raise ScenarioError(f, problems)  # (the checks below read them as tables)

    for table in ("overrides", "levers", "uncertainties"):
        _given_once(raw.get(table), table, problems)
    _given_once(raw.get("design", {}).get("baseline"), "design.baseline", problems)
    levers = [_lever(f, k, v, problems) for k, v in _flatten_keys(raw.get("levers", {})).items()]
    uncertainties = [_uncertainty(f, k, v, base, problems)
                     for k, v in _flatten_keys(raw.get("uncertainties", {})).items()]
    design = raw.get("design", {})
    kind, samples, design_seed = _design_settings(design, seed, problems)
    chosen = _baseline(design.get("baseline", {}), [lv for lv in levers if lv is not None], problems)
    if base_ok:  # every well-formed lever and uncertainty, whatever else is wrong in the file
        _check_values(f, base, [lv for lv in levers if lv], [u for u in uncertainties if u], problems)
    if problems:
        raise ScenarioError(f, problems)
    n_samples = (math.prod(u.steps for u in uncertainties) if kind == "grid" else samples) if uncertainties else 1
    n_points = n_samples * math.prod(len(lv.values) for lv in levers)
    if n_points > MAX_POINTS or n_points * reps > MAX_RUNS:
        runs = f"{n_points:,} points x {reps:,} replication{'s' * (reps != 1)} = {n_points * reps:,} runs"
        raise ScenarioError(f, [("", f"{runs}; at most {MAX_POINTS:,} points and {MAX_RUNS:,} runs: give fewer "
                                     "lever values, samples or steps, or fewer replications")])
    for lv in levers:
        chosen.setdefault(lv.key, lv.labels[0])
    sweep = Sweep(path, name, raw.get("description", ""), base_loaded.files[0], base, reps, seed,
                  levers, uncertainties, kind, samples, design_seed, chosen)
    sweep.points = _points(sweep)
    sweep.base_files, sweep.base_files_sha256 = base_loaded.files, base_loaded.files_hash()
    return sweep


def _base(raw: dict, path: Path, problems: list) -> tuple[sc.LoadedScenario, sc.Scenario, bool]:
    """The base scenario as loaded (its files, the base file first), the base with the sweep's overrides, and False
    if the overrides make it invalid (reported among the file's problems: lever values are then not checked on it).
    Without a readable base nothing else can be checked, so that is raised at once."""
    f = str(path)
    if "base" not in raw or not isinstance(raw.get("base"), str):
        problems.append(("base", "required: the base scenario file, in quotes, relative to the sweep file"))
        raise ScenarioError(f, problems)
    base_file = path.parent / raw["base"]
    problem = sc.file_problem(base_file)
    if problem:
        raise ScenarioError(f, problems + [("base", f"base scenario {base_file} {problem}")])
    loaded = sc.load(base_file)
    base = loaded.scenario
    overrides = raw.get("overrides", {})
    if not isinstance(overrides, dict):
        raise ScenarioError(f, [("overrides", "must be a table of scenario key = value")])
    if not overrides:
        return loaded, base, True
    try:
        return loaded, sc.with_overrides(base, _flatten_keys(overrides), f), True
    except ScenarioError as e:  # reported with the rest of the file's problems, under the key as written
        if e.file != f:
            raise
        problems.extend(_override_problem(key, rule, overrides) for key, rule in e.problems)
        return loaded, base, False


def _settings(raw: dict, path: Path, base: sc.Scenario, problems: list) -> tuple[str, int, int]:
    """Name, replications and seed (the last two default to the base scenario's)."""
    reps = raw.get("replications", base.replications)
    seed = raw.get("seed", base.seed)
    if not _whole(reps, 1, sc.MAX_REPLICATIONS):
        problems.append(("replications", f"must be a whole number from 1 to {sc.MAX_REPLICATIONS:,} (got {reps!r})"))
    if not _whole(seed, 0, math.inf):
        problems.append(("seed", f"must be a whole number of at least 0 (got {seed!r})"))
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not NAME.match(name):
        given = "" if "name" in raw else ", the file's name, as name is not set"
        problems.append(("name", f"{sc.NAME_RULE} (got {name!r}{given})"))
    if not isinstance(raw.get("description", ""), str):
        problems.append(("description", f"must be a text in quotes (got {raw['description']!r})"))
    return name, reps, seed


def _design_settings(design: dict, seed: int, problems: list) -> tuple[str, int, int]:
    """The design's kind, samples and seed (the sweep's seed unless it has its own)."""
    for key in design:
        if key not in DESIGN_KEYS:
            problems.append((f"design.{key}", f"unknown key{sc._suggest(key, DESIGN_KEYS)}"))
    kind = design.get("kind", "grid")
    if kind not in DESIGNS:
        problems.append(("design.kind", f"must be one of {', '.join(DESIGNS)} (got {kind!r}){sc._suggest(str(kind), DESIGNS)}"))
    samples = design.get("samples", 8)
    if not _whole(samples, 1, MAX_SAMPLES):
        problems.append(("design.samples", f"must be a whole number from 1 to {MAX_SAMPLES:,} (got {samples!r})"))
    elif kind == "sobol" and samples & (samples - 1):
        lower = 1 << (samples.bit_length() - 1)
        problems.append(("design.samples", f"a Sobol design needs a power of 2 (got {samples}; use {lower} or {2 * lower})"))
    design_seed = design.get("seed", seed)
    if not _whole(design_seed, 0, math.inf):
        problems.append(("design.seed", f"must be a whole number of at least 0 (got {design_seed!r})"))
    return kind, samples, design_seed


def _baseline(baseline: Any, levers: list[Lever], problems: list) -> dict[str, str]:
    """The baseline point's value (its label) for each lever the design names."""
    if not isinstance(baseline, dict):
        problems.append(("design.baseline", "must be a table of lever key = value or name"))
        return {}
    lever_keys = {lv.key: lv for lv in levers}
    chosen: dict[str, str] = {}
    for key, value in _flatten_keys(baseline).items():
        if key not in lever_keys:
            problems.append((f"design.baseline.{key}", f"not a lever of this sweep{sc._suggest(key, lever_keys)}"))
            continue
        label = _label(value)
        if label not in lever_keys[key].labels:
            problems.append((f"design.baseline.{key}", f"{value!r} is not one of the lever's values {lever_keys[key].labels}"))
        chosen[key] = label
    return chosen


def _a(word: str) -> str:
    """The word with its article: "a policy", "an exogenous"."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def _whole(value: Any, lo: int, hi: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and lo <= value <= hi


def _override_problem(key: str, rule: str, overrides: dict) -> tuple[str, str]:
    """A problem of the overridden base scenario, under the sweep-file key it belongs to: a rule of the whole
    scenario (no key) that starts with an overridden key is put under that key."""
    if key:
        return f"overrides.{key}", rule
    path, sep, rest = rule.partition(": ")
    if sep and path in {k.partition("@")[0] for k in _flatten_keys(overrides)}:
        return f"overrides.{path}", rest
    return "overrides", rule


def _flatten_keys(table: dict, prefix: str = "", twice: list | None = None, where: str = "",
                  _spelt: dict | None = None, _section: str = "") -> dict[str, Any]:
    """Accept both ``"frame.yearly_nok" = 1`` and ``[frame] yearly_nok = 1`` forms: a table under a section's
    name (``frame``) is read as its keys; a key's own table (a dated path, named values) is kept whole. A key
    given in both forms is kept once (the first) and, if ``twice`` is a list, added to it with its spellings
    (``where``: the sweep file's table, for them)."""
    out: dict[str, Any] = {}
    spelt = {} if _spelt is None else _spelt
    leaves = sc.leaf_paths(sc.Scenario)
    for key, value in table.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and any(p.startswith(path + ".") for p in leaves):
            for sub, v in _flatten_keys(value, path + ".", twice, where, spelt, path).items():
                out.setdefault(sub, v)
            continue
        spelling = f"{key} in [{where}.{_section}]" if _section else f'"{key}" in [{where}]'
        if path in spelt:
            if twice is not None:
                twice.append((path, f"given twice, as {spelt[path]} and as {spelling}: give it once"))
            continue
        spelt[path] = spelling
        out[path] = value
    return out


def _given_once(table: Any, where: str, problems: list) -> None:
    """A key of a sweep table (levers, uncertainties, overrides) written in both forms is a mistake: reported."""
    if isinstance(table, dict):
        twice: list = []
        _flatten_keys(table, twice=twice, where=where)
        problems.extend((f"{where}.{key}", rule) for key, rule in twice)


def _label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _lever(f: str, key: str, spec: Any, problems: list) -> Lever | None:
    kind = sc.field_kind(key)
    if kind is None:
        problems.append((f"levers.{key}", f"not a scenario key{sc._suggest(key, sc.leaf_paths(sc.Scenario))}"))
        return None
    if kind != "policy":
        problems.append((f"levers.{key}", f"is {_a(kind)} key; levers must be policy keys (uncertainties take exogenous keys)"))
        return None
    if isinstance(spec, dict) and ({"min", "max"} & set(spec)):  # a range {min, max, steps}
        for extra in set(spec) - RANGE_KEYS:
            problems.append((f"levers.{key}.{extra}", f"unknown key in a range{sc._suggest(extra, RANGE_KEYS)}"))
        lo, hi, steps = spec.get("min"), spec.get("max"), spec.get("steps", 5)
        if not all(sc.is_number(v) for v in (lo, hi)) or not lo < hi:
            problems.append((f"levers.{key}", f"a range needs finite numbers min < max (got min = {lo!r}, "
                                              f"max = {hi!r})"))
            return None
        if not _whole(steps, 2, MAX_STEPS):
            problems.append((f"levers.{key}.steps", f"must be a whole number from 2 to {MAX_STEPS:,} (got {steps!r})"))
            return None
        values = np.linspace(lo, hi, steps).tolist()
        values = [int(v) if isinstance(lo, int) and isinstance(hi, int) and float(v).is_integer() else v for v in values]
        lever = Lever(key, [_label(v) for v in values], values, from_range=True)
    elif isinstance(spec, dict) and spec:  # named alternatives: label = value
        lever = Lever(key, list(spec), list(spec.values()))
    elif isinstance(spec, list) and spec:
        lever = Lever(key, [_label(v) for v in spec], list(spec))
    else:
        problems.append((f"levers.{key}", "give a list of values, a range {min, max, steps} or a table of named values"))
        return None
    dupes = sorted({lab for lab in lever.labels if lever.labels.count(lab) > 1})
    if dupes:  # reported; each value is still checked once, so that a bad one is reported with it
        problems.append((f"levers.{key}", f"the same value is listed twice: {', '.join(dupes)}"))
        first = [i for i, label in enumerate(lever.labels) if lever.labels.index(label) == i]
        return Lever(key, [lever.labels[i] for i in first], [lever.values[i] for i in first])
    return lever


def _check_values(f: str, base: sc.Scenario, levers: list[Lever], uncertainties: list["Uncertainty"],
                  problems: list) -> None:
    """Each lever value and each uncertainty bound, alone on the base scenario, must give a valid scenario;
    a bad one is reported under its own sweep-file key (``levers.KEY`` or ``uncertainties.KEY``)."""
    dump = base.model_dump(mode="json")
    # (values as written are held to the unit checks: a list's values, a range's ends; the values a range, a shift
    # or a scale computes are not: see sc.COMPUTED)
    trials = [(f"levers.{lv.key}", f"value {label!r}", {lv.key: value}, lv.from_range and 0 < i < len(lv.values) - 1)
              for lv in levers for i, (label, value) in enumerate(zip(lv.labels, lv.values))]
    trials += [(f"uncertainties.{u.key}", f"{u.how} {x:g}", {u.key: u.apply(sc.get_value(dump, u.key), x)},
                u.how != "range") for u in uncertainties for x in (u.low, u.high)]
    for where, what, overrides, computed in trials:
        try:
            sc.with_overrides(base, overrides, f, computed)
        except ScenarioError as exc:
            problems.extend((where, f"{what}: {k}: {rule}" if k and k != where.split(".", 1)[1] else f"{what}: {rule}")
                            for k, rule in exc.problems)



def _uncertainty(f: str, key: str, spec: Any, base: sc.Scenario, problems: list) -> Uncertainty | None:
    kind = sc.field_kind(key)
    if kind is None:
        problems.append((f"uncertainties.{key}", f"not a scenario key{sc._suggest(key, sc.leaf_paths(sc.Scenario))}"))
        return None
    if kind != "exogenous":
        problems.append((f"uncertainties.{key}", f"is {_a(kind)} key; uncertainties must be exogenous keys"))
        return None
    if not isinstance(spec, dict) or len([k for k in spec if k in TRANSFORMS]) != 1 or \
            set(spec) - set(TRANSFORMS) - {"steps"}:
        problems.append((f"uncertainties.{key}", "give exactly one of range = [low, high], scale = [low, high] "
                                                  "or shift = [low, high] (and optionally steps for a grid)"))
        return None
    how = next(k for k in spec if k in TRANSFORMS)
    bounds = spec[how]
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(sc.is_number(b) for b in bounds)
            and bounds[0] < bounds[1]):
        problems.append((f"uncertainties.{key}.{how}", f"must be [low, high], finite numbers with low < high "
                                                       f"(got {bounds!r})"))
        return None
    steps = spec.get("steps", 3)
    if not _whole(steps, 2, MAX_STEPS):
        problems.append((f"uncertainties.{key}.steps", f"must be a whole number from 2 to {MAX_STEPS:,} "
                                                       f"(got {steps!r})"))
        return None
    return Uncertainty(key, how, float(bounds[0]), float(bounds[1]), steps)


def _design(sweep: Sweep) -> np.ndarray:
    """Uncertainty samples, one row per sample, columns in [low, high] of each uncertainty."""
    us = sweep.uncertainties
    if not us:
        return np.zeros((1, 0))
    if sweep.design == "grid":
        axes = [np.linspace(u.low, u.high, max(u.steps, 2)) for u in us]
        return np.array(list(itertools.product(*axes)))
    d = len(us)
    if sweep.design == "lhs":
        unit = qmc.LatinHypercube(d=d, seed=np.random.default_rng(sweep.design_seed)).random(sweep.samples)
    else:
        unit = qmc.Sobol(d=d, scramble=True, seed=np.random.default_rng(sweep.design_seed)).random(sweep.samples)
    return qmc.scale(unit, [u.low for u in us], [u.high for u in us])


def uncertainty_overrides(sweep: Sweep, row, base_dump: dict | None = None) -> dict[str, Any]:
    """Scenario overrides that put each uncertainty at its sampled value in ``row``, applied to the base
    scenario's own values (never to a point's, which already carry a sample)."""
    dump = base_dump if base_dump is not None else sweep.base.model_dump(mode="json")
    return {u.key: u.apply(sc.get_value(dump, u.key), float(x)) for u, x in zip(sweep.uncertainties, row)}


def baseline_levers(sweep: Sweep) -> dict[str, Any]:
    """The baseline point's lever values, as scenario overrides."""
    return {lv.key: lv.values[lv.labels.index(sweep.baseline[lv.key])] for lv in sweep.levers}


def _points(sweep: Sweep) -> list[Point]:
    samples = _design(sweep)
    combos = list(itertools.product(*[list(zip(lv.labels, lv.values)) for lv in sweep.levers])) or [()]
    points = []
    base_dump = sweep.base.model_dump(mode="json")
    for s_i, row in enumerate(samples):
        for combo in combos:
            overrides = {lv.key: value for lv, (_, value) in zip(sweep.levers, combo)}
            overrides.update(uncertainty_overrides(sweep, row, base_dump))
            labels = {lv.key: label for lv, (label, _) in zip(sweep.levers, combo)}
            try:
                # (every value as written was checked above, alone: see _check_values)
                scenario = sc.with_overrides(sweep.base, overrides, str(sweep.file), computed=True)
            except ScenarioError as exc:  # each value was valid alone: this combination is not
                where = ", ".join([f"{k} = {v}" for k, v in labels.items()] +
                                  [f"{u.key} {u.how} {x:g}" for u, x in zip(sweep.uncertainties, row)])
                raise ScenarioError(str(sweep.file), [(k, f"{rule} (at the point {where})")
                                                      for k, rule in exc.problems]) from None
            points.append(Point(len(points), labels, {u.key: float(x) for u, x in zip(sweep.uncertainties, row)},
                                s_i, scenario, baseline=labels == sweep.baseline))
    return points


# ---------------------------------------------------------------------------------------------- running
def run_id(scenario: sc.Scenario, seed: int, replication: int) -> str:
    h = hashlib.sha256(json.dumps(scenario.model_dump(mode="json"), sort_keys=True).encode())
    h.update(f"/{seed}/{replication}/{__version__}/{code_hash()}".encode())
    return h.hexdigest()[:24]


def run_task(task: tuple) -> tuple[str, str, str, pd.DataFrame, pd.DataFrame]:
    """One (point, replication): run it and return its yearly and loans tables as CSV text (for its files) and,
    read back from that text, its yearly table and its budget (see :func:`_read_back`), so that the process
    collecting the runs has little to do but write them.

    A module-level function of plain data, so any executor (a process pool, Dask) can run it.
    """
    key, scenario, seed, replication = task
    rep = run_replication(scenario, seed, replication)
    yearly_csv, loans_csv = _csv_text(yearly(rep.monthly)), _csv_text(rep.loans)
    return (key, yearly_csv, loans_csv, *_read_back(scenario, yearly_csv, loans_csv))


def yearly_task(task: tuple) -> tuple[Any, pd.DataFrame]:
    """One run for a sensitivity analysis: its yearly table, rounded as in a sweep's files (read back from the
    same text, so the figures are the sweep's)."""
    key, scenario, seed, replication = task
    rep = run_replication(scenario, seed, replication)
    return key, pd.read_csv(io.StringIO(_csv_text(yearly(rep.monthly))))


def _read_back(scenario: sc.Scenario, yearly_csv: str, loans_csv: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A run's yearly table and its budget by year, as the sweep's tables use them: computed from the text of
    the run's files, so a run read back from disk (a resumed sweep) gives the same tables to the last bit."""
    from sim.budget import budget_by_replication

    table = pd.read_csv(io.StringIO(yearly_csv))
    return table, budget_by_replication(table.copy(), pd.read_csv(io.StringIO(loans_csv)), scenario)


def _csv_text(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    outputs.tidy_numbers(df).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


@dataclass
class SweepResult:
    folder: Path
    points: pd.DataFrame
    yearly: pd.DataFrame
    comparison: pd.DataFrame
    runs_total: int
    runs_done_before: int


def run_sweep(sweep: Sweep, folder: str | Path, executor, overwrite: bool = False,
              progress: Callable[[int, int], None] | None = None, dialect: str = "plain",
              command: list[str] | None = None) -> SweepResult:
    """Run every (point, replication) not yet on disk, then write points, yearly, comparison and manifest."""
    folder = Path(folder)
    with outputs.locked_dir(folder, allow_existing=True) as folder:
        identity = {"sweep_file": str(sweep.file), "spec_sha256": sweep.spec_hash(), "package_version": __version__}
        marker = folder / "sweep.json"
        if marker.exists():
            try:
                previous = json.loads(marker.read_text())
            except (OSError, ValueError):
                previous = None  # damaged: not this sweep's
            if not isinstance(previous, dict) or previous.get("spec_sha256") != identity["spec_sha256"]:
                if not overwrite:
                    raise OutputError(f"{folder}: holds results of a different sweep (or a damaged sweep.json); "
                                      "choose another --out or pass --overwrite to replace them")
                outputs.remove_results(folder)
        elif any(p.name != outputs.LOCK_NAME for p in folder.iterdir()):
            if not overwrite:
                raise OutputError(f"{folder}: output folder is not empty; choose another --out or pass --overwrite")
            outputs.remove_results(folder)  # what lte wrote there; never a file of the user's
        runs = folder / "runs"  # (files a killed sweep left unfinished in it are gone: see outputs.locked_dir)
        runs.mkdir(exist_ok=True)
        with outputs.AtomicWriter(folder) as w:
            w.json("sweep.json", identity)

        tasks, order = [], []
        for p in sweep.points:
            for r in range(sweep.replications):
                key = run_id(p.scenario, sweep.seed, r)
                order.append((p.id, r, key))
                if not _run_complete(runs, key):
                    tasks.append((key, p.scenario, sweep.seed, r))
        done_before = len(order) - len(tasks)
        # progress counts the runs still to do, so that a resumed sweep's time left is estimated from its own pace
        if progress:
            progress(0, len(tasks))
        done = 0
        gathered = _RunTables(sweep, runs, order)
        for key, yearly_csv, loans_csv, table, budget in executor.map_unordered(run_task, tasks):
            # loans first: a run counts as done once its (complete) yearly file exists
            _write_durably(runs / f"{key}.loans.csv", loans_csv.encode())
            _write_durably(runs / f"{key}.yearly.csv", yearly_csv.encode())
            gathered.add(key, table, budget)
            done += 1
            if progress:
                progress(done, len(tasks))

        result = _assemble(sweep, folder, order, gathered)
        with outputs.AtomicWriter(folder) as w:
            w.table("points.csv", result.points, dialect)
            w.table("runs.csv", pd.DataFrame(order, columns=["point", "replication", "run_id"]), dialect)
            w.table("yearly.csv", result.yearly, dialect)
            w.table("comparison.csv", result.comparison, dialect)
            w.table("budget.csv", gathered.budget(), dialect)
            w.json("manifest.json", {
                "sweep_name": sweep.name, "sweep_file": str(sweep.file), "base_file": str(sweep.base_file),
                "sweep_file_sha256": hashlib.sha256(sweep.file.read_bytes()).hexdigest(),
                "base_files": [str(f) for f in sweep.base_files], "base_files_sha256": sweep.base_files_sha256,
                "spec_sha256": identity["spec_sha256"], "seed": sweep.seed, "replications": sweep.replications,
                "points": len(sweep.points), "design": sweep.design, "package_version": __version__,
                "versions": outputs.library_versions(),
                # one period for every point (period keys are facts, which levers and uncertainties cannot take)
                "period": sweep.points[0].scenario.period.model_dump(mode="json"),
                "levers": [lv.key for lv in sweep.levers], "uncertainties": [u.key for u in sweep.uncertainties],
                "command": command or [], "csv_dialect": dialect,
            })
        result.runs_done_before = done_before
        return result


def _write_durably(path: Path, data: bytes) -> None:
    """Write to a temporary name, flush to disk, rename: after a crash the file is whole or absent."""
    if path.is_dir() and not path.is_symlink():
        raise OutputError(f"{path}: a folder is where lte writes this run's file; move it away and run again")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _run_complete(runs: Path, key: str) -> bool:
    """Both files of a run are there and end with a full line (a file cut short by a crash does not count)."""
    for what in ("loans", "yearly"):
        path = runs / f"{key}.{what}.csv"
        try:
            with open(path, "rb") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    return False
        except OSError:  # missing or empty
            return False
    return True


def points_table(sweep: Sweep) -> pd.DataFrame:
    """One row per point: its levers (a number as a number, so the CSV dialect writes its decimal mark; otherwise
    the value's name or label) and its uncertainties."""
    def number(value):
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    shown = {lv.key: {label: value if number(value) else label for label, value in zip(lv.labels, lv.values)}
             for lv in sweep.levers}
    rows = []
    for p in sweep.points:
        row = {"point": p.id, "sample": p.sample, "baseline": p.baseline}
        row.update({key: shown[key][label] for key, label in p.levers.items()})
        row.update(p.uncertainties)  # uncertainty key -> sampled value (a level, a factor or a shift)
        rows.append(row)
    return pd.DataFrame(rows)


class _RunTables:
    """Each run's yearly table and budget, for the sweep's own tables: as the workers sent them, or, for a run
    finished before (a resumed sweep), read back from its files (see :func:`_read_back`)."""

    def __init__(self, sweep: Sweep, runs: Path, order: list[tuple[int, int, str]]):
        self.sweep, self.runs = sweep, runs
        scenario_of = {p.id: p.scenario for p in sweep.points}
        self.keys: dict[int, list[str]] = {p.id: [] for p in sweep.points}  # each point's runs, in replication order
        self.scenario_of_key: dict[str, sc.Scenario] = {}
        for point, _, key in order:  # one pass over the runs, not one per point
            self.keys[point].append(key)
            self.scenario_of_key[key] = scenario_of[point]
        self.tables: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}

    def add(self, key: str, table: pd.DataFrame, budget: pd.DataFrame) -> None:
        self.tables[key] = (table, budget)

    def get(self, key: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(yearly, budget) of a run."""
        if key not in self.tables:
            texts = [(self.runs / f"{key}.{what}.csv").read_text(encoding="utf-8") for what in ("yearly", "loans")]
            self.tables[key] = _read_back(self.scenario_of_key[key], *texts)
        return self.tables[key]

    def budget(self) -> pd.DataFrame:
        """budget.csv of the sweep: the budget of every point (mean and 90 % band per year)."""
        from sim.budget import budget_summary

        parts = []
        for p in self.sweep.points:
            per_rep = pd.concat([self.get(k)[1] for k in self.keys[p.id]], ignore_index=True)
            per_rep.insert(0, "point", p.id)
            parts.append(per_rep)
        return budget_summary(pd.concat(parts, ignore_index=True), keys=("point", "year"))


def _assemble(sweep: Sweep, folder: Path, order: list[tuple[int, int, str]], gathered: _RunTables) -> SweepResult:
    """Build the sweep's tables from the runs' tables (read from their files' text, so a resumed sweep gives
    identical files)."""
    parts = []
    for point, _, key in order:
        df = gathered.get(key)[0].copy()
        df.insert(0, "point", point)
        parts.append(df)
    table = pd.concat(parts, ignore_index=True)
    points = points_table(sweep)
    return SweepResult(folder, points, table, comparison(sweep, table), len(order), 0)


def comparison(sweep: Sweep, table: pd.DataFrame) -> pd.DataFrame:
    """Per point and year: each outcome's mean and its paired difference from the baseline point of the same
    uncertainty sample, with a 90 % interval. Year 0 is the whole period (flows summed, waits averaged), as in
    ``lte compare``."""
    base_of = {p.sample: p.id for p in sweep.points if p.baseline}
    by_point = dict(iter(table.groupby("point", sort=False)))  # each point's rows, in the table's order
    totals = {point: period_totals(rows) for point, rows in by_point.items()}  # year 0: the whole period
    parts = []
    for p in sweep.points:
        mine, ref = by_point[p.id], by_point[base_of[p.sample]]
        d = pd.concat([paired_difference(totals[p.id], totals[base_of[p.sample]], OUTCOMES),
                       paired_difference(mine, ref, OUTCOMES)], ignore_index=True)
        d.insert(0, "baseline_point", base_of[p.sample])
        d.insert(0, "point", p.id)
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


def load_tables(folder: str | Path) -> dict[str, pd.DataFrame]:
    """A finished sweep folder's tables by name (``points``, ``runs``, ``yearly``, ``comparison``, ...), read in
    either CSV dialect. The sweep file is not needed: ``runs.csv`` maps (point, replication) to the run files."""
    folder = Path(folder)
    if not (folder / "manifest.json").is_file() or not (folder / "runs.csv").is_file():
        raise OutputError(f"{folder}: not a finished sweep folder (manifest.json and runs.csv are missing)")
    tables = {p.stem: outputs.read_csv(p) for p in sorted(folder.glob("*.csv")) if p.name != "runs.csv"}
    nb = (folder / "runs.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    tables["runs"] = pd.read_csv(folder / "runs.csv", dtype={"run_id": str}, sep=";" if nb else ",",
                                 encoding="utf-8-sig")  # a run id of only digits stays text
    return tables


def load_runs(folder: str | Path, what: str = "loans") -> pd.DataFrame:
    """A finished sweep folder's per-run ``loans`` (or ``yearly``) tables, with point and replication, in the
    order of ``runs.csv`` (point, then replication)."""
    folder = Path(folder)
    index = load_tables(folder)["runs"]
    parts = []
    for point, replication, key in index[["point", "replication", "run_id"]].itertuples(index=False):
        df = pd.read_csv(folder / "runs" / f"{key}.{what}.csv")
        if "replication" not in df.columns:
            df.insert(0, "replication", replication)
        df.insert(0, "point", point)
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


