"""The ``lte`` command: parse, call the library, report. User mistakes end in one message and exit code 2."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sys
import threading
import time
from pathlib import Path

import click

from sim import __version__
from sim.errors import UserError

EXIT_USER_ERROR = 2
# bounds on the options, as scenario.MAX_REPLICATIONS and sweep.MAX_SAMPLES (written here, not imported: the
# command line starts without loading pydantic and numpy; a test keeps them equal)
MAX_REPLICATIONS = 100_000
MAX_SAMPLES = 100_000
MAX_WORKERS = 1024


def _command() -> list[str]:
    """The command line as the user would type it: ``lte`` and its arguments, without the install path."""
    return ["lte", *sys.argv[1:]]


def _count(n: int, noun: str) -> str:
    """``1 replication``, ``2 replications``: a count with its noun, singular for one."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _not_empty(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """An --out given as "" names nothing: refused, rather than read as "not given"."""
    if value is not None and not value.strip():
        raise click.BadParameter("must not be empty" + ("" if param.required else
                                                        "; leave the option out for the default"), ctx, param)
    return value


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _terminated(signum, frame):
    raise KeyboardInterrupt  # a kill, a closed session or a time-out: clean up as after Ctrl-C


class _Group(click.Group):
    """Turns a UserError anywhere below into one line on stderr and exit code 2; a termination (SIGTERM) ends a
    command as Ctrl-C does, with its unfinished files removed and its folder's lock let go."""

    def invoke(self, ctx: click.Context):
        main_thread = threading.current_thread() is threading.main_thread()  # (signals are the main thread's)
        previous = signal.signal(signal.SIGTERM, _terminated) if main_thread else None
        try:
            return super().invoke(ctx)
        except UserError as exc:
            if os.environ.get("LTE_DEBUG") and exc.__cause__ is not None:  # it wraps an error lte did not foresee
                raise
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)
        except click.UsageError as exc:  # a bad flag or argument of a command: one line too, not click's usage block
            where = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            click.echo(f"error: {where}: {exc.format_message()} (see {where} --help)", err=True)
            ctx.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing more was written", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # the reader of our output stopped early (| head): end quietly, as Unix tools do
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(1)
        except OSError as exc:  # the system refused a read or a write: a full disk, no permission, a file in the way
            if os.environ.get("LTE_DEBUG"):
                raise
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)
        finally:
            if main_thread and previous is not None:
                signal.signal(signal.SIGTERM, previous)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lte")
def cli() -> None:
    """leie-til-eie: simulate municipal tenants' path to ownership under startlån frame policies."""


