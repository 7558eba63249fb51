"""Sweeps: validation, common random numbers, identical results on every executor, resume after a kill."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sim import outputs
from sim import scenario as sc
from sim import sweep as sw
from sim.cli import cli
from sim.errors import OutputError, ScenarioError
from sim.executors import Dask, InProcess, ProcessPool
from sim.outputs import read_csv

from .conftest import DRAMMEN, write_variant

TINY = f'''
name = "tiny"
base = "{DRAMMEN.as_posix()}"
replications = 2
seed = 3
[overrides]
"period.end" = "2013-06"
[levers]
"frame.yearly_nok" = [20_000_000, 150_000_000]
"frame.priority" = ["first_come", "lte_first"]
[uncertainties]
"market.husbanken_rate_pct" = {{ shift = [-0.5, 1.0] }}
[design]
kind = "lhs"
samples = 2
baseline = {{ "frame.yearly_nok" = 150_000_000 }}
'''

FILES = ("points.csv", "yearly.csv", "comparison.csv", "budget.csv", "runs.csv")


@pytest.fixture()
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_points_grid_and_baseline(tiny):
    s = sw.load(tiny)
    assert len(s.points) == 2 * 2 * 2  # two samples x four policy combinations
    base = [p for p in s.points if p.baseline]
    assert len(base) == 2 and {p.sample for p in base} == {0, 1}
    assert all(p.levers == {"frame.yearly_nok": "150000000", "frame.priority": "first_come"} for p in base)
    # the design samples the shift inside its range, and the same sample is shared by every policy
    shifts = {(p.sample, p.uncertainties["market.husbanken_rate_pct"]) for p in s.points}
    assert len(shifts) == 2 and all(-0.5 <= x <= 1.0 for _, x in shifts)
    p = s.points[0]
    base_rate = s.base.market.husbanken_rate_pct
    shift = p.uncertainties["market.husbanken_rate_pct"]
    assert p.scenario.market.husbanken_rate_pct["2010"] == pytest.approx(base_rate["2010"] + shift)
    assert p.scenario.period.end == "2013-06"


def _lever_error(tmp_path, patch: str) -> tuple:
    """Load TINY with its priority lever replaced by ``patch``; the file and the message of the error it must give."""
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace('"frame.priority" = ["first_come", "lte_first"]', patch))
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    return path, str(info.value)


@pytest.mark.parametrize("patch, key, rule", [
    ('"frame.yearly_nokk" = [1]', "levers.frame.yearly_nokk", "did you mean"),
    ('"market.price_index" = [1.0]', "levers.market.price_index", "is an exogenous key; levers must be policy keys"),
    ('"frame.earmark_lte_share" = [0.5, 1.5]', "frame.earmark_lte_share", "at most 1"),
])
def test_bad_levers(tmp_path, patch, key, rule):
    path, message = _lever_error(tmp_path, patch)
    assert str(path) in message and key in message and rule in message


@pytest.mark.parametrize("patch, key, rule", [
    ('"frame.priority" = ["first_come", "first_come"]', "levers.frame.priority", "listed twice"),
    ('"frame.earmark_lte_share" = {min = 0.0, max = 0.5, stpes = 3}', "levers.frame.earmark_lte_share.stpes",
     "did you mean 'steps'"),
    ('"frame.earmark_lte_share" = {min = 0.5, max = 0.0}', "levers.frame.earmark_lte_share", "min < max"),
])
def test_bad_lever_specs(tmp_path, patch, key, rule):
    path, message = _lever_error(tmp_path, patch)
    assert f"{path}: {key}: " in message and rule in message


def test_every_bad_value_reported_under_its_own_key(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace('"frame.priority" = ["first_come", "lte_first"]', '"frame.earmark_lte_share" = [0.5, 1.5]')
                    .replace("shift = [-0.5, 1.0]", "shift = [-5.0, 1.0]"))
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}: levers.frame.earmark_lte_share: value '1.5': ") and "at most 1" in lines[0]
    assert lines[1].startswith(f"{path}: uncertainties.market.husbanken_rate_pct: shift -5: ") and "at least 0" in lines[1]


def test_a_computed_rate_may_come_near_zero_but_a_written_one_is_in_percent(tmp_path):
    """A rate written as 0.027 is a fraction where percent was meant, and refused; an uncertainty that shifts the
    rate down towards zero computes such values on purpose (a stress test), and they are not refused."""
    path = tmp_path / "low.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = 1\n[overrides]\n"period.end" = "2011-12"\n'
                    '"market.husbanken_rate_pct" = 2.5\n[uncertainties]\n'
                    '"market.husbanken_rate_pct" = { shift = [-2.49, -2.45] }\n[design]\nkind = "lhs"\nsamples = 2\n')
    s = sw.load(path)
    rates = [p.scenario.market.husbanken_rate_pct for p in s.points]
    assert len(rates) == 2 and all(0 < r < 0.1 for r in rates), rates
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[overrides]\n"market.husbanken_rate_pct" = 0.027\n'
                    '[levers]\n"frame.carry_over" = [true, false]\n')
    with pytest.raises(ScenarioError, match="overrides.market.husbanken_rate_pct: .*rates are in percent"):
        sw.load(path)
    # the ends of a range are written too (a range's values are the sampled ones themselves); the steps a lever's
    # range computes between its written ends are not held to it
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[uncertainties]\n'
                    '"market.husbanken_rate_pct" = { range = [0.02, 0.05] }\n[design]\nkind = "lhs"\nsamples = 2\n')
    with pytest.raises(ScenarioError, match="uncertainties.market.husbanken_rate_pct: range 0.02: .*rates are in percent"):
        sw.load(path)
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[levers]\n'
                    '"startlan.stress_floor_pct" = { min = 0.0, max = 5.0, steps = 101 }\n')
    assert len(sw.load(path).points) == 101


def test_every_problem_of_a_sweep_file_reported_at_once(tmp_path):
    """An unknown key does not hide a bad value elsewhere in the file, and an override is named as written."""
    path = tmp_path / "bad.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[overrides]\n"period.endd" = "2012-12"\n'
                    '"frame.carry_over" = 3\n[levers]\n"frame.yearly_nokk" = [1, 2]\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    assert [key for key, _ in info.value.problems] == \
        ["overrides.period.endd", "overrides.frame.carry_over", "levers.frame.yearly_nokk"]
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[levers]\n"frame.yearly_nokk" = [1, 2]\n'
                    '"frame.earmark_lte_share" = [0.5, 1.5]\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    assert [key for key, _ in info.value.problems] == ["levers.frame.yearly_nokk", "levers.frame.earmark_lte_share"]
    # a value listed twice does not hide a bad value of the same lever
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[levers]\n"frame.earmark_lte_share" = [0.0, 1.5, 0.0]\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    rules = [rule for _, rule in info.value.problems]
    assert len(rules) == 2 and "listed twice: 0" in rules[0] and "value '1.5'" in rules[1]


def test_range_lever_and_sobol_design(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(TINY.replace('"frame.yearly_nok" = [20_000_000, 150_000_000]',
                                 '"frame.yearly_nok" = {min = 50_000_000, max = 150_000_000, steps = 3}')
                    .replace('kind = "lhs"', 'kind = "sobol"').replace("samples = 2", "samples = 4"))
    s = sw.load(path)
    assert [lv.labels for lv in s.levers][0] == ["50000000", "100000000", "150000000"]
    assert len(s.points) == 4 * 3 * 2
    assert sorted({p.scenario.frame.yearly_nok for p in s.points if p.sample == 0}) == [5e7, 1e8, 1.5e8]
    path.write_text(path.read_text().replace("samples = 4", "samples = 6"))
    with pytest.raises(ScenarioError, match="design.samples: a Sobol design needs a power of 2 .*use 4 or 8"):
        sw.load(path)


def test_bad_tables_and_name(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(f'name = "../elsewhere"\nbase = "{DRAMMEN.as_posix()}"\nuncertainties = 3\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    msg = str(info.value)
    assert f"{path}: uncertainties: must be a table" in msg and f"{path}: name: must be a short text" in msg


def test_bad_top_level_and_uncertainty(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace("replications = 2", "replicatons = 2").replace("shift = [-0.5, 1.0]", "shift = [1.0, -0.5]"))
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    msg = str(info.value)
    assert "did you mean 'replications'" in msg and "low < high" in msg  # a misspelt top-level key hides nothing
    path.write_text(TINY.replace("shift = [-0.5, 1.0]", "shift = [1.0, -0.5]"))
    with pytest.raises(ScenarioError, match="low < high"):
        sw.load(path)
    path.write_text(TINY.replace("shift = [-0.5, 1.0]", "shift = [-5.0, 1.0]"))
    with pytest.raises(ScenarioError, match="market.husbanken_rate_pct"):
        sw.load(path)  # a negative rate is caught when the point's scenario is validated


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ref")
    path = folder / "tiny.toml"
    path.write_text(TINY)
    out = folder / "out"
    res = sw.run_sweep(sw.load(path), out, InProcess())
    return out, res


def test_outputs_and_pairing(reference):
    out, res = reference
    assert {p.name for p in out.iterdir()} >= {"points.csv", "yearly.csv", "comparison.csv", "manifest.json", "runs"}
    comp = pd.read_csv(out / "comparison.csv")
    # a baseline point compared with itself: difference exactly zero
    base = comp[comp["point"] == comp["baseline_point"]]
    assert (base["difference"] == 0).all()
    # a smaller frame gives fewer startlån, and the paired interval contains the mean difference
    y = pd.read_csv(out / "yearly.csv")
    small = y[y["point"] == 0]["startlan_nok"].sum()
    big = y[y["point"] == 2]["startlan_nok"].sum()
    assert small < big
    assert ((comp["difference_low90"] <= comp["difference"] + 1e-9) & (comp["difference"] <= comp["difference_high90"] + 1e-9)).all()
    # year 0 is the whole period: per replication the sum over the years, then the mean over replications
    whole = comp[(comp["year"] == 0) & (comp["outcome"] == "new_owners") & (comp["point"] == 3)].iloc[0]
    assert whole["mean"] == pytest.approx(y[y["point"] == 3].groupby("replication")["new_owners"].sum().mean())
    # runs.csv maps every (point, replication) to its run files; load_runs gives back yearly.csv's rows
    index = sw.load_tables(out)["runs"]
    assert len(index) == res.runs_total and index["run_id"].is_unique
    again = sw.load_runs(out, "yearly")
    pd.testing.assert_frame_equal(again[y.columns.tolist()], y, check_dtype=False)
    loans = sw.load_runs(out, "loans")
    assert set(loans["point"]) <= set(range(8)) and {"point", "replication"} <= set(loans.columns)


def test_same_results_on_every_executor(tmp_path, reference, tiny):
    ref_out, _ = reference
    for name, ex in (("pool", ProcessPool(2)), ("dask", Dask(local_workers=2, processes=False))):
        try:
            sw.run_sweep(sw.load(tiny), tmp_path / name, ex)
        finally:
            ex.close()
        for f in FILES:
            assert (tmp_path / name / f).read_bytes() == (ref_out / f).read_bytes(), (name, f)


def test_resume_after_kill_loses_and_duplicates_nothing(tmp_path, reference, tiny):
    ref_out, res = reference
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "sim", "sweep", str(tiny), "--out", str(out), "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "runs").glob("*.yearly.csv"))) < 3:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list((out / "runs").glob("*.yearly.csv")))
    assert 3 <= done < res.runs_total, "the sweep must be killed mid-way"
    assert not (out / "yearly.csv").exists()
    # a file cut short (as by a crash of the machine) is not a finished run: it is run again
    cut = sorted((out / "runs").glob("*.yearly.csv"))[0]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2].rstrip(b"\n"))
    (out / ".yearly.csv.tmp-999999999").write_bytes(b"")  # as a kill during the final write leaves
    r = CliRunner().invoke(cli, ["sweep", str(tiny), "--out", str(out), "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert f"{done - 1} already done" in r.output
    for f in FILES:
        assert (out / f).read_bytes() == (ref_out / f).read_bytes(), f
    assert len(list((out / "runs").glob("*.yearly.csv"))) == res.runs_total
    assert not list((out / "runs").glob(".*tmp*")) and not list(out.glob(".*tmp*"))


def test_folder_rules(tmp_path, reference, tiny):
    ref_out, _ = reference
    other = tmp_path / "other.toml"
    other.write_text(TINY.replace("seed = 3", "seed = 4"))
    with pytest.raises(OutputError, match="different sweep"):
        sw.run_sweep(sw.load(other), ref_out, InProcess())
    busy = tmp_path / "busy"
    with outputs.locked_dir(busy):  # held by a live run (this process)
        r = CliRunner().invoke(cli, ["sweep", str(tiny), "--out", str(busy)])
    assert r.exit_code == 2 and "in use" in r.output


def test_a_sweep_is_not_resumed_after_the_model_changed(reference, tiny, monkeypatch):
    """Finished runs belong to the code that made them: after a change to the package's code the same sweep is
    different work (refused without --overwrite), and each run has another id, so no old run file is reused."""
    ref_out, _ = reference
    s = sw.load(tiny)
    point = s.points[0]
    before = (s.spec_hash(), sw.run_id(point.scenario, s.seed, 0))
    monkeypatch.setattr(sw, "code_hash", lambda: "another model")
    assert s.spec_hash() != before[0] and sw.run_id(point.scenario, s.seed, 0) != before[1]
    with pytest.raises(OutputError, match="different sweep"):
        sw.run_sweep(sw.load(tiny), ref_out, InProcess())


def test_the_code_is_the_same_code_with_windows_line_endings(tmp_path):
    """The same commit checked out with CRLF line endings (Git's default on Windows) gives the same run ids, so a
    sweep folder moved between machines resumes and its runs.csv is byte-identical; a change of content does not."""
    from pathlib import Path

    from sim.runner import code_hash, source_hash

    package = Path(sw.__file__).parent
    (tmp_path / "lf").mkdir()
    (tmp_path / "crlf").mkdir()
    for path in package.glob("*.py"):
        text = path.read_bytes().replace(b"\r\n", b"\n")
        (tmp_path / "lf" / path.name).write_bytes(text)
        (tmp_path / "crlf" / path.name).write_bytes(text.replace(b"\n", b"\r\n"))
    assert source_hash(tmp_path / "crlf") == source_hash(tmp_path / "lf") == code_hash()
    (tmp_path / "crlf" / "model.py").write_bytes((tmp_path / "crlf" / "model.py").read_bytes() + b"# changed\r\n")
    assert source_hash(tmp_path / "crlf") != code_hash()


def test_overwrite_removes_only_what_lte_wrote(tmp_path, reference, tiny):
    """--overwrite replaces earlier results (a different sweep's, a run's) and never touches the user's own files:
    lte sweep --out . --overwrite in a project folder must not empty it."""
    ref_out, _ = reference
    out = tmp_path / "mixed"
    (out / "runs").mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    (out / "data").mkdir()
    (out / "data" / "observed.csv").write_text("a,b\n")
    (out / "runs" / "0123456789abcdef.yearly.csv").write_text("stale")  # a run of some other sweep
    (out / "events.csv").write_text("stale")  # left by an lte run, with its manifest
    (out / "manifest.json").write_text("{}")
    r = CliRunner().invoke(cli, ["sweep", str(tiny), "--out", str(out), "--workers", "1"])
    assert r.exit_code == 2 and "not empty" in r.output
    r = CliRunner().invoke(cli, ["sweep", str(tiny), "--out", str(out), "--workers", "1", "--overwrite"])
    assert r.exit_code == 0, r.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "data" / "observed.csv").exists()
    assert not (out / "events.csv").exists() and not (out / "runs" / "0123456789abcdef.yearly.csv").exists()
    for f in FILES:
        assert (out / f).read_bytes() == (ref_out / f).read_bytes(), f


def test_compare_command(reference, tmp_path):
    out, _ = reference
    r = CliRunner().invoke(cli, ["compare", f"{out}:0", f"{out}:2", "--out", str(tmp_path / "c.csv")])
    assert r.exit_code == 0, r.output
    c = pd.read_csv(tmp_path / "c.csv")
    y = pd.read_csv(out / "yearly.csv")
    expected = (y[y["point"] == 0].groupby("replication")["startlan_nok"].sum()
                - y[y["point"] == 2].groupby("replication")["startlan_nok"].sum()).mean()
    got = c[(c["year"] == 0) & (c["outcome"] == "startlan_nok")]["difference"].iloc[0]
    assert got == pytest.approx(expected, abs=1)
    r = CliRunner().invoke(cli, ["compare", str(out), f"{out}:2"])
    assert r.exit_code == 2 and "is a sweep" in r.output
    r = CliRunner().invoke(cli, ["compare", f"{out}:99", f"{out}:2"])
    assert r.exit_code == 2 and "no point 99" in r.output
    # a point is named by its number in points.csv
    r = CliRunner().invoke(cli, ["compare", f"{out}:2", f"{out}:x"])
    assert r.exit_code == 2 and f"{out}:x: the point after ':' must be a number from points.csv" in r.output, r.output
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_the_manifest_names_the_base_scenario_files_and_their_hash(reference):
    """As lte run's manifest does, a sweep's names every file its base scenario was read from (the base and the
    fit it names) and their hash, so that a changed fit file shows."""
    out, _ = reference
    made = json.loads((out / "manifest.json").read_text())
    files = [Path(f) for f in made["base_files"]]
    assert files[0] == DRAMMEN and any(f.parent.name == "fitted" for f in files[1:])
    loaded = sc.load(DRAMMEN)  # the hash lte run's manifest gives the same files
    assert files == loaded.files and made["base_files_sha256"] == loaded.files_hash()


def test_compare_refuses_a_sweep_point_and_a_run_over_different_months(reference, tmp_path):
    """The sweep runs to 2013-06; a run to 2013-12 has the same years, but its last year and its whole-period
    totals cover six months more: not comparable (the sweep's manifest records the period all its points share)."""
    out, _ = reference
    made = json.loads((out / "manifest.json").read_text())
    assert made["period"]["end"] == "2013-06"
    assert set(made["versions"]) == {"python", "numpy", "scipy", "simpy", "pandas"}  # as lte run's manifest
    longer = write_variant(tmp_path, '[period]\nend = "2013-12"\n')
    r = CliRunner().invoke(cli, ["run", str(longer), "-n", "2", "--seed", "3", "--parameter-draws", "0",
                                 "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["compare", f"{out}:0", str(tmp_path / "run")])
    assert r.exit_code == 2 and "2010-01 to 2013-06" in r.output and "2010-01 to 2013-12" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    # a manifest that does not say which months it covers cannot be paired safely
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["period"]
    (tmp_path / "old").mkdir()
    for f in ("yearly.csv", "points.csv", "runs.csv"):
        (tmp_path / "old" / f).write_bytes((out / f).read_bytes())
    (tmp_path / "old" / "manifest.json").write_text(json.dumps(manifest))
    r = CliRunner().invoke(cli, ["compare", f"{tmp_path / 'old'}:0", f"{out}:2"])
    assert r.exit_code == 2 and "does not say which months" in r.output, r.output
    # two points of that one sweep share its period, whatever its manifest says
    r = CliRunner().invoke(cli, ["compare", f"{tmp_path / 'old'}:0", f"{tmp_path / 'old'}:2"])
    assert r.exit_code == 0, r.output


def test_rerun_of_a_finished_sweep_runs_nothing_and_rewrites_the_same_files(reference, tiny):
    out, res = reference
    before = {f: (out / f).read_bytes() for f in FILES}
    calls = []
    again = sw.run_sweep(sw.load(tiny), out, InProcess(), progress=lambda d, t: calls.append((d, t)))
    assert again.runs_done_before == res.runs_total and calls == [(0, 0)]
    assert {f: (out / f).read_bytes() for f in FILES} == before


def test_uncertainties_apply_to_the_base_scenario_not_to_a_sampled_point(tiny):
    s = sw.load(tiny)
    base_rate = s.base.market.husbanken_rate_pct["2010"]
    assert sw.uncertainty_overrides(s, [0.3])["market.husbanken_rate_pct"]["2010"] == pytest.approx(base_rate + 0.3)
    assert sw.baseline_levers(s) == {"frame.yearly_nok": 150_000_000, "frame.priority": "first_come"}


def test_numeric_lever_values_follow_the_csv_dialect(tmp_path):
    """points.csv writes a lever's numbers as numbers: with a decimal comma in the nb dialect, for Excel."""
    path = tmp_path / "earmark.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = 1\n[overrides]\n"period.end" = "2011-12"\n'
                    '[levers]\n"frame.earmark_lte_share" = [0.0, 0.25]\n"frame.priority" = ["first_come", "lte_first"]\n')
    sw.run_sweep(sw.load(path), tmp_path / "nb", InProcess(), dialect="nb")
    sw.run_sweep(sw.load(path), tmp_path / "plain", InProcess())
    text = (tmp_path / "nb" / "points.csv").read_text(encoding="utf-8-sig")
    assert "0,25;" in text and "0.25" not in text
    assert "0.25," in (tmp_path / "plain" / "points.csv").read_text()
    points = read_csv(tmp_path / "nb" / "points.csv")
    assert sorted(set(points["frame.earmark_lte_share"])) == [0.0, 0.25]
    assert set(points["frame.priority"]) == {"first_come", "lte_first"}


@pytest.mark.parametrize("old, new, key, rule", [
    ("samples = 2", "samples = 1_000_000_000_000", "design.samples",
     "must be a whole number from 1 to 100,000 (got 1000000000000)"),
    ('"frame.priority" = ["first_come", "lte_first"]',
     '"frame.earmark_lte_share" = {min = 0.0, max = 0.5, steps = 1000000000}', "levers.frame.earmark_lte_share.steps",
     "must be a whole number from 2 to 10,000 (got 1000000000)"),
    ("shift = [-0.5, 1.0]", "shift = [-0.5, 1.0], steps = 100_000", "uncertainties.market.husbanken_rate_pct.steps",
     "must be a whole number from 2 to 10,000 (got 100000)"),
    ("replications = 2", "replications = 1_000_000", "replications",
     "must be a whole number from 1 to 100,000 (got 1000000)"),
])
def test_sizes_have_upper_bounds(tmp_path, old, new, key, rule):
    """A mistyped size is refused with its key before numpy is asked for the memory."""
    path = tmp_path / "big.toml"
    path.write_text(TINY.replace(old, new))
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    assert str(info.value) == f"{path}: {key}: {rule}"


BIG_GRID = """
"market.husbanken_rate_pct" = { shift = [-0.5, 1.0], steps = 1000 }
"market.price_index" = { scale = [0.9, 1.1], steps = 1000 }
[design]
kind = "grid"
"""


@pytest.mark.parametrize("body, what", [
    ('replications = 100_000\n[uncertainties]\n"market.price_index" = { scale = [0.9, 1.1] }\n'
     '[design]\nkind = "lhs"\nsamples = 16\n', "16 points x 100,000 replications = 1,600,000 runs"),
    ("replications = 1\n[uncertainties]" + BIG_GRID, "1,000,000 points x 1 replication = 1,000,000 runs"),
])
def test_a_sweeps_points_and_runs_are_bounded(tmp_path, body, what):
    path = tmp_path / "big.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n{body}')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {what}") and "at most 100,000 points and 1,000,000 runs" in message
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize("patch, key", [
    ('"frame.earmark_lte_share" = {min = 0.0, max = inf}', "levers.frame.earmark_lte_share"),
    ('"frame.earmark_lte_share" = {min = nan, max = 0.5}', "levers.frame.earmark_lte_share"),
    ('"frame.earmark_lte_share" = {min = 0.0, max = 0.5, steps = inf}', "levers.frame.earmark_lte_share.steps"),
])
def test_a_range_must_be_finite(tmp_path, patch, key):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy warning on the way
        path, message = _lever_error(tmp_path, patch)
    assert message.startswith(f"{path}: {key}: ") and len(message.splitlines()) == 1
    assert "finite" in message or "whole number" in message
    assert "NaN" not in message and "Infinity" not in message
    path.write_text(TINY.replace("shift = [-0.5, 1.0]", "shift = [-0.5, inf]"))
    with pytest.raises(ScenarioError, match=r"uncertainties.market.husbanken_rate_pct.shift: must be \[low, high\], "
                                            "finite numbers"):
        sw.load(path)


@pytest.mark.parametrize("line, key, rule", [
    ('name = "sp ace"', "name", "letters A-Z, digits and _ . -"),
    ('name = "ø"', "name", "letters A-Z, digits and _ . -"),
    ('name = ".."', "name", "not starting with ."),
    ('name = 3', "name", "(got 3)"),
    ('description = 3', "description", "must be a text in quotes (got 3)"),
    ('description = ["a"]', "description", "must be a text in quotes"),
])
def test_name_and_description_follow_the_scenario_rules(tmp_path, line, key, rule):
    path = tmp_path / "bad.toml"
    path.write_text(TINY.replace('name = "tiny"', line))
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    assert str(info.value).startswith(f"{path}: {key}: ") and rule in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_nested_tables_are_dotted_keys(tmp_path):
    """[levers.frame] with earmark_lte_share = [...] is "frame.earmark_lte_share" = [...]; so in [overrides],
    [uncertainties] and design.baseline. A key's own table (a dated path, named values) is kept whole."""
    dotted = tmp_path / "dotted.toml"
    dotted.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = 1\n[overrides]\n"period.end" = "2012-12"\n'
                      '"stock.family_share" = 0.5\n"market.price_index" = {2010 = 1.0, 2011 = 1.1}\n'
                      '[levers]\n"frame.earmark_lte_share" = [0.0, 0.25]\n'
                      '"frame.yearly_nok" = {small = 20_000_000, large = 150_000_000}\n'
                      '[uncertainties]\n"market.income_index" = { scale = [0.9, 1.1] }\n'
                      '[design]\nkind = "lhs"\nsamples = 2\nbaseline = { "frame.earmark_lte_share" = 0.25 }\n')
    nested = tmp_path / "nested.toml"
    nested.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = 1\n[overrides]\nperiod = {{end = "2012-12"}}\n'
                      'stock = {family_share = 0.5}\nmarket = {price_index = {2010 = 1.0, 2011 = 1.1}}\n'
                      '[levers.frame]\nearmark_lte_share = [0.0, 0.25]\n'
                      'yearly_nok = {small = 20_000_000, large = 150_000_000}\n'
                      '[uncertainties.market]\nincome_index = { scale = [0.9, 1.1] }\n'
                      '[design]\nkind = "lhs"\nsamples = 2\nbaseline = { frame = { earmark_lte_share = 0.25 } }\n')
    a, b = sw.load(dotted), sw.load(nested)
    assert b.base.stock.family_share == 0.5 and b.base.period.end == "2012-12"
    assert [lv.key for lv in b.levers] == ["frame.earmark_lte_share", "frame.yearly_nok"]
    assert b.levers[1].labels == ["small", "large"] and b.baseline == a.baseline
    assert len(b.points) == 2 * 4 and b.spec_hash() == a.spec_hash()
    # a misspelt key under a section is named with its whole path
    nested.write_text(nested.read_text().replace("earmark_lte_share = [", "earmark_lte_shar = ["))
    with pytest.raises(ScenarioError, match="levers.frame.earmark_lte_shar: not a scenario key; did you mean"):
        sw.load(nested)


