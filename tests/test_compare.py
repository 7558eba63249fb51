"""Paired comparison: hand-worked t-intervals, pairing by replication, whole-period totals, lte compare on runs."""

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sim.cli import cli
from sim.compare import paired_difference, period_totals
from sim.runner import yearly

from .conftest import write_variant


def _table(values, year=2011, outcome="new_owners"):
    return pd.DataFrame({"replication": range(len(values)), "year": year, outcome: values})


def test_paired_interval_by_hand():
    # differences 2, 3, 2: mean 7/3, sd sqrt(1/3), se 1/3, t(0.95, 2 df) = 2.919986
    d = paired_difference(_table([3, 5, 4]), _table([1, 2, 2]), ["new_owners"])
    row = d.iloc[0]
    assert (row["mean"], row["baseline_mean"], row["replications"]) == (4, pytest.approx(5 / 3), 3)
    assert row["difference"] == pytest.approx(7 / 3)
    assert row["difference_low90"] == pytest.approx(7 / 3 - 2.919986 / 3, abs=1e-5)
    assert row["difference_high90"] == pytest.approx(7 / 3 + 2.919986 / 3, abs=1e-5)
    # the pairs' own spread: percentiles 5 and 95 of 2, 3, 2 (linear interpolation: 2 and 2.9)
    assert (row["difference_p5"], row["difference_p95"]) == (pytest.approx(2.0), pytest.approx(2.9))


def test_rows_are_paired_by_replication_not_by_order():
    a = _table([10.0, 20.0, 30.0, 40.0])
    b = _table([9.0, 19.0, 29.0, 39.0])  # every replication exactly 1 lower: the paired interval has width 0
    d = paired_difference(a, b.iloc[::-1], ["new_owners"]).iloc[0]
    assert d["difference"] == 1 and d["difference_low90"] == 1 and d["difference_high90"] == 1
    # an unpaired comparison of the same numbers would be wide; pairing on the wrong rows is visibly wrong
    shuffled = b.assign(replication=[1, 0, 3, 2])
    assert paired_difference(a, shuffled, ["new_owners"]).iloc[0]["difference_high90"] > 5


def test_period_totals_sum_flows_and_average_waits():
    # replication 0: one loan granted after 1 month in 2011, three after 9 months between them in 2012: a mean
    # wait of 10 / 4 = 2.5 months per loan (the yearly means 1 and 3 would average to 2); replication 1: none in
    # 2011 (its yearly mean is written 0), two after 4 months in 2012: 2.0 (not 1.0); the line averaged over years
    y = pd.DataFrame({"replication": [0, 0, 1, 1], "year": [2011, 2012, 2011, 2012],
                      "new_owners": [2, 3, 4, 5], "frame_wait_months_mean": [1.0, 3.0, 0.0, 2.0],
                      "frame_wait_months_sum": [1.0, 9.0, 0.0, 4.0], "frame_approved": [1, 3, 0, 2],
                      "waiting_for_frame": [4, 6, 0, 1]})
    t = period_totals(y).set_index("replication")
    assert list(t["new_owners"]) == [5, 9] and list(t["frame_wait_months_mean"]) == [2.5, 2.0]
    assert list(t["waiting_for_frame"]) == [5.0, 0.5]
    assert set(t["year"]) == {0}
    # no loan granted in the whole period: no mean wait (empty), not a wait of 0
    none = y.assign(frame_wait_months_sum=0.0, frame_approved=0, frame_wait_months_mean=float("nan"))
    assert period_totals(none)["frame_wait_months_mean"].isna().all()


