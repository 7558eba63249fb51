"""Calibration: targets files are checked; ABC-SMC recovers known parameters of a small synthetic case."""

import numpy as np
import pandas as pd
import pytest

from sim import calibration as cal
from sim import scenario as sc
from sim import targets as tg
from sim.errors import ScenarioError, UserError
from sim.executors import InProcess
from sim.runner import run_replication

from .conftest import DRAMMEN

TRUE = {"programme.screening_rate_per_year": 0.6, "programme.buy_own_share": 0.7}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """A small municipality (400 dwellings) over four years, with two free parameters."""
    folder = tmp_path_factory.mktemp("cal")
    scen = folder / "small.toml"
    scen.write_text(f'''extends = "{DRAMMEN.as_posix()}"
name = "small"
[period]
end = "2013-12"
programme_start = "2010-03"
[stock]
initial_units = 400
[households]
arrivals_per_year = 70
initial_waiting_list = 10
[other_borrowers]
applicants_per_year = 10
[programme]
screening_rate_per_year = 0.3
buy_own_share = 0.4
advice_months_mean = 4.0
[calibration]
parameters = {{ "programme.screening_rate_per_year" = [0.05, 1.5], "programme.buy_own_share" = [0.0, 1.0] }}
''')
    truth = sc.with_overrides(sc.load(scen, apply_fit=False).scenario, TRUE)  # calibration starts without a fit
    rows = []
    quantities = ("cumulative_owners_bought_municipal", "cumulative_owners_bought_private")
    months = ("2011-12", "2012-12", "2013-12")
    probe = [tg.Target(0, f"{m}-28", m, q, 0.0, None, None, "", "") for m in months for q in quantities]
    sims = np.array([tg.simulate_all(run_replication(truth, 1000, r).monthly, truth, probe) for r in range(8)])
    for t, v in zip(probe, sims.mean(axis=0)):
        rows.append({"date": t.date, "quantity": t.quantity, "value": round(v, 1), "lower": "", "upper": "",
                     "scope": "leie_til_eie", "source": "simulated at known parameters"})
    targets = folder / "targets.csv"
    pd.DataFrame(rows).to_csv(targets, index=False)
    return scen, targets, folder


def test_recovers_known_parameters(small):
    scen, targets, folder = small
    res = cal.calibrate(str(scen), str(targets), str(folder / "fit.toml"), seed=3, particles=40, generations=4,
                        replications=2, draws=10, executor=InProcess())
    for key, true in TRUE.items():
        e = res["estimates"][key]
        assert e["p5"] <= true <= e["p95"], (key, e)
    # the data narrow the priors: strongly for the share buying their own dwelling (the split by route),
    # less for the screening rate (advice and ability to pay also limit how many buy)
    for key, most in (("programme.buy_own_share", 0.5), ("programme.screening_rate_per_year", 0.8)):
        e = res["estimates"][key]
        assert e["p95"] - e["p5"] < most * (e["prior"][1] - e["prior"][0]), (key, e)
    fit = sc.read_fit(folder / "fit.toml")
    assert set(fit["estimate"]) == set(TRUE) and len(fit["posterior"]["weights"]) == 40
    for name in ("fit.report.md", "fit.targets.csv", "fit.owners.png"):
        assert (folder / name).exists()
    # the report gives the fit's own time, and each figure as targets.csv has it (a half is not rounded away)
    report = (folder / "fit.report.md").read_text()
    assert f"fitted in {res['fit_seconds']:.1f} s" in report
    rows = pd.read_csv(folder / "fit.targets.csv")
    half = rows[(rows["simulated_median"].between(10, 999)) & (rows["simulated_median"] % 1 != 0)]["simulated_median"]
    assert all(f"{x:,.1f}" in report for x in half)