def test_a_key_given_in_both_forms_is_refused(tmp_path):
    """"frame.earmark_lte_share" in [levers] and earmark_lte_share in [levers.frame] name the same lever: one of
    the two would be dropped without a word; so in [overrides], [uncertainties] and design.baseline."""
    path = tmp_path / "twice.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = 1\n'
                    '[overrides]\n"frame.carry_over" = true\n[overrides.frame]\ncarry_over = false\n'
                    '[levers]\n"frame.earmark_lte_share" = [0.0, 0.5]\n[levers.frame]\nearmark_lte_share = [0.1, 0.2]\n'
                    '[uncertainties]\n"market.income_index" = { scale = [0.9, 1.1] }\n'
                    '[uncertainties.market]\nincome_index = { scale = [0.8, 1.2] }\n'
                    '[design]\nbaseline = { "frame.earmark_lte_share" = 0.0, frame = { earmark_lte_share = 0.5 } }\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    lines = str(info.value).splitlines()
    assert lines == [
        f'{path}: overrides.frame.carry_over: given twice, as "frame.carry_over" in [overrides] and as carry_over in '
        '[overrides.frame]: give it once',
        f'{path}: levers.frame.earmark_lte_share: given twice, as "frame.earmark_lte_share" in [levers] and as '
        'earmark_lte_share in [levers.frame]: give it once',
        f'{path}: uncertainties.market.income_index: given twice, as "market.income_index" in [uncertainties] and as '
        'income_index in [uncertainties.market]: give it once',
        f'{path}: design.baseline.frame.earmark_lte_share: given twice, as "frame.earmark_lte_share" in '
        '[design.baseline] and as earmark_lte_share in [design.baseline.frame]: give it once'], lines