def test_a_year_without_a_loan_granted_has_no_mean_wait_and_compares_where_both_have_one():
    """The yearly mean wait is empty in a year no loan was granted (not 0, which reads as 'no wait'); a
    comparison pairs the replications in which both runs granted loans that year."""
    monthly = pd.DataFrame({"replication": 0, "month": ["2011-01", "2011-02", "2012-01"],
                            "frame_wait_months_sum": [0.0, 0.0, 6.0], "frame_approved": [0, 0, 2],
                            "new_owners_municipal": 0, "new_owners_private": 0})
    y = yearly(monthly)
    assert pd.isna(y["frame_wait_months_mean"].iloc[0]) and y["frame_wait_months_mean"].iloc[1] == 3.0
    a = pd.DataFrame({"replication": [0, 1, 2], "year": 2011, "frame_wait_months_mean": [2.0, float("nan"), 4.0]})
    b = pd.DataFrame({"replication": [0, 1, 2], "year": 2011, "frame_wait_months_mean": [1.0, 5.0, 1.0]})
    row = paired_difference(a, b, outcomes=["frame_wait_months_mean"]).iloc[0]
    # pairs 0 and 2: differences 1 and 3, mean 2; each side's mean over the same pairs (2 and 4; 1 and 1)
    assert (row["difference"], row["replications"], row["mean"], row["baseline_mean"]) == (2.0, 2, 3.0, 1.0)
    assert row["difference_low90"] < 2.0 < row["difference_high90"]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    small = write_variant(tmp, '[period]\nend = "2012-12"\n[frame]\nyearly_nok = 20_000_000\n', "small.toml")
    big = write_variant(tmp, '[period]\nend = "2012-12"\n[frame]\nyearly_nok = 150_000_000\n', "big.toml")
    own = write_variant(tmp, '[period]\nend = "2012-12"\n[programme]\ndropout_probability = 0.3\n', "own.toml")
    half = write_variant(tmp, '[period]\nend = "2012-06"\n[frame]\nyearly_nok = 150_000_000\n', "half.toml")
    for f, name, extra in ((small, "small", []), (big, "big", []), (big, "big_seed9", ["--seed", "9"]),
                           (big, "big_nb", ["--csv-dialect", "nb"]), (big, "big_estimates", ["--parameter-draws", "0"]),
                           (small, "small_estimates", ["--parameter-draws", "0"]), (own, "own", []),
                           (big, "big_2draws", ["--parameter-draws", "2"]), (half, "half", []),
                           (small, "small_2draws", ["--parameter-draws", "2"]),
                           (small, "small_1draw", ["--parameter-draws", "1"]), (big, "big_1draw", ["--parameter-draws", "1"])):
        r = CliRunner().invoke(cli, ["run", str(f), "-n", "3", "--seed", "5", "--out", str(tmp / name), *extra])
        assert r.exit_code == 0, r.output
    return tmp


def test_compare_two_runs(two_runs, tmp_path):
    out = tmp_path / "c.csv"
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big_nb"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "startlan_nok" in r.output and "range" in r.output
    c = pd.read_csv(out)
    ya, yb = pd.read_csv(two_runs / "small" / "yearly.csv"), pd.read_csv(two_runs / "big" / "yearly.csv")
    diff = ya.groupby("replication")["startlan_nok"].sum() - yb.groupby("replication")["startlan_nok"].sum()
    row = c[(c["year"] == 0) & (c["outcome"] == "startlan_nok")].iloc[0]
    assert row["difference"] == pytest.approx(diff.mean(), abs=1)
    assert row["difference"] < 0  # a smaller frame pays out less
    # NOK in whole kroner, as in every other table (other outcomes keep their decimals)
    nok = c[c["outcome"].isin(["startlan_nok", "startlan_nok_lte", "startlan_nok_other", "tilskudd_nok",
                               "frame_expired_nok", "loss_nok"])]
    values = ["mean", "baseline_mean", "difference", "difference_low90", "difference_high90"]
    assert len(nok) and (nok[values].dropna() % 1 == 0).all().all()
    assert (c[c["outcome"] == "new_owners"]["difference_high90"] % 1 != 0).any()
    per_year = c[(c["year"] == 2012) & (c["outcome"] == "new_owners")].iloc[0]
    d12 = (ya[ya["year"] == 2012].set_index("replication")["new_owners"]
           - yb[yb["year"] == 2012].set_index("replication")["new_owners"])
    assert per_year["difference"] == pytest.approx(d12.mean())
    half = 2.919986 * d12.std(ddof=1) / np.sqrt(3)
    assert per_year["difference_high90"] == pytest.approx(d12.mean() + half, abs=1e-5)


