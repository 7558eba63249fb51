"""The command line: runs, determinism, and every user-error path (exit 2, one message, nothing written)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim import scenario as sc
from sim.cli import cli
from sim.errors import OutputError, UserError
from sim.outputs import locked_dir

from .conftest import DRAMMEN, copy_drammen, write_variant

SHORT = '[period]\nend = "2012-12"\n'


@pytest.fixture()
def short_file(tmp_path):
    return write_variant(tmp_path, SHORT, "short.toml")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_run_writes_all_files(tmp_path, short_file):
    out = tmp_path / "out"
    r = invoke("run", short_file, "-n", 2, "--out", out, "--events")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["budget.csv", "events.csv", "loans.csv", "manifest.json", "monthly.csv", "summary.csv", "yearly.csv"]
    manifest = json.loads((out / "manifest.json").read_text())
    for key in ("scenario", "scenario_files_sha256", "seed", "replications", "package_version", "command", "started", "finished"):
        assert key in manifest
    assert manifest["replications"] == 2 and manifest["scenario"]["period"]["end"] == "2012-12"


def test_run_says_which_values_came_from_the_fit(tmp_path, short_file):
    """A planner who edits a fitted key in the file that names the fit sees no effect; the run says why."""
    fitted = len(sc.load(short_file).fitted_keys)
    assert fitted > 0
    r = invoke("run", short_file, "-n", 2, "--out", tmp_path / "a")
    assert r.exit_code == 0 and f"{fitted} behavioural values from the fit" in r.output
    assert "(2 draws from its posterior)" in r.output
    r = invoke("run", short_file, "-n", 2, "--parameter-draws", 0, "--out", tmp_path / "b")
    assert "(its estimates)" in r.output
    no_fit = write_variant(tmp_path, "[calibration]\nfitted = \"\"\n", "no_fit.toml", base=short_file)
    r = invoke("run", no_fit, "-n", 1, "--out", tmp_path / "c")
    assert r.exit_code == 0 and "from the fit" not in r.output


def test_parameter_draws_counts_what_is_used_and_needs_a_fit(tmp_path, short_file):
    r = invoke("run", short_file, "-n", 2, "--parameter-draws", 5, "--out", tmp_path / "a")
    assert r.exit_code == 0 and "(2 draws from its posterior, one per replication; 5 were asked for)" in r.output
    assert len(json.loads((tmp_path / "a" / "manifest.json").read_text())["parameter_draws"]) == 2
    r = invoke("run", short_file, "-n", 2, "--out", tmp_path / "b")  # the same draws as when 5 are asked for
    assert (tmp_path / "a" / "yearly.csv").read_bytes() == (tmp_path / "b" / "yearly.csv").read_bytes()
    no_fit = write_variant(tmp_path, "[calibration]\nfitted = \"\"\n", "no_fit.toml", base=short_file)
    for n in (3, 0):
        r = invoke("run", no_fit, "-n", 1, "--parameter-draws", n, "--out", tmp_path / "c")
        _assert_user_error(r, f"{no_fit}: --parameter-draws: the scenario names no fit (calibration.fitted)")
    assert not (tmp_path / "c").exists()
    # a fit whose every value the scenario sets itself leaves nothing to draw
    (tmp_path / "one.toml").write_text('[estimate]\n"programme.buy_own_share" = 0.25\n[posterior]\n'
                                       'weights = [0.5, 0.5]\n"programme.buy_own_share" = [0.2, 0.3]\n')
    fitted = write_variant(tmp_path, '[calibration]\nfitted = "one.toml"\n', "fitted.toml", base=short_file)
    own = write_variant(tmp_path, '[programme]\nbuy_own_share = 0.6\n', "own.toml", base=fitted)
    r = invoke("run", own, "-n", 1, "--parameter-draws", 2, "--out", tmp_path / "d")
    _assert_user_error(r, f"{own}: --parameter-draws: the scenario sets every value its fit")
    assert not (tmp_path / "d").exists()


def test_counts_of_one_are_singular(tmp_path, short_file):
    r = invoke("run", short_file, "-n", 1, "--out", tmp_path / "r")
    assert r.exit_code == 0 and ": 1 replication, seed" in r.output and "(1 draw from its posterior)" in r.output
    sweep = tmp_path / "one.toml"
    sweep.write_text(f'base = "{short_file.as_posix()}"\nreplications = 1\n')
    for args in (["validate", sweep], ["sweep", sweep, "--workers", 1, "--out", tmp_path / "s"]):
        r = invoke(*args)
        assert r.exit_code == 0 and "1 point x 1 replication" in r.output and "replications" not in r.output, r.output
    assert "= 1 run;" in r.output


def test_same_seed_same_bytes_other_seed_differs(tmp_path, short_file):
    outs = []
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        out = tmp_path / name
        assert invoke("run", short_file, "-n", 2, "--seed", seed, "--out", out, "--events").exit_code == 0
        outs.append(out)
    for f in ("monthly.csv", "yearly.csv", "summary.csv", "budget.csv", "loans.csv", "events.csv"):
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
        assert (outs[0] / f).read_bytes() != (outs[2] / f).read_bytes(), f


def _assert_user_error(result, *fragments):
    assert result.exit_code == 2, result.output
    text = result.output
    assert "Traceback" not in text
    for frag in fragments:
        assert frag in text, text


@pytest.mark.parametrize("body, fragments", [
    ("[frame]\npatiense_months = 3\n", ["frame.patiense_months", "unknown key", "did you mean 'patience_months'"]),
    ("[frame]\nyearly_nok = -1\n", ["frame.yearly_nok", "at least 0"]),
    ("[programme]\nbuy_own_share = 1.2\n", ["programme.buy_own_share", "at most 1"]),
    ("[period]\nprogramme_start = \"2031-01\"\n", ["period", "out of order"]),
    ("[tilskudd]\nbudget_nok_year = {2012 = 1, 2010 = 2}\n", ["tilskudd.budget_nok_year", "out of order"]),
])
def test_bad_scenario_exit_2_nothing_written(tmp_path, body, fragments):
    path = write_variant(tmp_path, body, "bad.toml")
    out = tmp_path / "out"
    for cmd in (["validate", path], ["run", path, "--out", out]):
        r = invoke(*cmd)
        _assert_user_error(r, "bad.toml", *fragments)
    assert not out.exists()


def test_missing_and_malformed_file(tmp_path):
    _assert_user_error(invoke("run", tmp_path / "nope.toml", "--out", tmp_path / "o"), "nope.toml", "file not found")
    bad = tmp_path / "mal.toml"
    bad.write_text("name = 'x'\n[stock\n")
    _assert_user_error(invoke("validate", bad), "mal.toml", "not valid TOML")
    assert not (tmp_path / "o").exists()


def test_missing_fit_file_names_the_scenario_and_its_key(tmp_path, short_file):
    path = write_variant(tmp_path, '[calibration]\nfitted = "nosuch_fit.toml"\n', "badfit.toml", base=short_file)
    r = invoke("run", path, "-n", 1, "--out", tmp_path / "o")
    _assert_user_error(r, f"{path}: calibration.fitted: fitted parameter file {tmp_path / 'nosuch_fit.toml'} not found")
    assert not (tmp_path / "o").exists()


def _unblock_after(fifo, seconds=10):
    """Open the pipe for writing after a while, so that a loader that waits on it fails instead of hanging."""
    import threading

    def open_and_close():
        time.sleep(seconds)
        for _ in range(600):  # (a reader is there only while one waits: try again and again for a minute)
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            time.sleep(0.1)
    threading.Thread(target=open_and_close, daemon=True).start()


@pytest.mark.skipif(not hasattr(os, "mkfifo") or not Path("/dev/null").exists(), reason="needs pipes and /dev/null")
def test_a_device_a_pipe_or_a_folder_is_refused_before_reading(tmp_path):
    """A device (/dev/zero is read for ever) or a pipe (waits for a writer) is no TOML file: refused, not read,
    whether given on the command line or named by extends, calibration.fitted or a sweep's base."""
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    _unblock_after(fifo)
    (tmp_path / "adir.toml").mkdir()
    rule = "is not a regular file (a device, a pipe or a socket)"
    for f in ("/dev/null", fifo):
        _assert_user_error(invoke("validate", f), f"{f}: {rule}")
        _assert_user_error(invoke("run", f, "--out", tmp_path / "o"), f"{f}: {rule}")
    (tmp_path / "sweep.toml").write_text('base = "/dev/null"\n[levers]\n"programme.advisers" = [1, 2]\n')
    _assert_user_error(invoke("validate", tmp_path / "sweep.toml"), "sweep.toml: base: base scenario /dev/null " + rule)
    for base, problem in (("fifo.toml", rule), ("adir.toml", "is a folder, not a file")):
        variant = tmp_path / "variant.toml"
        variant.write_text(f'extends = "{base}"\n')
        _assert_user_error(invoke("validate", variant),
                           f"{variant}: extends: base file {tmp_path / base} {problem}")
    for fitted, problem in (("/dev/null", rule), (str(tmp_path), "is a folder, not a file")):
        path = copy_drammen(tmp_path, "fitted.toml")
        text = path.read_text(encoding="utf-8")
        path.write_text(re.sub(r'^fitted = ".*"', f'fitted = "{fitted}"', text, flags=re.M), encoding="utf-8")
        _assert_user_error(invoke("validate", path),
                           f"{path}: calibration.fitted: fitted parameter file {fitted} {problem}")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("command, file, fragment", [
    ("run", DRAMMEN.parent / "frame_sweep.toml", "is a sweep file (it names a base scenario, or has levers, "
                                                 "uncertainties or a design), not a scenario; run it with lte sweep"),
    ("sweep", DRAMMEN, "is a scenario file (it names no base scenario), not a sweep file; run it with lte run"),
    ("sensitivity", DRAMMEN, "is a scenario file"),
])
def test_sweep_and_scenario_files_are_told_apart(tmp_path, command, file, fragment):
    r = invoke(command, file, "--out", tmp_path / "o")
    _assert_user_error(r, f"{file}: {fragment}")
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("until", ["2013-13", "abc", "2013-9", "2013", "2013-09-15", ""])
def test_calibrate_until_must_be_a_month(tmp_path, until):
    targets = DRAMMEN.parent.parent / "calibration" / "targets" / "drammen.csv"
    r = invoke("calibrate", DRAMMEN, "--targets", targets, "--out", tmp_path / "fit.toml", "--until", until)
    _assert_user_error(r, f"--until {until}: must be a month written YYYY-MM")
    assert len(r.output.strip().splitlines()) == 1 and list(tmp_path.iterdir()) == []