def test_same_command_same_fit_and_resume(small, tmp_path):
    scen, targets, _ = small
    kw = dict(seed=5, particles=20, generations=2, replications=1, draws=4, executor=InProcess())
    cal.calibrate(str(scen), str(targets), str(tmp_path / "a" / "fit.toml"), **kw)
    cal.calibrate(str(scen), str(targets), str(tmp_path / "b" / "fit.toml"), **kw)
    assert (tmp_path / "a" / "fit.toml").read_text() == (tmp_path / "b" / "fit.toml").read_text()
    # resume: a third generation continues from the two saved ones
    res = cal.calibrate(str(scen), str(targets), str(tmp_path / "a" / "fit.toml"), **{**kw, "generations": 3})
    assert res["resumed_generations"] == 2
    report = (tmp_path / "a" / "fit.report.md").read_text()
    assert "| generation | tolerance planned | tolerance used |" in report and "\n| 2 | " in report
    # asking for fewer generations than are saved gives the fit of that many, not the longer one relabelled
    cal.calibrate(str(scen), str(targets), str(tmp_path / "a" / "fit.toml"), **kw)
    assert (tmp_path / "a" / "fit.toml").read_text() == (tmp_path / "b" / "fit.toml").read_text()
    assert "\n| 2 | " not in (tmp_path / "a" / "fit.report.md").read_text()



def test_a_fit_is_not_resumed_after_the_model_changed(small, tmp_path, monkeypatch):
    """Saved generations belong to the model that simulated them: after a change to the model's code, the same
    command starts afresh instead of mixing generations of two models."""
    scen, targets, _ = small
    kw = dict(seed=5, particles=20, generations=2, replications=1, draws=4, executor=InProcess())
    cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **kw)
    again = cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **{**kw, "generations": 3})
    assert again["resumed_generations"] == 2
    monkeypatch.setattr(cal, "code_hash", lambda: "another model")
    changed = cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **{**kw, "generations": 3})
    assert changed["resumed_generations"] == 0


@pytest.mark.parametrize("damage", ["cut", "garbage"])
def test_a_damaged_saved_generation_is_named_with_the_way_to_start_afresh(small, tmp_path, damage):
    """A saved generation cut short (a full disk, a copy that stopped) or written over is named in one message
    that says to use --restart, not a traceback from numpy or zipfile; --restart then starts afresh."""
    scen, targets, _ = small
    kw = dict(seed=5, particles=20, generations=1, replications=1, draws=4, executor=InProcess())
    cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **kw)
    [saved] = tmp_path.glob(".fit.abc-*/gen_00.npz")
    saved.write_bytes(saved.read_bytes()[:100] if damage == "cut" else b"\x93garbage\n" * 50)
    fit = (tmp_path / "fit.toml").read_bytes()
    with pytest.raises(UserError) as info:
        cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **{**kw, "generations": 2})
    assert str(info.value) == (f"{saved}: a saved generation of this calibration is damaged and cannot be read; "
                               "run the same command with --restart to discard the saved generations and start afresh")
    assert (tmp_path / "fit.toml").read_bytes() == fit  # nothing written
    res = cal.calibrate(str(scen), str(targets), str(tmp_path / "fit.toml"), **{**kw, "restart": True})
    assert res["resumed_generations"] == 0 and (tmp_path / "fit.toml").read_bytes() == fit


def test_a_fit_is_not_resumed_after_a_target_moved_within_its_month(small):
    """A target dated 3 September counts a tenth of September (see test_a_target_is_computed_at_its_day): moved to
    the 30th, it is another target, and generations fitted to the old one are not resumed."""
    import dataclasses

    scen, targets, _ = small
    scenario = sc.load(scen, apply_fit=False).scenario
    listed = tg.load_targets(targets, scenario)
    problem = cal.make_problem(scenario, listed, 1, str(scen))
    moved = [dataclasses.replace(listed[0], date=listed[0].month + "-03"), *listed[1:]]
    assert moved[0].month == listed[0].month and moved[0].date != listed[0].date
    assert cal.run_key(problem, 20, 5) == cal.run_key(problem, 20, 5)
    assert cal.run_key(dataclasses.replace(problem, targets=moved), 20, 5) != cal.run_key(problem, 20, 5)