def test_compare_refuses_unpaired_runs(two_runs):
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big_seed9")])
    assert r.exit_code == 2 and "different seeds" in r.output
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "missing")])
    assert r.exit_code == 2 and "not a finished run" in r.output
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), f"{two_runs / 'big'}:1"])
    assert r.exit_code == 2 and "is a run, not a sweep" in r.output
    # the same years, but one run stops in June: its last year and its whole-period totals are not comparable
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "half"), str(two_runs / "big")])
    assert r.exit_code == 2 and "2010-01 to 2012-06" in r.output and "2010-01 to 2012-12" in r.output, r.output
    assert "same period" in r.output and len(r.output.strip().splitlines()) == 1


def test_compare_refuses_runs_with_different_replications(two_runs, tmp_path):
    """Replication r of one run is paired with replication r of the other: a run of two replications and one of
    three (the same scenario file and seed) have a replication without a partner, so they are refused (exit 2, one
    line) rather than compared over the replications they share."""
    big = two_runs / "big.toml"
    r = CliRunner().invoke(cli, ["run", str(big), "-n", "2", "--seed", "5", "--out", str(tmp_path / "big_n2")])
    assert r.exit_code == 0, r.output
    for a, b in ((two_runs / "small", tmp_path / "big_n2"), (tmp_path / "big_n2", two_runs / "big")):
        r = CliRunner().invoke(cli, ["compare", str(a), str(b)])
        assert r.exit_code == 2 and "different replications" in r.output and "--replications" in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1


def test_compare_refuses_runs_with_different_draws_from_the_posterior(two_runs):
    """lte run draws behavioural values from the fit's posterior by default and sweeps use its estimates: the same
    policy gives other levels, so replication r of one is not replication r of the other."""
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big_estimates")])
    assert r.exit_code == 2 and "not paired" in r.output and "--parameter-draws 0" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    # three draws against two: replication 2 ran with the third draw on one side and the first on the other
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big_2draws")])
    assert r.exit_code == 2 and "replication 2 ran with different draws" in r.output, r.output
    # the estimates on both sides are paired
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small_estimates"), str(two_runs / "big_estimates")])
    assert r.exit_code == 0, r.output
    # a variant's own value of a fitted key is a difference between scenarios, like a lever: still paired
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "own"), str(two_runs / "big")])
    assert r.exit_code == 0, r.output


def test_replications_that_share_a_draw_are_averaged_before_the_interval(two_runs, tmp_path):
    """Three replications with two posterior draws: replications 0 and 2 ran with draw 0, so they are not
    independent; the comparison averages them first and its interval is over the 2 draws (1 degree of freedom)."""
    out = tmp_path / "c.csv"
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small_2draws"), str(two_runs / "big_2draws"),
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "2 parameter draws in turn" in r.output
    ya, yb = (pd.read_csv(two_runs / n / "yearly.csv").groupby("replication")["new_owners"].sum()
              for n in ("small_2draws", "big_2draws"))
    d = (ya - yb).groupby(ya.index % 2).mean()  # per draw: the mean over its replications
    row = pd.read_csv(out).query("year == 0 and outcome == 'new_owners'").iloc[0]
    assert row["replications"] == 2 and row["difference"] == pytest.approx(d.mean())
    half = 6.313752 * d.std(ddof=1) / np.sqrt(2)  # t quantile 0.95 with 1 degree of freedom
    assert row["difference_high90"] == pytest.approx(d.mean() + half, abs=1e-5)  # (the tables keep 6 decimals)