@cli.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check scenario or sweep files (and the files they extend) without running anything. Every file is checked;
    the exit code is 2 if any is not ok."""
    from sim import scenario as sc
    from sim import sweep as sw

    failed = 0
    for f in files:
        try:
            if sc.is_sweep_file(sc.read_toml(Path(f))):
                spec = sw.load(f)
                click.echo(f"{f}: ok (sweep '{spec.name}', {_count(len(spec.points), 'point')} x "
                           f"{_count(spec.replications, 'replication')})")
                continue
            loaded = sc.load(f)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            failed += 1
            continue
        s = loaded.scenario
        click.echo(f"{f}: ok (scenario '{s.name}', {s.period.start} to {s.period.end}, "
                   f"{_count(len(loaded.files), 'file')})")
    if failed:
        raise click.exceptions.Exit(EXIT_USER_ERROR)


@cli.command()
@click.argument("scenario")
@click.option("-n", "--replications", type=click.IntRange(min=1, max=MAX_REPLICATIONS), help="Number of replications [default: the scenario's].")
@click.option("--seed", type=click.IntRange(min=0), help="Seed for all replications [default: the scenario's].")
@click.option("--out", "out", type=click.Path(file_okay=False), callback=_not_empty, help="Output folder [default: outputs/<scenario name>].")
@click.option("--overwrite", is_flag=True, help="Write into a folder that already has files.")
@click.option("--events", is_flag=True, help="Also write events.csv: every transition of every household.")
@click.option("--csv-dialect", type=click.Choice(["plain", "nb"]), default="plain", show_default=True,
              help="plain: comma and decimal point; nb: semicolon, decimal comma, UTF-8 with BOM (Excel, Norwegian).")
@click.option("--parameter-draws", type=click.IntRange(min=0), default=None,
              help="Parameter sets drawn from the calibration posterior, shared out over the replications (at most "
                   "one each); 0 uses the point estimate; only for a scenario that names a fit "
                   "[default: one per replication when the scenario has a posterior].")
def run(scenario: str, replications: int | None, seed: int | None, out: str | None, overwrite: bool,
        events: bool, csv_dialect: str, parameter_draws: int | None) -> None:
    """Run a scenario and write monthly, yearly, summary, budget and loans tables."""
    from sim import outputs, runner
    from sim import scenario as sc
    from sim.progress import Progress

    loaded = sc.load(scenario)
    s = loaded.scenario
    n = replications or s.replications
    seed = s.seed if seed is None else seed
    folder = Path(out) if out else Path("outputs") / s.name
    started, t0 = _now(), time.monotonic()
    if parameter_draws is not None and not loaded.fitted_keys:  # (none without a fit)
        why = ("the scenario names no fit (calibration.fitted), so there is no posterior to draw from" if not loaded.fit
               else "the scenario sets every value its fit (calibration.fitted) estimates itself, so nothing is "
                    "drawn from the posterior")
        raise UserError(f"{scenario}: --parameter-draws: {why}; leave the option out")
    # replication r runs with draw r mod N: draws beyond the replications would go unused, so they are not drawn
    draws = loaded.posterior_draws(n if parameter_draws is None else min(parameter_draws, n), seed)
    per_replication = runner.posterior_scenarios(s, draws) if draws else None
    with outputs.locked_dir(folder, overwrite=overwrite) as folder:
        result = runner.run(s, n, seed, record_events=events, scenarios=per_replication,
                            progress=Progress(f"run {s.name}"))
        with outputs.AtomicWriter(folder, clear_results=overwrite) as w:  # only the new run's results remain
            for name, table in outputs.run_tables(result).items():
                w.table(name, table, csv_dialect)
            w.json("manifest.json", outputs.manifest(result, loaded, _command(), started, _now(),
                                                     {"csv_dialect": csv_dialect, "parameter_draws": draws}))
    click.echo(f"{s.name}: {_count(n, 'replication')}, seed {seed}, {time.monotonic() - t0:.1f} s; "
               f"results in {folder}/")
    if loaded.fitted_keys:
        fitted = len(loaded.fitted_keys)
        used = f"{_count(len(draws), 'draw')} from its posterior" if draws else "its estimates"
        if draws and parameter_draws is not None and parameter_draws > len(draws):
            used += f", one per replication; {parameter_draws} were asked for"
        click.echo(f"{_count(fitted, 'behavioural value')} from the fit {os.path.normpath(loaded.fit_path)} "
                   f"({used}) {'replaces' if fitted == 1 else 'replace'} the scenario's own")


def _executor_options(f):
    f = click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=2, show_default=True,
                     help="Local worker processes (1 runs in this process).")(f)
    f = click.option("--scheduler", metavar="ADDRESS", help="Run on a Dask cluster, e.g. tcp://scheduler:8786.")(f)
    f = click.option("--local-cluster", is_flag=True, help="Start a local Dask cluster with --workers workers.")(f)
    return f


@cli.command()
@click.argument("sweep_file")
@click.option("--out", "out", type=click.Path(file_okay=False), callback=_not_empty, help="Output folder [default: outputs/<sweep name>].")
@click.option("--overwrite", is_flag=True, help="Replace the results an earlier lte command wrote in the folder (other files are kept).")
@click.option("--csv-dialect", type=click.Choice(["plain", "nb"]), default="plain", show_default=True,
              help="CSV format of the result tables (see lte run).")
@_executor_options
def sweep(sweep_file: str, out: str | None, overwrite: bool, csv_dialect: str, workers: int,
          scheduler: str | None, local_cluster: bool) -> None:
    """Run a policy sweep; re-running the same command resumes an interrupted sweep."""
    from sim import sweep as sw
    from sim.executors import make_executor
    from sim.progress import Progress

    spec = sw.load(sweep_file)
    folder = Path(out) if out else Path("outputs") / spec.name
    t0 = time.monotonic()
    executor = make_executor(workers, scheduler, local_cluster)
    try:
        result = sw.run_sweep(spec, folder, executor, overwrite=overwrite, progress=Progress(f"sweep {spec.name}"),
                              dialect=csv_dialect, command=_command())
    finally:
        executor.close()
    resumed = f", {result.runs_done_before} already done" if result.runs_done_before else ""
    click.echo(f"{spec.name}: {_count(len(spec.points), 'point')} x {_count(spec.replications, 'replication')} = "
               f"{_count(result.runs_total, 'run')}{resumed}; {time.monotonic() - t0:.1f} s on {executor.name}; "
               f"results in {folder}/")


@cli.command()
@click.argument("run_a")
@click.argument("run_b")
@click.option("--out", "out", type=click.Path(dir_okay=False), callback=_not_empty,
              help="Write the comparison per year (year 0: the whole period) to this CSV file.")
@click.option("--overwrite", is_flag=True, help="Replace the --out file if it exists (never a file of a run or sweep).")
@click.option("--csv-dialect", type=click.Choice(["plain", "nb"]), default="plain", show_default=True,
              help="CSV format of --out (see lte run).")
def compare(run_a: str, run_b: str, out: str | None, overwrite: bool, csv_dialect: str) -> None:
    """Compare two finished runs (folders of lte run) or sweep points (SWEEPDIR:POINT), paired by replication.

    Prints each outcome over the whole period: A, B, and A - B with a 90 % interval.
    """
    from sim import compare as cmp
    from sim import outputs

    table = cmp.compare_runs(run_a, run_b)
    if out:
        outputs.write_table_file(out, table, csv_dialect, overwrite=overwrite)
    total = table[table["year"] == 0]
    click.echo(f"A = {run_a}, B = {run_b}; over the whole period, per replication: A - B with its 90 % interval, "
               "then the range of the pairs' own differences (5th to 95th percentile):")
    if table.attrs.get("draws_averaged"):
        click.echo(f"  (the replications ran with {table.attrs['draws_averaged']} parameter draws in turn: those "
                   "sharing a draw are averaged first, and the interval is over the draws)")
    if (total["replications"] < 2).any():
        click.echo("  (one parameter draw: A - B has no interval, which needs at least 2 draws)"
                   if table.attrs.get("draws_averaged") else
                   "  (one replication each: A - B has no interval, which needs at least 2 replications)")
    for row in total.itertuples():
        interval = (f"[{row.difference_low90:,.1f}, {row.difference_high90:,.1f}]  range {row.difference_p5:,.1f} "
                    f"to {row.difference_p95:,.1f}" if row.replications >= 2 else "[no interval]")
        click.echo(f"  {row.outcome:24s} A {row.mean:16,.1f}  B {row.baseline_mean:16,.1f}  "
                   f"A-B {row.difference:14,.1f}  {interval}")


@cli.command()
@click.argument("sweep_file")
@click.option("--samples", type=click.IntRange(min=4, max=MAX_SAMPLES), default=32, show_default=True,
              help="Base samples N, a power of 2; the sweep's replications are run at N x (uncertainties + 2) points.")
@click.option("--out", "out", type=click.Path(file_okay=False), callback=_not_empty, help="Output folder [default: outputs/<sweep name>-sensitivity].")
@click.option("--overwrite", is_flag=True, help="Write into a folder that already has files.")
@click.option("--csv-dialect", type=click.Choice(["plain", "nb"]), default="plain", show_default=True,
              help="plain: comma and decimal point; nb: semicolon, decimal comma, UTF-8 with BOM (Excel, Norwegian).")
@_executor_options
def sensitivity(sweep_file: str, samples: int, out: str | None, overwrite: bool, csv_dialect: str, workers: int,
                scheduler: str | None, local_cluster: bool) -> None:
    """Sobol indices of the main outcomes with respect to the sweep's uncertainties (levers at baseline)."""
    from sim import outputs
    from sim import sensitivity as sens
    from sim import sweep as sw
    from sim.executors import make_executor
    from sim.progress import Progress

    spec = sw.load(sweep_file)
    folder = Path(out) if out else Path("outputs") / f"{spec.name}-sensitivity"
    with outputs.locked_dir(folder, overwrite=overwrite) as folder:
        executor = make_executor(workers, scheduler, local_cluster)
        try:
            table = sens.run_sensitivity(spec, samples, executor, progress=Progress(f"sensitivity {spec.name}"))
        finally:
            executor.close()
        with outputs.AtomicWriter(folder, clear_results=overwrite) as w:  # only the new results remain
            w.table("sensitivity.csv", table, csv_dialect)
            w.json("manifest.json", {"csv_dialect": csv_dialect,
                "sensitivity_of": spec.name, "sweep_file": sweep_file, "samples": samples, "seed": spec.seed,
                "design_seed": spec.design_seed, "replications": spec.replications,
                "uncertainties": [u.key for u in spec.uncertainties], "package_version": __version__,
                "versions": outputs.library_versions(), "command": _command()})
    click.echo(f"{'outcome':18s} {'uncertainty':28s}   S1 (first order)   ST (total)")
    for row in table.itertuples():
        click.echo(f"{row.outcome:18s} {row.uncertainty:28s} {row.S1:6.2f}             {row.ST:6.2f}")
    click.echo(f"results in {folder}/sensitivity.csv")