def test_fit_is_applied_and_posterior_drawn(small, tmp_path):
    scen, targets, folder = small
    fit = tmp_path / "f.toml"
    fit.write_text('[estimate]\n"programme.buy_own_share" = 0.25\n[posterior]\nweights = [0.5, 0.5]\n'
                   '"programme.buy_own_share" = [0.2, 0.3]\n')
    variant = tmp_path / "v.toml"
    variant.write_text(f'extends = "{scen.as_posix()}"\n[calibration]\nfitted = "f.toml"\n')
    loaded = sc.load(variant)
    assert loaded.scenario.programme.buy_own_share == 0.25
    draws = loaded.posterior_draws(50, seed=1)
    assert {d["programme.buy_own_share"] for d in draws} == {0.2, 0.3}
    assert draws == loaded.posterior_draws(50, seed=1)


@pytest.mark.parametrize("row, rule", [
    ("2013-01-01,cumulative_ownerz,5,,,leie_til_eie,y", "did you mean 'cumulative_owners'"),
    ("2040-01-01,cumulative_owners,5,,,leie_til_eie,y", "outside the simulated period"),
    ("2013-01-01,cumulative_owners,many,,,leie_til_eie,y", "not a number"),
    ("2013-01-01,cumulative_owners,,,,leie_til_eie,y", "needs a value"),
    ("13/01/2013,cumulative_owners,5,,,leie_til_eie,y", "not an ISO date"),
    ("2013-02-30,cumulative_owners,5,,,leie_til_eie,y", "not an ISO date"),
    # figures no count, sum or share can be (a NaN once made a fit run for ever)
    ("2013-01-01,cumulative_owners,nan,,,leie_til_eie,y", "'nan': cumulative_owners must be a number of at least 0"),
    ("2013-01-01,cumulative_owners,-100,,,leie_til_eie,y", "must be a number of at least 0"),
    ("2013-01-01,startlan_disbursed_nok_year,,inf,,leie_til_eie,y", "must be a number of at least 0"),
    ("2015-06-30,share_immigrant_background_municipal_buyers,1.7,,,leie_til_eie,y", "must be a share from 0 to 1"),
    ("2017-11-20,startlan_default_rate,-0.5,,,leie_til_eie,y", "must be a share from 0 to 1"),
    # figures no model run can come near: beyond what a scenario allows of households, dwellings or NOK a year
    ("2013-01-01,cumulative_owners,1e308,,,leie_til_eie,y",
     "row 2.value: '1e308': cumulative_owners must be at most 100,000,000 (1,000,000 households or dwellings a year"),
    ("2013-01-01,municipal_rental_dwellings,,,2e8,stock,y", "row 2.upper: '2e8': municipal_rental_dwellings must be at most"),
    ("2012-12-31,startlan_disbursed_nok_year,,2e12,,all_startlan,y",
     "row 2.lower: '2e12': startlan_disbursed_nok_year must be at most 1,000,000,000,000 (the most NOK a year"),
    # whose figure it is: one of the scopes the README lists
    ("2013-01-01,cumulative_owners,5,,,x,y", "row 2.scope: 'x' is not a scope: use one of leie_til_eie, all_startlan, stock"),
    ("2013-01-01,cumulative_owners,5,,,,y", "row 2.scope: '' is not a scope: use one of"),
    # a value outside its own bounds: one of the two is wrong
    ("2013-01-01,cumulative_owners,78,100,,leie_til_eie,y", "row 2: value 78 lies below its lower bound 100"),
    ("2013-01-01,cumulative_owners,78,,50,leie_til_eie,y", "row 2: value 78 lies above its upper bound 50"),
    ("2013-01-01,cumulative_owners,78,100,50,leie_til_eie,y", "row 2: lower bound above upper bound"),
    # the same figure twice, with two values
    ("2013-01-01,cumulative_owners,5,,,leie_til_eie,y\n2013-01-01,cumulative_owners,7,,,leie_til_eie,y", "listed twice (row 2 and row 3)"),
    # a year's sum dated twice in the same year
    ("2012-06-30,startlan_disbursed_nok_year,5,,,leie_til_eie,y\n2012-12-31,startlan_disbursed_nok_year,7,,,leie_til_eie,y",
     "listed twice (row 2 and row 3)"),
])
def test_targets_errors(tmp_path, drammen, row, rule):
    f = tmp_path / "t.csv"
    f.write_text("date,quantity,value,lower,upper,scope,source\n" + row + "\n")
    with pytest.raises(ScenarioError) as info:
        tg.load_targets(f, drammen)
    assert str(f) in str(info.value) and "row " in str(info.value) and rule in str(info.value)
    assert len(info.value.problems) == 1, info.value.problems  # one problem, one line


