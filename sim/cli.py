"""The ``lte`` command: parse, call the library, report. User mistakes end in one message and exit code 2."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from sim import __version__
from sim.errors import UserError

EXIT_USER_ERROR = 2


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class _Group(click.Group):
    """Turns a UserError anywhere below into one line on stderr and exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USER_ERROR)
        except KeyboardInterrupt:
            click.echo("interrupted; nothing more was written", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="lte")
def cli() -> None:
    """leie-til-eie: simulate municipal tenants' path to ownership under startlån frame policies."""


@cli.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: tuple[str, ...]) -> None:
    """Check scenario files (and the files they extend) without running anything."""
    from sim import scenario as sc

    for f in files:
        loaded = sc.load(f)
        s = loaded.scenario
        click.echo(f"{f}: ok (scenario '{s.name}', {s.period.start} to {s.period.end}, "
                   f"{len(loaded.files)} file{'s' if len(loaded.files) > 1 else ''})")


@cli.command()
@click.argument("scenario")
@click.option("-n", "--replications", type=click.IntRange(min=1), help="Number of replications [default: the scenario's].")
@click.option("--seed", type=click.IntRange(min=0), help="Seed for all replications [default: the scenario's].")
@click.option("--out", "out", type=click.Path(file_okay=False), help="Output folder [default: outputs/<scenario name>].")
@click.option("--overwrite", is_flag=True, help="Write into a folder that already has files.")
@click.option("--events", is_flag=True, help="Also write events.csv: every transition of every household.")
@click.option("--csv-dialect", type=click.Choice(["plain", "nb"]), default="plain", show_default=True,
              help="plain: comma and decimal point; nb: semicolon, decimal comma, UTF-8 with BOM (Excel, Norwegian).")
def run(scenario: str, replications: int | None, seed: int | None, out: str | None, overwrite: bool,
        events: bool, csv_dialect: str) -> None:
    """Run a scenario and write monthly, yearly and summary tables."""
    from sim import outputs, runner
    from sim import scenario as sc
    from sim.progress import Progress

    loaded = sc.load(scenario)
    s = loaded.scenario
    n = replications or s.replications
    seed = s.seed if seed is None else seed
    folder = Path(out) if out else Path("outputs") / s.name
    started, t0 = _now(), time.monotonic()
    with outputs.locked_dir(folder, overwrite=overwrite) as folder:
        result = runner.run(s, n, seed, record_events=events, progress=Progress(f"run {s.name}"))
        with outputs.AtomicWriter(folder) as w:
            for name, table in outputs.run_tables(result).items():
                w.table(name, table, csv_dialect)
            w.json("manifest.json", outputs.manifest(result, loaded, sys.argv, started, _now(),
                                                     {"csv_dialect": csv_dialect}))
    click.echo(f"{s.name}: {n} replications, seed {seed}, {time.monotonic() - t0:.1f} s; results in {folder}/")


def main() -> None:
    cli(prog_name="lte")


if __name__ == "__main__":
    main()
