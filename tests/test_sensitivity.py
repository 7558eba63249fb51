"""Sobol indices: the estimators recover known indices of an additive function; the command runs end to end."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.stats import qmc

from sim.cli import cli
from sim.sensitivity import indices

from .conftest import DRAMMEN


def test_estimators_recover_additive_function():
    # f = x1 + 2 x2 + 0 x3 with x ~ U(0, 1): Var = 1/12 + 4/12; S1 = ST = (0.2, 0.8, 0)
    n, d = 4096, 3
    u = qmc.Sobol(d=2 * d, scramble=True, seed=np.random.default_rng(0)).random(n)
    a, b = u[:, :d], u[:, d:]
    f = lambda x: x[:, 0] + 2 * x[:, 1]  # noqa: E731
    ab = []
    for i in range(d):
        m = a.copy()
        m[:, i] = b[:, i]
        ab.append(f(m))
    got = indices(f(a), f(b), ab)
    for (s1, st), expected in zip(got, (0.2, 0.8, 0.0)):
        assert s1 == pytest.approx(expected, abs=0.03) and st == pytest.approx(expected, abs=0.03)
    # the same function shifted far from zero (like NOK totals in the billions) gives the same indices
    shift = 1e9
    got = indices(f(a) + shift, f(b) + shift, [v + shift for v in ab])
    for (s1, st), expected in zip(got, (0.2, 0.8, 0.0)):
        assert s1 == pytest.approx(expected, abs=0.03) and st == pytest.approx(expected, abs=0.03)


def test_sensitivity_command(tmp_path):
    sweep = tmp_path / "u.toml"
    sweep.write_text(f'''
name = "u"
base = "{DRAMMEN.as_posix()}"
replications = 1
[overrides]
"period.end" = "2012-12"
[uncertainties]
"market.price_index" = {{ scale = [0.8, 1.2] }}
"households.arrivals_per_year" = {{ scale = [0.8, 1.2] }}
''')
    r = CliRunner().invoke(cli, ["sensitivity", str(sweep), "--samples", "4", "--workers", "1", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    t = pd.read_csv(tmp_path / "o" / "sensitivity.csv")
    assert set(t["uncertainty"]) == {"market.price_index", "households.arrivals_per_year"}
    assert {"S1", "ST", "S1_low90", "ST_high90"} <= set(t.columns)
    # --overwrite over an earlier run's folder: only the new results and the user's own files remain
    (tmp_path / "o" / "yearly.csv").write_text("stale")
    (tmp_path / "o" / "notes.txt").write_text("mine")
    r = CliRunner().invoke(cli, ["sensitivity", str(sweep), "--samples", "4", "--workers", "1", "--out",
                                 str(tmp_path / "o"), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["manifest.json", "notes.txt", "sensitivity.csv"]
    # what produced the numbers: the libraries' versions too (the samples come from scipy)
    assert set(json.loads((tmp_path / "o" / "manifest.json").read_text())["versions"]) == {
        "python", "numpy", "scipy", "simpy", "pandas"}
    # the nb dialect, for Excel with Norwegian settings: the same numbers
    r = CliRunner().invoke(cli, ["sensitivity", str(sweep), "--samples", "4", "--workers", "1", "--out",
                                 str(tmp_path / "nb"), "--csv-dialect", "nb"])
    assert r.exit_code == 0, r.output
    raw = (tmp_path / "nb" / "sensitivity.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw.splitlines()[0]
    nb = pd.read_csv(tmp_path / "nb" / "sensitivity.csv", sep=";", decimal=",", encoding="utf-8-sig")
    pd.testing.assert_frame_equal(nb, pd.read_csv(tmp_path / "o" / "sensitivity.csv"))


def test_samples_must_be_a_power_of_two(tmp_path):
    sweep = tmp_path / "u.toml"
    sweep.write_text(f'base = "{DRAMMEN.as_posix()}"\n[uncertainties]\n"market.price_index" = {{ scale = [0.8, 1.2] }}\n')
    r = CliRunner().invoke(cli, ["sensitivity", str(sweep), "--samples", "6", "--workers", "1", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--samples 6: the number of samples must be a power of 2" in r.output
    assert "use 4 or 8" in r.output
    assert not (tmp_path / "o").exists()


def test_samples_are_bounded_by_the_runs_they_need(tmp_path):
    """--samples 65536 with four uncertainties is 393,216 points: refused before any scenario is built."""
    r = CliRunner().invoke(cli, ["sensitivity", str(DRAMMEN.parent / "uncertainty_sweep.toml"), "--samples", "65536",
                                 "--workers", "1", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "uncertainty_sweep.toml: --samples 65536: 65,536 x (4 uncertainties + 2) = " \
        "393,216 points x 4 replications;" in r.output
    assert "at most 100,000 points" in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "o").exists()