def test_a_targets_file_that_is_not_a_table_is_named(tmp_path, drammen):
    """A program, a picture or a spreadsheet in Excel's own format given as --targets: one message naming it."""
    f = tmp_path / "t.csv"
    f.write_bytes(b"\x7fELF\x02\x01\x01\r\x00garbage\r\x8d\x90" + bytes(range(256)) * 4)
    with pytest.raises(ScenarioError) as info:
        tg.load_targets(f, drammen)
    assert str(info.value) == (f"{f}: not a readable CSV file (not text in UTF-8 or Windows-1252: save the table "
                               "as CSV)")


def test_a_targets_file_saved_by_norwegian_excel_reads_the_same(tmp_path, drammen):
    """Edited in Excel with Norwegian settings and saved again, the targets file has semicolons and decimal commas,
    in Windows-1252 ("CSV (semikolondelt)") or UTF-8 with a byte-order mark: the same targets either way."""
    original = DRAMMEN.parent.parent / "calibration" / "targets" / "drammen.csv"
    table = pd.read_csv(original, dtype=str, keep_default_na=False)
    assert table["value"].str.contains(".", regex=False).any()  # (so the decimal commas matter)
    for c in ("value", "lower", "upper"):
        table[c] = table[c].str.replace(".", ",", regex=False)
    expected = tg.load_targets(original, drammen)
    for encoding in ("cp1252", "utf-8-sig"):
        f = tmp_path / f"{encoding}.csv"
        table.assign(source=table["source"] + " (Drammen kommune, boligsosial håndbok)").to_csv(
            f, sep=";", index=False, encoding=encoding)
        got = tg.load_targets(f, drammen)
        assert [(t.quantity, t.date, t.value, t.lower, t.upper) for t in got] == \
            [(t.quantity, t.date, t.value, t.lower, t.upper) for t in expected]


def test_a_target_is_computed_at_its_day(drammen):
    """Drammen starts 2010-01 and its programme 2011-06 (month 17). With 2 owners and a stock growing by 10 every
    month: a count dated 3 September 2013 (month 44) is the 27 months 2011-06 to 2013-08 and 3/30 of September:
    2 * 27 + 0.1 * 2 = 54.2; dated on 30 September or given as 2013-09, the whole month: 56. A stock dated
    29 January 2016 (month 72) lies 29/31 of the way from December's 1,710 to January's 1,720."""
    n = drammen.period.n_months
    monthly = pd.DataFrame({"new_owners_municipal": np.full(n, 1.5), "new_owners_private": np.full(n, 0.5),
                            "municipal_units": 1000.0 + 10.0 * np.arange(n)})

    def at(date, quantity):
        return tg.simulate_quantity(monthly, drammen, tg.Target(0, date, date[:7], quantity, 0.0, None, None, "", ""))

    assert at("2013-09-03", "cumulative_owners") == pytest.approx(54.2)
    assert at("2013-09-30", "cumulative_owners") == at("2013-09", "cumulative_owners") == pytest.approx(56.0)
    assert at("2013-09-03", "cumulative_owners_bought_private") == pytest.approx(0.5 * 27.1)
    assert at("2016-01-29", "municipal_rental_dwellings") == pytest.approx(1710 + 10 * 29 / 31)
    assert at("2016-01-31", "municipal_rental_dwellings") == 1720.0
    assert at("2011-03-15", "cumulative_owners") == 0.0  # before the programme start