def test_compare_names_a_damaged_run_folder(two_runs, tmp_path):
    """A yearly.csv that is not lte's (written over by hand or by another program) is one line, exit 2."""
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(two_runs / "small", broken)
    (broken / "yearly.csv").write_text("outcome,mean\nnew_owners,1\n")
    r = CliRunner().invoke(cli, ["compare", str(broken), str(two_runs / "big")])
    assert r.exit_code == 2 and "not a table written by lte" in r.output and "Traceback" not in r.output, r.output
    # a manifest that is not a table of keys is named as the file at fault (not yearly.csv)
    shutil.copy(two_runs / "small" / "yearly.csv", broken / "yearly.csv")
    (broken / "manifest.json").write_text("[]")
    r = CliRunner().invoke(cli, ["compare", str(broken), str(two_runs / "big")])
    assert r.exit_code == 2 and f"{broken}/manifest.json: not a manifest written by lte" in r.output, r.output
    assert "yearly.csv" not in r.output and len(r.output.strip().splitlines()) == 1
    (broken / "manifest.json").write_text("{not json")
    r = CliRunner().invoke(cli, ["compare", str(broken), str(two_runs / "big")])
    assert r.exit_code == 2 and "cannot read" in r.output, r.output


def test_one_draw_shared_by_every_replication_has_no_interval_and_says_why(two_runs):
    """Three replications that all ran with the one posterior draw are averaged into one pair: no interval, and the
    line says it is the draws that are too few (not the replications, which are three)."""
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small_1draw"), str(two_runs / "big_1draw")])
    assert r.exit_code == 0, r.output
    assert "one parameter draw" in r.output and "one replication each" not in r.output, r.output
    assert "[no interval]" in r.output


def _copy(source, folder):
    import shutil

    shutil.copytree(source, folder)
    return folder


def _refused(r, folder, fragment):
    assert r.exit_code == 2 and "Traceback" not in r.output, (r.output, r.exception)
    assert f"{folder}/yearly.csv: {fragment}" in r.output and len(r.output.strip().splitlines()) == 1, r.output


@pytest.mark.parametrize("damage, fragment", [
    (lambda p: p.write_bytes(bytes(range(256)) * 8), "not a table written by lte (it holds binary data"),
    # a carriage return inside a field ends its line, as pandas reads it: a table without the outcomes
    (lambda p: p.write_bytes(b"replication,year\n0,20\r10\n"), "not a table written by lte (it lacks the columns"),
    # replication and year, but none of the outcomes to compare
    (lambda p: p.write_text("\n".join(",".join(line.split(",")[:5]) for line in p.read_text().splitlines()) + "\n"),
     "not a table written by lte (it lacks the columns new_owners, new_owners_municipal, new_owners_private and "),
])
def test_compare_names_a_yearly_table_it_cannot_read(two_runs, tmp_path, damage, fragment):
    """Binary data, or a table without the outcomes: one line naming the file and what is wrong, exit 2."""
    broken = _copy(two_runs / "small", tmp_path / "broken")
    damage(broken / "yearly.csv")
    _refused(CliRunner().invoke(cli, ["compare", str(broken), str(two_runs / "big")]), broken, fragment)


def _drop_line(path, number):
    lines = path.read_text().splitlines(keepends=True)
    del lines[number]
    path.write_text("".join(lines))