def test_calibrate_names_a_targets_file_with_nothing_to_fit(tmp_path):
    """A targets file with its header and no figures, or with none up to --until, is named in one line."""
    targets = tmp_path / "t.csv"
    targets.write_text("date,quantity,value,lower,upper,scope,source\n")
    r = invoke("calibrate", DRAMMEN, "--targets", targets, "--out", tmp_path / "o" / "fit.toml")
    _assert_user_error(r, f"{targets}: no targets to fit (the file lists no figures)")
    real = DRAMMEN.parent.parent / "calibration" / "targets" / "drammen.csv"
    r = invoke("calibrate", DRAMMEN, "--targets", real, "--out", tmp_path / "o" / "fit.toml", "--until", "2010-02")
    _assert_user_error(r, f"{real}: no targets to fit up to --until 2010-02")
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "o").exists()


CALIBRATE_QUICK = ("--particles", 10, "--generations", 1, "--replications", 1, "--workers", 1)


@pytest.mark.parametrize("case", ["scenario", "targets", "other", "beside"])
def test_calibrate_out_never_replaces_an_input_or_a_file_that_is_not_a_fit(tmp_path, short_file, case):
    """--out replaces only an earlier fit (a resume or a refit writes over it): never the scenario file, the
    targets file (also not through a file written beside the fit) or a file lte calibrate did not write."""
    targets = tmp_path / ("fit.targets.csv" if case == "beside" else "t.csv")
    targets.write_text("date,quantity,value,lower,upper,scope,source\n2012-06-30,cumulative_owners,20,,,leie_til_eie,x\n")
    out = {"scenario": short_file, "targets": targets, "other": tmp_path / "notes.toml",
           "beside": tmp_path / "fit.toml"}[case]
    if case == "other":
        out.write_text("# my notes\nx = 1\n")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = invoke("calibrate", short_file, "--targets", targets, "--out", out, *CALIBRATE_QUICK)
    rule = {"scenario": f"--out: this is the scenario file {short_file}",
            "targets": f"--out: this is the targets file {targets}",
            "other": "--out: the file exists and is not a fit written by lte calibrate",
            "beside": f"--out: fit.targets.csv, written beside it, is the targets file {targets}"}[case]
    _assert_user_error(r, f"{out}: {rule}")
    assert len(r.output.strip().splitlines()) == 1
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # nothing written, nothing changed