def test_a_yearly_target_sums_the_twelve_months_of_its_calendar_year(drammen):
    """startlån paid out in a year is the sum of that calendar year's twelve months, whatever the target's day in
    it. With month m (0 = 2010-01) paying m + 1 NOK: 2011 is months 12 to 23, paying 13 + 14 + ... + 24 =
    12 * (13 + 24) / 2 = 222; 2010 pays 1 + ... + 12 = 78. (Eleven months of 2011 would be 198.)"""
    n = drammen.period.n_months
    monthly = pd.DataFrame({"startlan_nok": np.arange(1.0, n + 1)})

    def at(date):
        return tg.simulate_quantity(monthly, drammen, tg.Target(0, date, date[:7], "startlan_disbursed_nok_year",
                                                                0.0, None, None, "", ""))

    assert at("2011-12-31") == at("2011-03-15") == at("2011-01") == 222.0
    assert at("2010-12-31") == 78.0


def test_calibration_parameters_must_be_behavioural(tmp_path):
    f = tmp_path / "x.toml"
    f.write_text(f'extends = "{DRAMMEN.as_posix()}"\n[calibration]\nparameters = {{ "frame.yearly_nok" = [1, 2] }}\n')
    with pytest.raises(ScenarioError, match="behavioural"):
        sc.load(f)
    f.write_text(f'extends = "{DRAMMEN.as_posix()}"\n[calibration]\nparameters = {{ "programme.potential_share@2013" = [0.1, 0.2] }}\n')
    with pytest.raises(ScenarioError, match="no dated entry 2013"):  # (a run does not need the fit's keys)
        cal.make_problem(sc.load(f).scenario, [tg.Target(0, "2013-01-01", "2013-01", "cumulative_owners", 1.0, None, None, "", "")], 1, str(f))
    # a range the key cannot take, or written as text or yes/no
    for body, rule in (('"programme.dropout_probability" = [0.0, 3.0]', "the range's end 3 is not a value"),
                       ('"frame.patience_months" = [-5.0, 12.0]', "the range's end -5 is not a value"),
                       ('"frame.patience_months" = ["2", "12"]', "a range is two numbers"),
                       ('"programme.dropout_probability" = [false, true]', "a range is two numbers")):
        f.write_text(f'extends = "{DRAMMEN.as_posix()}"\n[calibration]\nparameters = {{ {body} }}\n')
        with pytest.raises(ScenarioError, match=rule):
            sc.load(f)


def test_run_draws_parameters_from_the_posterior(small, tmp_path):
    import json

    from click.testing import CliRunner

    from sim.cli import cli

    scen, _, _ = small
    fit = tmp_path / "f.toml"
    fit.write_text('[estimate]\n"programme.buy_own_share" = 0.25\n[posterior]\nweights = [0.5, 0.5]\n'
                   '"programme.buy_own_share" = [0.0, 1.0]\n')
    variant = tmp_path / "v.toml"
    variant.write_text(f'extends = "{scen.as_posix()}"\n[period]\nend = "2011-12"\n[calibration]\nfitted = "f.toml"\n')
    r = CliRunner().invoke(cli, ["run", str(variant), "-n", "6", "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert "1 behavioural value from the fit" in r.output and "(6 draws from its posterior) replaces" in r.output
    drawn = json.loads((tmp_path / "a" / "manifest.json").read_text())["parameter_draws"]
    assert len(drawn) == 6 and {d["programme.buy_own_share"] for d in drawn} == {0.0, 1.0}
    y = pd.read_csv(tmp_path / "a" / "yearly.csv")
    by_rep = y.groupby("replication")["new_owners_municipal"].sum()
    for r_i, d in enumerate(drawn):  # buy_own_share 0 means nobody buys their own dwelling
        if d["programme.buy_own_share"] == 0.0:
            assert by_rep[r_i] == 0
    r = CliRunner().invoke(cli, ["run", str(variant), "-n", "2", "--parameter-draws", "0", "--out", str(tmp_path / "b")])
    assert json.loads((tmp_path / "b" / "manifest.json").read_text())["parameter_draws"] == []
