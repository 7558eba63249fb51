"""Benchmarks: SimPy's floor, the model's event rate, one Drammen replication, scale, sweep throughput.

    python benchmarks/run.py                # full run (about a minute and a half), table on screen and CSV file
    python benchmarks/run.py --quick        # seconds: smaller sizes and fewer repeats (used by a test)

Writes benchmarks/results/bench.csv (or --csv PATH). Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import simpy  # noqa: E402

from sim import scenario as sc  # noqa: E402
from sim.events import Environment, run_events  # noqa: E402
from sim.model import Model, collector_paused  # noqa: E402
from sim.runner import run_replication, streams_for  # noqa: E402

DRAMMEN = ROOT / "scenarios" / "drammen.toml"


def simpy_floor(processes: int = 2000, steps: int = 100, written_out: bool = False) -> float:
    """Raw SimPy: processes that only wait on timeouts. Returns events per second, counting every event SimPy's
    loop handles (each process's start and end as well as its timeouts), as the model's counter does.

    ``written_out``: run the processes in the model's own environment and loop (``sim.events.Environment`` and
    ``run_events``: the steps of ``Environment.step`` in one loop, no call per event, and what is scheduled for now
    kept out of the heap) rather than by SimPy's ``env.run()``. For context: it shows how much of the model's rate
    against the floor comes from running the loop itself."""
    env = Environment() if written_out else simpy.Environment()

    def proc(env, d):
        for _ in range(steps):
            yield env.timeout(d)

    for i in range(processes):
        env.process(proc(env, 1.0 + (i % 97) / 97.0))
    t0 = time.perf_counter()
    if written_out:
        run_events(env, math.inf, [])  # (to the last event: its end, after every other, is not counted)
    else:
        env.run()
    return processes * (steps + 2) / (time.perf_counter() - t0)


def model_rate(scenario) -> tuple[float, int, float]:
    """(events per second, events, wall seconds) for one replication: the model built, run and freed. As in
    ``run_replication``, the model is freed before the cyclic collector resumes: a collector resumed with the
    finished model alive would scan all of it once (1 % of a replication)."""
    with collector_paused():
        t0 = time.perf_counter()
        m = Model(scenario, streams_for(1, 0)).run()
        events = m.events_handled
        del m
        wall = time.perf_counter() - t0
    return events / wall, events, wall


def scaled(k: float):
    """Drammen's structure with everything that scales with the stock multiplied by k, ten years."""
    base = sc.load(DRAMMEN).scenario
    d = base.model_dump(mode="json")

    def mul(v):
        return {key: x * k for key, x in v.items()} if isinstance(v, dict) else v * k

    return sc.with_overrides(base, {
        "period.start": "2011-01", "period.end": "2020-12", "period.programme_start": "2011-06",
        "stock.initial_units": int(round(d["stock"]["initial_units"] * k)),
        "households.arrivals_per_year": mul(d["households"]["arrivals_per_year"]),
        "households.initial_waiting_list": int(round(d["households"]["initial_waiting_list"] * k)),
        "other_borrowers.applicants_per_year": mul(d["other_borrowers"]["applicants_per_year"]),
        "frame.yearly_nok": mul(d["frame"]["yearly_nok"]),
        "tilskudd.budget_nok_year": mul(d["tilskudd"]["budget_nok_year"]),
        "programme.advisers": max(1, int(round(d["programme"]["advisers"] * k))),
    }, "<benchmark>")


def one_scale(k: float) -> dict:
    s = scaled(k)
    t0 = time.perf_counter()
    rep = run_replication(s, 1, 0)
    wall = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"units": s.stock.initial_units, "seconds": wall, "peak_mb": peak_kb / 1024, "events": rep.events_handled}