def test_a_rule_of_the_whole_scenario_is_named_under_the_override(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text(f'base = "{DRAMMEN.as_posix()}"\n[overrides]\n"market.price_index" = {{2015 = 1.0}}\n')
    with pytest.raises(ScenarioError) as info:
        sw.load(path)
    assert str(info.value) == (f"{path}: overrides.market.price_index: the first dated value (2015-01) comes after "
                               "the period start (2010-01); give a value in force at the start")


def _lines(path, keep):
    path.write_text("".join(keep(path.read_text().splitlines(keepends=True))))


@pytest.mark.parametrize("name, damage, commands, fragment", [
    ("yearly.csv", lambda p: _lines(p, lambda lines: lines[:-1]), ("compare", "report"),
     "damaged or incomplete (no row for point 7, replication 1, year 2013; it needs one for every point × "
     "replication × year)"),
    ("yearly.csv", lambda p: _lines(p, lambda lines: [",".join(line.split(",")[:5]).rstrip("\n") + "\n"
                                                      for line in lines]),
     ("compare", "report"), "not a table written by lte (it lacks the columns new_owners"),
    ("yearly.csv", lambda p: p.write_bytes(p.read_bytes()[:-25]), ("compare", "report"),
     "damaged or incomplete (its last line is cut short"),
    ("comparison.csv", lambda p: p.write_bytes(b"point,year\n0,20\r10\n"), ("report",),
     "not a table written by lte (no outcome column)"),
    ("comparison.csv", lambda p: p.write_bytes(bytes(range(256)) * 4), ("report",),
     "not a table written by lte (it holds binary data"),
    # cut inside its header, after the levers' first letters
    ("points.csv", lambda p: p.write_text(p.read_text().splitlines()[0][:-3]), ("report",),
     "damaged or incomplete (its last line is cut short"),
])
def test_a_damaged_sweep_table_is_named_by_compare_and_report(reference, tmp_path, name, damage, commands, fragment):
    """A table of a sweep folder cut short, with a row missing, without its columns or binary: lte compare of two
    of its points and lte report refuse it in one line naming the file (exit 2), and write nothing."""
    import shutil

    out = tmp_path / "sweep"
    shutil.copytree(reference[0], out)
    damage(out / name)
    for command in commands:
        args = ["compare", f"{out}:0", f"{out}:1"] if command == "compare" else ["report", str(out)]
        r = CliRunner().invoke(cli, args)
        assert r.exit_code == 2 and "Traceback" not in r.output, (command, r.output, r.exception)
        assert f"{out}/{name}: {fragment}" in r.output and len(r.output.strip().splitlines()) == 1, (command, r.output)
    assert not (out / "report.html").exists() and not (out / "charts").exists()