def test_calibrate_out_may_be_an_earlier_fit(tmp_path, short_file):
    """A file lte calibrate wrote is replaced (how a fit is resumed or redone); a file the scenario extends is not."""
    from sim import calibration as cal

    fit = tmp_path / "fit.toml"
    fit.write_text(f"{cal.FIT_HEADER}; do not edit by hand.\n[fit]\n")
    cal.check_out(fit, {"scenario file": [short_file, DRAMMEN], "targets file": [tmp_path / "t.csv"]})
    with pytest.raises(UserError, match="this is the scenario file"):
        cal.check_out(DRAMMEN, {"scenario file": [short_file, DRAMMEN], "targets file": []})


def test_non_empty_out_is_refused_unless_overwrite(tmp_path, short_file):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    _assert_user_error(invoke("run", short_file, "-n", 1, "--out", out), "not empty", "--overwrite")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]
    assert invoke("run", short_file, "-n", 1, "--out", out, "--overwrite").exit_code == 0
    assert (out / "mine.txt").read_text() == "keep me" and (out / "monthly.csv").exists()


RUN_FILES = ["budget.csv", "loans.csv", "manifest.json", "monthly.csv", "summary.csv", "yearly.csv"]


def test_overwrite_leaves_only_the_new_runs_results_and_the_users_own_files(tmp_path, short_file, monkeypatch):
    out = tmp_path / "out"
    assert invoke("run", short_file, "-n", 2, "--events", "--csv-dialect", "nb", "--out", out).exit_code == 0
    assert invoke("report", out).exit_code == 0
    (out / "notes.txt").write_text("keep me")
    (out / "charts" / "my_chart.png").write_bytes(b"mine")
    r = invoke("run", short_file, "-n", 1, "--seed", 5, "--overwrite", "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(RUN_FILES + ["charts", "notes.txt"])
    assert [p.name for p in (out / "charts").iterdir()] == ["my_chart.png"]
    assert json.loads((out / "manifest.json").read_text())["seed"] == 5
    assert not (out / "yearly.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # plain, not the old nb
    # a run interrupted before its files are written leaves the earlier results as they were
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("sim.runner.run", interrupted)
    assert invoke("run", short_file, "-n", 1, "--events", "--overwrite", "--out", out).exit_code == 130
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before


def test_overwrite_of_a_sweep_folder_leaves_only_the_run(tmp_path, short_file):
    sweep, out = tmp_path / "one.toml", tmp_path / "out"
    sweep.write_text(f'base = "{short_file.as_posix()}"\nreplications = 1\n'
                     '[levers]\n"frame.earmark_lte_share" = [0.0, 0.5]\n')
    assert invoke("sweep", sweep, "--workers", 1, "--out", out).exit_code == 0
    assert invoke("report", out).exit_code == 0
    assert {"runs", "charts", "sweep.json", "points.csv", "comparison.csv", "report.html"} <= {p.name for p in out.iterdir()}
    r = invoke("run", short_file, "-n", 1, "--overwrite", "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.iterdir()) == RUN_FILES


def test_overwrite_leaves_a_folder_lte_did_not_write_as_it_is(tmp_path, short_file):
    """A folder of the user's (no manifest.json or sweep.json) whose files happen to have lte's names: --overwrite
    adds the run's files and removes none of the user's."""
    out = tmp_path / "mine"
    (out / "charts").mkdir(parents=True)
    (out / "runs").mkdir()
    (out / "charts" / "frame.png").write_bytes(b"my chart")
    (out / "runs" / "2023.yearly.csv").write_text("my table")
    (out / "report.html").write_text("my report")
    assert invoke("run", short_file, "-n", 1, "--overwrite", "--out", out).exit_code == 0
    assert (out / "charts" / "frame.png").read_bytes() == b"my chart"
    assert (out / "runs" / "2023.yearly.csv").read_text() == "my table"
    assert (out / "report.html").read_text() == "my report" and (out / "manifest.json").is_file()


def test_the_system_refusing_a_write_is_one_line(tmp_path, short_file):
    """A file where lte needs a folder (the sweep's runs/), or a damaged sweep.json: one line, exit 2."""
    sweep, out = tmp_path / "one.toml", tmp_path / "out"
    sweep.write_text(f'base = "{short_file.as_posix()}"\nreplications = 1\n'
                     '[levers]\n"frame.earmark_lte_share" = [0.0, 0.5]\n')
    out.mkdir()
    (out / "runs").write_text("a file, not a folder")
    r = invoke("sweep", sweep, "--workers", 1, "--overwrite", "--out", out)
    _assert_user_error(r, "runs")
    (out / "runs").unlink()
    (out / "sweep.json").write_text("")  # damaged
    _assert_user_error(invoke("sweep", sweep, "--workers", 1, "--out", out), "damaged sweep.json")
    assert invoke("sweep", sweep, "--workers", 1, "--overwrite", "--out", out).exit_code == 0


def test_a_scheduler_address_that_is_not_one_is_one_line(tmp_path, short_file):
    sweep = tmp_path / "one.toml"
    sweep.write_text(f'base = "{short_file.as_posix()}"\nreplications = 1\n'
                     '[levers]\n"frame.earmark_lte_share" = [0.0, 0.5]\n')
    _assert_user_error(invoke("sweep", sweep, "--scheduler", "nonsense", "--out", tmp_path / "o"), "nonsense")
    assert not (tmp_path / "o").exists()
    # a running cluster's address and a cluster started here: one or the other
    _assert_user_error(invoke("sweep", sweep, "--scheduler", "tcp://127.0.0.1:9", "--local-cluster", "--out",
                              tmp_path / "o"), "--scheduler and --local-cluster: give one")
    assert not (tmp_path / "o").exists()


def test_folder_in_use_is_refused(tmp_path, short_file):
    out = tmp_path / "out"
    with locked_dir(out):  # held by a live run (this process)
        _assert_user_error(invoke("run", short_file, "-n", 1, "--out", out, "--overwrite"),
                           f"(process {os.getpid()} on {socket.gethostname()})")
        assert sorted(p.name for p in out.iterdir()) == [".lte.lock"]
    assert not out.exists()


@pytest.mark.parametrize("left", ["", f"{socket.gethostname()} 999999999\n", f"{socket.gethostname()} 1\n"])
def test_what_a_killed_run_left_is_no_obstacle(tmp_path, short_file, left):
    """A killed run leaves its lock file (naming a process that is gone, or another one that now has its number,
    or nothing if it died at once) and files under temporary names: the next run into the folder goes ahead, and
    what was left unfinished is removed, in a new folder (nothing else in it) as in a folder of results."""
    out = tmp_path / "out"
    (out / "runs").mkdir(parents=True)
    (out / ".lte.lock").write_text(left)
    (out / ".monthly.csv.tmp-999999999").write_text("replication,month\n0,20")  # cut short
    (out / "runs" / ".0a1b.yearly.csv.tmp-999999999").write_text("")
    r = invoke("run", short_file, "-n", 1, "--out", out)  # (not "not empty": what is there is a dead run's)
    assert r.exit_code == 0, r.output
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert not [n for n in names if "tmp" in n] and ".lte.lock" not in names and "monthly.csv" in names, names
    # in a folder of results: a dead run's temporary files go; the user's own, and a live command's, stay
    (out / ".summary.csv.tmp-999999999").write_text("cut")
    (out / ".notes.txt.tmp-1").write_text("mine")  # not a name of lte's
    (out / ".summary.csv.tmp-draft").write_text("mine")  # no process id
    (out / ".budget.csv.tmp-1").write_text("being written")  # by a live process (as by lte compare --out)
    r = invoke("run", short_file, "-n", 1, "--out", out, "--overwrite")
    assert r.exit_code == 0, r.output
    left_over = sorted(p.name for p in out.glob(".*tmp*"))
    assert left_over == sorted([".notes.txt.tmp-1", ".summary.csv.tmp-draft", ".budget.csv.tmp-1"])


def test_names_that_only_look_like_a_process_id_are_left_alone(tmp_path, short_file):
    """A hidden file of the user's named like lte's unfinished files but with a date or another digit after .tmp-
    is not lte's: it stays, and the command runs (it ended in a traceback: no such process id)."""
    out = tmp_path / "out"
    out.mkdir()
    names = (".yearly.csv.tmp-20240101120000", ".yearly.csv.tmp-4294967296", ".summary.csv.tmp-\u00b2")
    for name in names:
        (out / name).write_text("mine")
    r = invoke("run", short_file, "-n", 1, "--out", out, "--overwrite")
    assert r.exit_code == 0, r.output
    assert all((out / name).exists() for name in names)


def test_a_users_folder_keeps_files_that_look_like_a_dead_runs(tmp_path, short_file):
    """In a folder that is not lte's (a file of the user's in it), nothing is removed, whatever its names: the run
    is refused as the folder is not empty."""
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / ".summary.csv.tmp-999999999").write_text("mine too")
    _assert_user_error(invoke("run", short_file, "-n", 1, "--out", out), "output folder is not empty")
    assert sorted(p.name for p in out.iterdir()) == [".summary.csv.tmp-999999999", "notes.txt"]


def test_a_folder_has_one_holder_at_a_time(tmp_path):
    """The lock is the system's lock on the open lock file: a second holder, in this process or another, is refused
    while the first holds it, and may take it once the first has let go."""
    out = tmp_path / "out"
    with locked_dir(out, allow_existing=True):
        with pytest.raises(OutputError, match="in use by another run"):
            with locked_dir(out, allow_existing=True):
                pass
        probe = ("import sys; from sim.outputs import locked_dir\n"
                 "try:\n    with locked_dir(sys.argv[1], allow_existing=True): print('held')\n"
                 "except Exception as e: print(e)")
        other = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, check=True)
        assert "in use by another run" in other.stdout
    other = subprocess.run([sys.executable, "-c", probe, str(out)], capture_output=True, text=True, check=True)
    assert other.stdout.strip() == "held"


def test_a_file_system_without_file_locks_falls_back_to_the_process_check(tmp_path, short_file, monkeypatch):
    """On a network disk without its lock service flock fails (ENOLCK): the folder is held by the lock file's
    process instead, as where the system has no file locks, and nothing is left behind."""
    import errno

    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    out = tmp_path / "deep" / "out"
    assert invoke("run", short_file, "-n", 1, "--out", out).exit_code == 0
    assert not (out / ".lte.lock").exists() and (out / "monthly.csv").exists()
    with locked_dir(out, allow_existing=True):
        _assert_user_error(invoke("run", short_file, "-n", 1, "--out", out, "--overwrite"), "in use")
    assert not (out / ".lte.lock").exists()


def test_a_run_removes_only_its_own_lock_file(tmp_path):
    """A lock file removed while its run lasts (by hand) and made again by another run is that run's: the first
    run, ending, leaves it in place."""
    out = tmp_path / "out"
    with locked_dir(out, allow_existing=True):
        (out / ".lte.lock").unlink()
        (out / ".lte.lock").write_text("another run\n")
    assert (out / ".lte.lock").read_text() == "another run\n"


def test_a_terminated_run_cleans_up_as_after_ctrl_c(tmp_path, short_file):
    """SIGTERM (a kill, a closed session, a time-out) ends a run as Ctrl-C does: no file under a temporary name,
    no lock left, the folder as it was."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "sim", "run", str(short_file), "-n", "200", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (out / ".lte.lock").exists():
        time.sleep(0.02)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted; nothing more was written" in err, err
    assert not out.exists() or not list(out.iterdir())


def test_bad_flags(tmp_path, short_file):
    for args in (["-n", 0], ["--seed", -1], ["--csv-dialect", "fr"]):
        r = invoke("run", short_file, "--out", tmp_path / "o", *args)
        assert r.exit_code == 2 and "Traceback" not in r.output
        # one line naming the command and the option, as for a mistake in a file
        assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("error: "), r.output
        assert " run: " in r.output and "--help)" in r.output  # (the program is "cli" under the test runner)
        assert args[0] in r.output
    assert not (tmp_path / "o").exists()


def test_validate_ok():
    r = invoke("validate", DRAMMEN)
    assert r.exit_code == 0 and "ok" in r.output


def test_validate_checks_every_file_and_fails_if_any_fails(tmp_path):
    """Several files: each is reported, the good and the bad (one line each), and the exit code is 2 if any is bad.
    A file saved with a byte-order mark (some Windows editors) reads as any other."""
    bom = tmp_path / "bom.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + f'extends = "{DRAMMEN.as_posix()}"\n[frame]\nyearly_nok = 150_000_000\n'.encode())
    millions = tmp_path / "millions.toml"
    millions.write_text(f'extends = "{DRAMMEN.as_posix()}"\n[frame]\nyearly_nok = 150\n')
    unquoted = tmp_path / "unquoted.toml"
    unquoted.write_text(f'extends = "{DRAMMEN.as_posix()}"\n[period]\nstart = 2010-01-01\n')
    r = invoke("validate", millions, bom, unquoted, DRAMMEN)
    _assert_user_error(r, f"{millions}: frame.yearly_nok: value is 150; amounts are in NOK",
                       f"{bom}: ok", f"{DRAMMEN}: ok",
                       f'{unquoted}: period.start: 2010-01-01 is written without quotes: write the year-month in '
                       'quotes, "2010-01"')
    assert len(r.output.strip().splitlines()) == 4, r.output


def test_console_script_and_module(tmp_path):
    exe = os.path.join(os.path.dirname(sys.executable), "lte")
    r = subprocess.run([exe, "validate", str(tmp_path / "nope.toml")], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "sim", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "run" in r.stdout


def test_output_to_a_reader_that_stopped_ends_quietly():
    """lte ... | head: when the reader has gone, lte stops without a traceback or an error message."""
    proc = subprocess.Popen([sys.executable, "-m", "sim", "validate", str(DRAMMEN)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before lte writes anything
    err = proc.stderr.read().decode()
    assert proc.wait() == 1 and err == "", err


def test_compare_with_one_replication_says_there_is_no_interval(tmp_path, short_file):
    for name in ("a", "b"):
        assert invoke("run", short_file, "-n", 1, "--parameter-draws", 0, "--out", tmp_path / name).exit_code == 0
    r = invoke("compare", tmp_path / "a", tmp_path / "b", "--out", tmp_path / "c.csv")
    assert r.exit_code == 0, r.output
    assert "nan" not in r.output and "no interval, which needs at least 2 replications" in r.output
    assert "A-B            0.0  [no interval]" in r.output
    row = (tmp_path / "c.csv").read_text().splitlines()[1]
    assert row.startswith("0,new_owners,") and row.endswith(",0,,,,,1")  # difference 0, interval and spread empty


def test_compare_out_is_checked_before_it_is_written(tmp_path, short_file):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert invoke("run", short_file, "-n", 2, "--out", out).exit_code == 0
    r = invoke("compare", a, b, "--out", tmp_path / "nowhere" / "c.csv")
    _assert_user_error(r, f"{tmp_path / 'nowhere' / 'c.csv'}: --out: {tmp_path / 'nowhere'} does not exist")
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "afile").write_text("x")
    r = invoke("compare", a, b, "--out", tmp_path / "afile" / "c.csv")
    _assert_user_error(r, f"--out: {tmp_path / 'afile'} is a file, not a folder")
    # a run's own files are never written over, not even with --overwrite
    before = {p.name: p.read_bytes() for p in a.iterdir()}
    for name in ("yearly.csv", "manifest.json", "events.csv"):
        for extra in ([], ["--overwrite"]):
            r = invoke("compare", a, b, "--out", a / name, *extra)
            _assert_user_error(r, f"{a / name}: --out: {a} holds the results of a run or sweep")
    assert {p.name: p.read_bytes() for p in a.iterdir()} == before
    # any other existing file only with --overwrite
    c = tmp_path / "c.csv"
    c.write_text("mine")
    _assert_user_error(invoke("compare", a, b, "--out", c), f"{c}: --out: the file exists", "--overwrite")
    assert c.read_text() == "mine"
    assert invoke("compare", a, b, "--out", c, "--overwrite").exit_code == 0
    assert c.read_text().startswith("year,outcome,mean,")
    # never over something that is not a plain file: the rename into place would replace it, not write into it
    (tmp_path / "adir").mkdir()
    (tmp_path / "link.csv").symlink_to(c)
    for target, why in ((tmp_path / "adir", "is a directory"), (tmp_path / "link.csv", "not a plain file"),
                        (Path(os.devnull), "not a plain file")):
        _assert_user_error(invoke("compare", a, b, "--out", target, "--overwrite"), why)
    assert (tmp_path / "adir").is_dir() and (tmp_path / "link.csv").is_symlink()


@pytest.mark.parametrize("body", [
    'name = "x"\nreplications = 2\n[levers]\n"frame.earmark_lte_share" = [0.0, 0.25]\n',
    '[uncertainties]\n"market.price_index" = { scale = [0.8, 1.25] }\n',
    '[design]\nkind = "lhs"\n',
])
def test_validate_knows_a_sweep_file_without_its_base(tmp_path, body):
    """A file with [levers], [uncertainties] or [design] is a sweep file even if it lacks its base: validate says
    what lte sweep says, and lte run that it is a sweep file, not every key a scenario would need."""
    path = tmp_path / "nobase.toml"
    path.write_text(body)
    for command in ("validate", "sweep"):
        r = invoke(command, path)
        _assert_user_error(r, f"{path}: base: required")
        assert len(r.output.strip().splitlines()) == 1, r.output
    r = invoke("run", path)
    _assert_user_error(r, f"{path}: is a sweep file")
    assert len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("args, option", [
    (["run", DRAMMEN, "-n", 9223372036854775807], "'-n' / '--replications'"),
    (["run", DRAMMEN, "-n", 100_001], "'-n' / '--replications'"),
    (["sensitivity", DRAMMEN.parent / "uncertainty_sweep.toml", "--samples", 4294967296], "'--samples'"),
    (["calibrate", DRAMMEN, "--targets", "t.csv", "--out", "f.toml", "--replications", 10**12], "'--replications'"),
    (["run", DRAMMEN, "--out", ""], "'--out': must not be empty; leave the option out for the default"),
    (["sweep", DRAMMEN.parent / "frame_sweep.toml", "--out", ""], "'--out': must not be empty"),
    (["sensitivity", DRAMMEN.parent / "uncertainty_sweep.toml", "--out", ""], "'--out': must not be empty"),
    (["compare", "a", "b", "--out", ""], "'--out': must not be empty"),
    (["calibrate", DRAMMEN, "--targets", "t.csv", "--out", ""], "'--out': must not be empty (see"),
], ids=["run-n", "run-n-100001", "sensitivity-samples", "calibrate-replications", "run-out", "sweep-out",
        "sensitivity-out", "compare-out", "calibrate-out"])
def test_sizes_and_empty_out_are_refused_by_the_options(tmp_path, monkeypatch, args, option):
    monkeypatch.chdir(tmp_path)
    r = invoke(*args)
    _assert_user_error(r, option)
    assert len(r.output.strip().splitlines()) == 1 and r.output.startswith("error: "), r.output
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the default outputs/ folder


def test_the_options_bounds_are_the_librarys():
    """The command line writes its bounds out (it starts without loading the library's dependencies); they must
    be the bounds the scenario schema and the sweep loader apply."""
    from sim import cli as command_line
    from sim import scenario as sc
    from sim import sweep as sw

    assert command_line.MAX_REPLICATIONS == sc.MAX_REPLICATIONS
    assert command_line.MAX_SAMPLES == sw.MAX_SAMPLES


def test_a_failed_sweep_leaves_no_folder_behind(tmp_path, monkeypatch):
    """An output folder whose name the system refuses (too long): one line, and no outputs/ folder is left."""
    monkeypatch.chdir(tmp_path)
    sweep = tmp_path / "long.toml"
    sweep.write_text(f'name = "{"a" * 300}"\nbase = "{DRAMMEN.as_posix()}"\nreplications = 1\n'
                     '[overrides]\n"period.end" = "2011-12"\n')
    r = invoke("sweep", sweep, "--workers", 1)
    _assert_user_error(r, "cannot create the output folder")
    assert len(r.output.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["long.toml"]
    r = invoke("run", DRAMMEN, "-n", 1, "--out", tmp_path / "a" / "b" / ("c" * 300))
    _assert_user_error(r, "cannot create the output folder")
    assert [p.name for p in tmp_path.iterdir()] == ["long.toml"]
