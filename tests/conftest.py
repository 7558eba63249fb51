"""Shared fixtures: the Drammen baseline and short variants of it, so tests run in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim import scenario as sc
from sim.runner import run_replication

ROOT = Path(__file__).resolve().parent.parent
DRAMMEN = ROOT / "scenarios" / "drammen.toml"


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


def write_variant(tmp_path: Path, body: str, name: str = "variant.toml") -> Path:
    """A scenario file in tmp_path that extends the real Drammen file."""
    path = tmp_path / name
    path.write_text(f'extends = "{DRAMMEN.as_posix()}"\n' + body, encoding="utf-8")
    return path