@pytest.mark.parametrize("damage, fragment", [
    # one (replication, year) row deleted: what is left paired 2 replications in one year and 3 in the other
    (lambda p: _drop_line(p, 2), "damaged or incomplete (no row for replication 0, year 2011; it needs one for every "
                                 "replication × year)"),
    (lambda p: _drop_line(p, -1), "damaged or incomplete (no row for replication 2, year 2012"),
    # a row twice (a copy appended) and a row from a replication the run does not have
    (lambda p: p.write_text(p.read_text() + p.read_text().splitlines()[1] + "\n"),
     "damaged or incomplete (more than one row for replication 0, year 2010)"),
    (lambda p: p.write_text(p.read_text() + "3" + p.read_text().splitlines()[1][1:] + "\n"),
     "damaged or incomplete (a row for replication 3, year 2010, which its folder's manifest.json does not have)"),
    # cut off while written or copied: mid-row, or a row short of fields
    (lambda p: p.write_bytes(p.read_bytes()[:-30]), "damaged or incomplete (its last line is cut short"),
    (lambda p: p.write_bytes(p.read_bytes()[:-30] + b"\n"), "damaged or incomplete (line 10 has"),
    (lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"), "damaged or incomplete (it has no rows)"),
    (lambda p: p.write_text(p.read_text().replace("\n2,2012,", "\n2,abc,")),
     "damaged or incomplete (year: not a whole number in every row)"),
])
def test_compare_refuses_an_incomplete_or_cut_yearly_table(two_runs, tmp_path, damage, fragment):
    """A yearly.csv must hold one whole row for every replication and year of its run: a row missing, doubled,
    cut short or not keyed by whole numbers is damage, not a difference between runs (a run compared with a copy
    of itself with one row deleted gave a difference of new owners at exit 0)."""
    same = _copy(two_runs / "small", tmp_path / "same")
    broken = _copy(two_runs / "small", tmp_path / "broken")
    damage(broken / "yearly.csv")
    for a, b in ((broken, same), (same, broken)):
        _refused(CliRunner().invoke(cli, ["compare", str(a), str(b)]), broken, fragment)
    assert CliRunner().invoke(cli, ["compare", str(same), str(two_runs / "small")]).exit_code == 0


def test_a_table_saved_with_old_mac_line_endings_is_read(two_runs, tmp_path):
    """Excel's "CSV (Macintosh)" ends lines with a carriage return alone: the table reads as any other (compared
    with the run it was copied from, every difference is zero)."""
    mac = _copy(two_runs / "small", tmp_path / "mac")
    (mac / "yearly.csv").write_bytes((mac / "yearly.csv").read_bytes().replace(b"\n", b"\r"))
    r = CliRunner().invoke(cli, ["compare", str(mac), str(two_runs / "small")])
    assert r.exit_code == 0, r.output
    assert "A-B            0.0" in r.output


def test_compare_out_waits_for_no_run_in_the_folder(two_runs, tmp_path):
    """A folder a run is writing into (its lock held) is refused for --out: the run would put its own yearly.csv
    over the comparison a moment later."""
    from sim.outputs import locked_dir

    busy = tmp_path / "busy"
    with locked_dir(busy):
        r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big"),
                                     "--out", str(busy / "yearly.csv")])
        assert r.exit_code == 2 and "in use by another run" in r.output, r.output
        assert sorted(p.name for p in busy.iterdir()) == [".lte.lock"]
    r = CliRunner().invoke(cli, ["compare", str(two_runs / "small"), str(two_runs / "big"),
                                 "--out", str(tmp_path / "free.csv")])
    assert r.exit_code == 0 and sorted(p.name for p in tmp_path.iterdir()) == ["free.csv"], r.output


def test_spread_percentiles_are_numpys_nanpercentile_to_the_last_bit():
    """The comparison's 5th and 95th percentiles of the pairs' differences: columns with and without missing
    values (a year without a loan has no mean wait), a column of none, whole kroner and fractions."""
    import warnings

    from sim.compare import _percentiles_5_95

    rng = np.random.default_rng(0)
    for trial in range(500):
        n, k = rng.integers(1, 30), rng.integers(1, 20)
        d = rng.normal(size=(n, k)) * 10.0 ** rng.integers(0, 8)
        if trial % 3 == 0:
            d = np.round(d)
        d[rng.random((n, k)) < rng.random() * 0.5] = np.nan
        if trial % 5 == 0:
            d[:, 0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            expected = np.nanpercentile(d, [5, 95], axis=0)
        assert np.array_equal(_percentiles_5_95(d), expected, equal_nan=True)