@cli.command()
@click.argument("folder", type=click.Path(file_okay=False))
def report(folder: str) -> None:
    """Write report.html (charts embedded) and charts/*.png for a finished run or sweep folder."""
    from sim.report import render

    path = render(folder)
    click.echo(f"report written to {path}")


@cli.command()
@click.argument("scenario")
@click.option("--targets", "targets", required=True, help="Observed figures (CSV: date, quantity, value, lower, upper, scope, source).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), callback=_not_empty, help="Fitted parameter file to write (TOML).")
@click.option("--until", help="Fit only on targets up to the end of this month (YYYY-MM); later targets are a hold-out check.")
@click.option("--seed", type=click.IntRange(min=0), default=1, show_default=True,
              help="Seed of the fit: its proposals and its replications.")
@click.option("--particles", type=click.IntRange(min=10, max=MAX_SAMPLES), default=100, show_default=True,
              help="Posterior sample size.")
@click.option("--generations", type=click.IntRange(min=1, max=100), default=5, show_default=True,
              help="ABC-SMC generations.")
@click.option("--replications", type=click.IntRange(min=1, max=MAX_REPLICATIONS), default=2, show_default=True, help="Replications per evaluation.")
@click.option("--workers", type=click.IntRange(min=1, max=MAX_WORKERS), default=2, show_default=True, help="Local worker processes.")
@click.option("--restart", is_flag=True, help="Discard a saved unfinished calibration instead of resuming it.")
def calibrate(scenario: str, targets: str, out: str, until: str | None, seed: int, particles: int, generations: int,
              replications: int, workers: int, restart: bool) -> None:
    """Fit the scenario's [calibration.parameters] to observed figures (ABC-SMC); resumes if interrupted."""
    from sim import calibration as cal
    from sim.executors import make_executor
    from sim.progress import Progress

    executor = make_executor(workers)
    try:
        result = cal.calibrate(scenario, targets, out, until=until, seed=seed, particles=particles,
                               generations=generations, replications=replications, executor=executor,
                               restart=restart, progress_factory=Progress, command=_command())
    finally:
        executor.close()
    if result["resumed_generations"]:
        click.echo(f"resumed after {_count(result['resumed_generations'], 'saved generation')}")
    for key, e in result["estimates"].items():
        click.echo(f"  {key:45s} {e['median']:10.4g}  90 % [{e['p5']:.4g}, {e['p95']:.4g}]")
    t = result["table"]
    click.echo(f"{int(t['within_band'].sum())} of {_count(len(t), 'target')} within the simulated 90 % band; "
               f"{_count(result['evaluations'], 'evaluation')}, {result['seconds']:.0f} s; wrote {out} and its report")


def main() -> None:
    cli(prog_name="lte")


if __name__ == "__main__":
    main()