def scale_in_subprocess(k: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--one-scale", str(k)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def sweep_throughput(points: int, replications: int, repeats: int) -> dict:
    """Runs per second of a small sweep with one worker and with two, measured in alternation ``repeats`` times
    (the machine's speed drifts; a single pair is at the mercy of its moment). Returns the lists of rates."""
    from sim import sweep as sw
    from sim.executors import InProcess, ProcessPool

    out: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "bench_sweep.toml"
        values = ", ".join(str(50_000_000 + 25_000_000 * i) for i in range(points))
        f.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = {replications}\n'
                     f'[overrides]\n"period.end" = "2020-12"\n[levers]\n"frame.yearly_nok" = [{values}]\n')
        spec = sw.load(f)
        for turn in range(repeats):
            for workers in (1, 2):
                ex = InProcess() if workers == 1 else ProcessPool(2)
                t0 = time.perf_counter()
                sw.run_sweep(spec, Path(tmp) / f"w{workers}-{turn}", ex)
                ex.close()
                out[workers].append(points * replications / (time.perf_counter() - t0))
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, simpy {simpy.__version__}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes and few repeats (seconds)")
    ap.add_argument("--csv", default=str(ROOT / "benchmarks" / "results" / "bench.csv"))
    ap.add_argument("--one-scale", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--replications", type=int, metavar="N",
                    help="only run N Drammen replications (for counting instructions under valgrind; see README)")
    ap.add_argument("--floors", type=int, metavar="N",
                    help="only measure SimPy's floor N times (for counting instructions under valgrind; see README)")
    args = ap.parse_args()
    if args.one_scale is not None:
        print(json.dumps(one_scale(args.one_scale)))
        return
    if args.floors is not None:
        for _ in range(args.floors):
            simpy_floor()
        return
    if args.replications is not None:
        drammen = sc.load(DRAMMEN).scenario
        for _ in range(args.replications):
            model_rate(drammen)
        return
    rows = []

    def add(measure, value, unit, target=""):
        rows.append((measure, value, unit, target))
        print(f"{measure:58s} {value:>14.4g} {unit:14s} {target}", flush=True)

    print(machine())
    drammen = sc.load(DRAMMEN).scenario
    if args.quick:
        drammen = sc.with_overrides(drammen, {"period.end": "2013-12"})
    model_rate(drammen)  # warm-up: the first run in a process pays one-time costs (lazy imports, caches)
    # The floor and the model in alternation, each ratio from a pair measured a moment apart: the machine's speed
    # drifts from minute to minute, and a floor measured once would lend its moment's speed to every ratio.
    floors, runs, written_out = [], [], []
    for _ in range(3 if args.quick else 7):
        floors.append(simpy_floor(processes=500 if args.quick else 2000))
        runs.append(model_rate(drammen))
        written_out.append(simpy_floor(processes=500 if args.quick else 2000, written_out=True))
    add("simpy raw timeout rate (median)", statistics.median(floors), "events/s")
    wall = statistics.median(r[2] for r in runs)
    add("model event rate, Drammen replication (median)", statistics.median(r[0] for r in runs), "events/s")
    add("model rate / simpy rate (median of adjacent pairs)",
        statistics.median(r[0] / f for r, f in zip(runs, floors)), "ratio", ">= 0.35")
    # context: the floor with SimPy's loop written out as the model runs it (sim.events.run_events)
    add("simpy rate, loop written out as the model's (median)", statistics.median(written_out), "events/s")
    add("model rate / that rate (median of adjacent pairs)",
        statistics.median(r[0] / f for r, f in zip(runs, written_out)), "ratio")
    add("one Drammen replication 2010-01..2030-12, median" if not args.quick else "one short replication, median",
        wall, "s", "<= 0.2")
    # each size in fresh processes, several times for the small ones (a tenth of a second is at the mercy of the
    # machine's noise), the sizes taken in turn so that a slow spell of the machine falls on all of them rather
    # than on one: the median wall time and the largest peak memory
    sizes = {0.1: 1} if args.quick else {1.0: 7, 10.0: 5, 100.0: 2}
    tries: dict[float, list[dict]] = {k: [] for k in sizes}
    for turn in range(max(sizes.values())):
        for k, repeats in sizes.items():
            if turn < repeats:
                tries[k].append(scale_in_subprocess(k))
    results = [{**t[0], "seconds": statistics.median(x["seconds"] for x in t),
                "peak_mb": max(x["peak_mb"] for x in t)} for t in tries.values()]
    for k, r in zip(sizes, results):
        add(f"scale: {r['units']} dwellings, ten years, wall (median of {sizes[k]})", r["seconds"], "s",
            "<= 60 at 150k" if k == 100 else "")
        add(f"scale: {r['units']} dwellings, ten years, peak memory", r["peak_mb"], "MB", "<= 2048 at 150k" if k == 100 else "")
    for a, b in zip(results, results[1:]):
        add(f"growth {a['units']} -> {b['units']} dwellings (time ratio)", b["seconds"] / a["seconds"], "x", "<= 11")
    if not args.quick:
        # Context for the growth target: SimPy's own time per event as ten and a hundred times as many processes
        # wait at once. (Measured after the scale runs: a child process inherits its parent's peak memory.)
        wide = [simpy_floor(processes=2000), simpy_floor(processes=20_000, steps=20),
                simpy_floor(processes=200_000, steps=4)]
        for a, b, label in ((0, 1, "2k -> 20k"), (1, 2, "20k -> 200k")):
            add(f"simpy alone: time per event, growth {label} processes", wide[a] / wide[b], "x")
    tp = sweep_throughput(points=2 if args.quick else 8, replications=2 if args.quick else 4,
                          repeats=1 if args.quick else 3)
    add("sweep throughput, 1 worker (median)", statistics.median(tp[1]), "runs/s")
    add("sweep throughput, 2 workers (median)", statistics.median(tp[2]), "runs/s")
    add("sweep speed-up, 2 workers / 1 (median of adjacent pairs)",
        statistics.median(b / a for a, b in zip(tp[1], tp[2])), "x", ">= 1.7")
    path = Path(args.csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as fh:
        fh.write(f"# {machine()}\nmeasure,value,unit,target\n")
        for m, v, u, t in rows:
            fh.write(f'"{m}",{v:.6g},{u},"{t}"\n')
    print(f"written to {path}")


if __name__ == "__main__":
    main()
