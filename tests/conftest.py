"""Shared fixtures: the Drammen baseline, short variants of it and one shared CLI run, so tests run in seconds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim import scenario as sc
from sim.runner import run_replication

ROOT = Path(__file__).resolve().parent.parent
DRAMMEN = ROOT / "scenarios" / "drammen.toml"

# A short period for command-line runs: two years, enough for frame rounds, advice and purchases.
SHORT_BODY = '[period]\nend = "2011-12"\n'


@pytest.fixture(scope="session")
def drammen():
    return sc.load(DRAMMEN).scenario


@pytest.fixture(scope="session")
def short(drammen):
    """Drammen to the end of 2015: long enough for the programme, frame rounds and purchases to matter."""
    return sc.with_overrides(drammen, {"period.end": "2015-12"})


@pytest.fixture(scope="session")
def short_run(short):
    return run_replication(short, seed=7, replication=0, record_events=True)


def write_variant(tmp_path: Path, body: str, name: str = "variant.toml", base: Path = DRAMMEN) -> Path:
    """A scenario file in tmp_path that extends ``base`` (the real Drammen file by default)."""
    path = tmp_path / name
    path.write_text(f'extends = "{Path(base).as_posix()}"\n' + body, encoding="utf-8")
    return path


def copy_drammen(folder: Path, name: str = "drammen.toml") -> Path:
    """A copy of drammen.toml in ``folder`` whose fitted-parameter file still resolves (absolute path)."""
    text = DRAMMEN.read_text(encoding="utf-8")
    fitted = re.search(r'^fitted = "([^"]+)"', text, flags=re.M)
    if fitted:
        target = (DRAMMEN.parent / fitted.group(1)).resolve().as_posix()
        text = text.replace(fitted.group(0), f'fitted = "{target}"')
    path = Path(folder) / name
    path.write_text(text, encoding="utf-8")
    return path


def cli_runner():
    """A CliRunner that keeps stderr apart from stdout (click 8.1 needs mix_stderr=False; 8.2 always does)."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def invoke(*args):
    from sim.cli import cli

    return cli_runner().invoke(cli, [str(a) for a in args])


@pytest.fixture(scope="session")
def short_file(tmp_path_factory):
    """A scenario file: Drammen to the end of 2011."""
    return write_variant(tmp_path_factory.mktemp("scenario"), SHORT_BODY, "short.toml")


@pytest.fixture(scope="session")
def cli_run(tmp_path_factory, short_file):
    """One `lte run --events` of the short scenario, three replications, seed 5; shared by the output tests."""
    out = tmp_path_factory.mktemp("runs") / "plain"
    r = invoke("run", short_file, "-n", 3, "--seed", 5, "--out", out, "--events")
    assert r.exit_code == 0, (r.output, r.exception)
    return out
