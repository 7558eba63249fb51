"""Budget: hand-worked loan schedules, the portfolio identity, grant write-down, dialects, formula guard."""

import pandas as pd
import pytest
from click.testing import CliRunner

from sim import budget
from sim import scenario as sc
from sim.cli import cli
from sim.outputs import read_csv
from sim.runner import RunResult, run_replication, yearly
from sim.timeline import YearMonth, parse_dated, resolve_monthly

from .conftest import DRAMMEN, write_variant


@pytest.fixture(scope="module")
def flat(drammen):
    """Drammen with a constant 4.75 % rate (+ 0.25 margin = 5 %) for hand-worked loan schedules."""
    return sc.with_overrides(drammen, {"market.husbanken_rate_pct": 4.75, "period.end": "2012-12"})


def _loan(**kw):
    row = dict(replication=0, household_id=1, group="lte", t=0.5, startlan_nok=1_000_000.0, bank_loan_nok=0.0,
               tilskudd_nok=0.0, price_nok=1_000_000.0, rate_pct=5.0, term_years=30.0, default_t=float("nan"),
               settled_t=float("nan"), loss_nok=0.0)
    row.update(kw)
    return pd.DataFrame([row])


def test_annuity_schedule_hand_worked(flat):
    port = budget.portfolio(_loan(), flat)
    # paid out in month 0 (2010-01); payments of 5,368.22 from month 1.
    # After 12 payments at 5 %: balance 985,246.35, so repaid 14,753.65 and interest 12 * 5,368.22 - 14,753.65
    first12 = port.iloc[1:13]
    assert port["paid"].iloc[0] == 1_000_000
    assert first12["repaid"].sum() == pytest.approx(14_753.65, abs=0.05)
    assert first12["interest_in"].sum() == pytest.approx(12 * 5368.216 - 14_753.65, abs=0.1)
    assert port["balance"].iloc[12] == pytest.approx(985_246.35, abs=0.05)
    # the municipality pays Husbanken 4.75 % on the same balance: margin = 0.25/5 of interest
    assert first12["interest_out"].sum() == pytest.approx(first12["interest_in"].sum() * 4.75 / 5.0, rel=1e-9)


def test_a_loan_is_followed_over_its_own_term(flat):
    # the same loan over 50 years (600 payments): (1 + r)^600 = 12.119383, payment = 4,166.67 / (1 - 1/12.119383)
    # = 4,541.39; after 12 payments B = 1,000,000 * (1 + r)^12 - 4,541.39 * ((1 + r)^12 - 1) / r = 995,398.85
    port = budget.portfolio(_loan(term_years=50.0), flat)
    assert port["balance"].iloc[12] == pytest.approx(995_398.85, abs=0.05)
    assert port["repaid"].iloc[1:13].sum() == pytest.approx(4_601.15, abs=0.05)


def test_default_writes_off_the_loss_and_recovers_the_rest(flat):
    port = budget.portfolio(_loan(default_t=12.2, settled_t=24.2, loss_nok=100_000.0), flat)
    balance_at_default = port["balance"].iloc[11]  # payments stop from month 12
    assert port["repaid"].iloc[12:24].sum() == 0 and port["interest_in"].iloc[12:24].sum() == 0
    assert port["loss"].iloc[24] == 100_000
    assert port["repaid"].iloc[24] == pytest.approx(balance_at_default - 100_000)
    assert port["balance"].iloc[24] == 0


def test_tilskudd_written_down_evenly(flat):
    tw = budget.tilskudd_writedown(_loan(tilskudd_nok=240_000.0, t=6.0), flat)
    # 240,000 over 20 years = 1,000 a month, from 2010-07: 6 months in 2010, 12 in each later year
    assert tw["written"].tolist() == pytest.approx([6_000, 12_000, 12_000])
    assert tw["outstanding"].tolist() == pytest.approx([234_000, 222_000, 210_000])


def test_rent_change_compares_month_for_month_when_a_run_starts_and_ends_mid_year(drammen):
    """A rent roll of 100,000 a month that never changes, from 2010-07 to 2012-06, with the cost index at 1.00,
    1.10 and 1.20 in the three years: rent income 600,000 (six months), 1,320,000 and 720,000 (six months), and no
    change beyond indexation in any year. (Compared with the first year as a whole, a half year, the next would
    show +660,000.) With the roll a tenth lower from 2011: -132,000 in 2011 and -72,000 in 2012's half year."""
    s = sc.with_overrides(drammen, {"period.start": "2010-07", "period.end": "2012-06",
                                    "period.programme_start": "2011-06",
                                    "market.cost_index": {"2010": 1.0, "2011": 1.1, "2012": 1.2}})
    for roll_2011, roll_2012, change in ((100_000, 100_000, [0, 0, 0]), (90_000, 90_000, [0, -132_000, -72_000])):
        rent = [6 * 100_000 * 1.0, 12 * roll_2011 * 1.1, 6 * roll_2012 * 1.2]
        yearly = pd.DataFrame({"replication": 0, "year": [2010, 2011, 2012], "rent_income_nok": rent})
        for c in ("startlan_nok", "startlan_loans", "startlan_nok_lte", "startlan_nok_other", "frame_granted_nok",
                  "frame_remaining_nok", "frame_expired_nok", "frame_lapsed_nok", "tilskudd_nok", "units_sold",
                  "units_sold_value_nok", "units_bought", "units_bought_cost_nok"):
            yearly[c] = 0.0
        loans = pd.DataFrame(columns=["replication", *_loan().columns[1:]])
        b = budget.budget_by_replication(yearly, loans, s)
        assert b["rent_income_change_nok"].tolist() == pytest.approx(change, abs=1e-6)


def test_a_loss_is_the_share_of_the_balance_the_budget_carries(short):
    """The model sizes a loss at payout from the balance the loan will have when it stops paying, on the rate path
    ahead; the budget follows the same loan month by month. With the whole balance lost (a sale that recovers nothing: a discount of 1), the loss
    written off in budget.csv must be the model's loss, loan for loan: it is capped at the budget's balance, so a
    model balance on another rate (the rate at payout, held fixed) shows as a gap. Drammen's rate moves between 1.5
    and 4.64 % over the run."""
    s = sc.with_overrides(short, {"period.end": "2018-12", "startlan.forced_sale_discount_share": 1.0,
                                  "startlan.default_base_per_year": 0.04, "startlan.default_resolution_months": 3.0})
    result = RunResult(s, 2, [run_replication(s, 2, r) for r in range(2)])
    settled = result.loans[result.loans["settled_t"].notna()]
    assert len(settled) > 30
    b = budget.budget_by_replication(yearly(result.monthly), result.loans, s)
    assert b["loss_nok"].sum() == pytest.approx(settled["loss_nok"].sum(), rel=1e-12)
    port = budget.portfolio(settled.iloc[:1], s)  # one loan: its budget balance before it defaults is its loss
    loan = settled.iloc[0]
    assert port["balance"].iloc[int(loan["default_t"]) - 1] == pytest.approx(loan["loss_nok"], rel=1e-12)


def test_a_loss_follows_the_value_of_the_home_when_it_is_sold(short):
    """Each loss, loan for loan, is the balance the budget carries when the loan stops paying, less what the sale
    brings: the price paid, moved with the price index from the month it was fixed (the approval, not the payout)
    to the month the default is settled, less the forced-sale discount, after the bank loan beside it (on the same
    schedule). Prices rise in steps, fall by a third in 2013 and recover by 2015, so some defaults lose and others
    are covered, and many loans were approved at another price level than they were paid out at."""
    s = sc.with_overrides(short, {
        "period.end": "2016-12", "startlan.max_share_of_price": 0.8, "startlan.forced_sale_discount_share": 0.15,
        "startlan.default_base_per_year": 0.04, "startlan.default_resolution_months": 3.0,
        "market.price_index": {"2010": 1.0, "2011-07": 1.1, "2012-01": 1.25, "2012-07": 1.4, "2013": 0.66,
                               "2014-07": 0.9, "2015": 1.2}})
    result = RunResult(s, 2, [run_replication(s, 2, r) for r in range(2)])
    settled = result.loans[result.loans["settled_t"].notna()]
    index = resolve_monthly(parse_dated(s.market.price_index), YearMonth.parse(s.period.start), s.period.n_months)
    lost = covered = repriced = 0
    for _, loan in settled.iterrows():
        # the balance at the end of the month it stops paying (no payment in that month, nor in the payout month)
        balance = budget.portfolio(settled.loc[[loan.name]], s)["balance"].iloc[int(loan["default_t"])]
        value = loan["price_nok"] * index[int(loan["settled_t"])] / index[int(loan["approved_t"])]
        repriced += index[int(loan["approved_t"])] != index[int(loan["t"])]
        bank = loan["bank_loan_nok"] * balance / loan["startlan_nok"]
        expected = max(balance - max(0.85 * value - bank, 0.0), 0.0)
        assert loan["loss_nok"] == pytest.approx(expected, rel=1e-9, abs=1e-6)
        lost += expected > 0
        covered += expected == 0
    assert lost > 5 and covered > 5 and repriced > 5 and (settled["bank_loan_nok"] > 0).sum() > 20
    # a default not settled within the run has no loss yet (empty, not 0); a loan that never defaulted lost nothing
    open_default = result.loans["default_t"].notna() & result.loans["settled_t"].isna()
    assert open_default.sum() > 0 and result.loans.loc[open_default, "loss_nok"].isna().all()
    assert (result.loans.loc[result.loans["default_t"].isna(), "loss_nok"] == 0).all()
    assert settled["loss_nok"].notna().all()


@pytest.fixture(scope="module")
def per_rep(short):
    result = RunResult(short, 5, [run_replication(short, 5, r) for r in range(3)])
    return budget.budget_by_replication(yearly(result.monthly), result.loans, short), result


def test_budget_closes_every_year(per_rep):
    b, result = per_rep
    gap = b["portfolio_start_nok"] + b["startlan_paid_nok"] - b["repayments_received_nok"] - b["loss_nok"] \
        - b["portfolio_end_nok"]
    assert gap.abs().max() < 0.01
    assert (b["portfolio_end_nok"] >= 0).all()
    # the debt to Husbanken is the portfolio: borrowed as paid out, repaid as borrowers repay and as losses are
    # written off (a default does not lessen what the municipality owes)
    debt_gap = b["portfolio_start_nok"] + b["husbanken_borrowing_nok"] - b["husbanken_repayments_nok"] \
        - b["portfolio_end_nok"]
    assert debt_gap.abs().max() < 0.01
    assert (b["husbanken_repayments_nok"] - b["repayments_received_nok"] - b["loss_nok"]).abs().max() < 1e-6
    # the check bites: replications have losses written off and recovered balances
    assert (b.groupby("replication")["loss_nok"].sum() > 0).sum() >= 2
    # losses are the model's own (loss_nok of the loans table, in the month the default is settled)
    y0 = yearly(result.monthly)
    assert b["loss_nok"].to_numpy() == pytest.approx(y0["loss_nok"].to_numpy(), abs=0.01)
    # the margin closes too: interest received - paid
    assert (b["margin_nok"] - b["interest_received_nok"] + b["interest_paid_husbanken_nok"]).abs().max() < 1e-6
    assert b["loss_municipality_nok"].sum() == pytest.approx(0.25 * b["loss_nok"].sum())
    assert b["margin_nok"].sum() > 0 and (b["husbanken_borrowing_nok"] == b["startlan_paid_nok"]).all()
    # frame: granted = used + unused; the last year's remainder expires at its end like every other year's
    y = yearly(result.monthly)
    last = y.groupby("replication").last()
    assert (last["frame_remaining_nok"] > 0).all()  # (so the check bites)
    assert b.groupby("replication")["frame_unused_nok"].last().to_numpy() == \
        pytest.approx(last["frame_remaining_nok"].to_numpy())
    assert b["frame_granted_nok"].sum() == pytest.approx(b["frame_used_nok"].sum() + b["frame_unused_nok"].sum())


def test_a_run_without_any_loan_has_a_budget_of_zeros(tmp_path):
    """A frame of zero is a planner's obvious reference point: no startlån, no tilskudd, and every table written."""
    zero = write_variant(tmp_path, '[period]\nend = "2012-12"\n[frame]\nyearly_nok = 0\n', "zero.toml")
    r = CliRunner().invoke(cli, ["run", str(zero), "-n", "2", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert len(read_csv(tmp_path / "out" / "loans.csv")) == 0
    b = read_csv(tmp_path / "out" / "budget.csv")
    assert list(b["year"]) == [2010, 2011, 2012]
    for column in ("startlan_paid_nok_mean", "portfolio_end_nok_p95", "tilskudd_written_down_nok_mean",
                   "tilskudd_outstanding_nok_p5", "interest_received_nok_mean", "loss_nok_p95"):
        assert (b[column] == 0).all(), column


def test_budget_csv_same_numbers_in_both_dialects(tmp_path):
    short = write_variant(tmp_path, '[period]\nend = "2013-12"\n', "short.toml")
    for dialect in ("plain", "nb"):
        r = CliRunner().invoke(cli, ["run", str(short), "-n", "2", "--out", str(tmp_path / dialect), "--csv-dialect", dialect])
        assert r.exit_code == 0, r.output
    raw = (tmp_path / "nb" / "budget.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw.count(b";") > 10
    a, b = read_csv(tmp_path / "plain" / "budget.csv"), read_csv(tmp_path / "nb" / "budget.csv")
    pd.testing.assert_frame_equal(a, b)
    assert "startlan_paid_nok_mean" in a.columns and "portfolio_end_nok_p95" in a.columns
    mean = a["startlan_paid_nok_mean"].sum()
    y = read_csv(tmp_path / "plain" / "yearly.csv")
    assert mean == pytest.approx(y.groupby("year")["startlan_nok"].mean().sum(), abs=len(a))


def test_text_from_a_sweep_file_cannot_become_a_formula(tmp_path):
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'''
base = "{DRAMMEN.as_posix()}"
replications = 1
[overrides]
"period.end" = "2011-12"
[levers]
"frame.priority" = {{ "=HYPERLINK(\\"http://x\\")" = "first_come", "@calc" = "lte_first" }}
''')
    r = CliRunner().invoke(cli, ["sweep", str(sweep), "--workers", "1", "--out", str(tmp_path / "o"), "--csv-dialect", "nb"])
    assert r.exit_code == 0, r.output
    raw = pd.read_csv(tmp_path / "o" / "points.csv", sep=";", encoding="utf-8-sig", dtype=str)
    assert set(raw["frame.priority"]) == {"'=HYPERLINK(\"http://x\")", "'@calc"}  # inert in the file
    points = read_csv(tmp_path / "o" / "points.csv")  # and the names as written when read back
    assert set(points["frame.priority"]) == {"=HYPERLINK(\"http://x\")", "@calc"}
    assert CliRunner().invoke(cli, ["report", str(tmp_path / "o")]).exit_code == 0
    page = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")
    assert "@calc" in page and "'@calc" not in page and "&#x27;@calc" not in page  # the report shows the name


def test_scenario_text_stays_inert_in_every_csv_of_a_run(tmp_path):
    """A scenario whose name and description look like formulas: no CSV cell of the run can start a formula."""
    short = write_variant(tmp_path, 'name = "-x.1"\ndescription = "=HYPERLINK(\\"http://x\\")"\n'
                                    '[period]\nend = "2011-12"\n', "f.toml")
    for dialect in ("plain", "nb"):
        out = tmp_path / dialect
        r = CliRunner().invoke(cli, ["run", str(short), "-n", "1", "--out", str(out), "--csv-dialect", dialect])
        assert r.exit_code == 0, r.output
        assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
        assert "=HYPERLINK(&quot;http://x&quot;)" in (out / "report.html").read_text(encoding="utf-8")  # escaped
        for csv in out.glob("*.csv"):
            table = pd.read_csv(csv, sep=";" if dialect == "nb" else ",", dtype=str, keep_default_na=False,
                                encoding="utf-8-sig")
            for col in table.columns:
                text = table[col][~table[col].str.fullmatch(r"-?[0-9]+([.,][0-9]+)?(e-?[0-9]+)?")]
                assert not text.str.match(r"[=+\-@\t\r]").any(), (csv.name, col, text.head().tolist())


def test_losses_are_shared_between_municipality_and_state_as_the_scenario_says(short):
    """With the municipality carrying 40 % of each loss (not Drammen's 25 %, so a swapped share shows), every year's
    loss splits 0.4 / 0.6 between municipality and state: in the yearly table (from the model) and in the budget
    alike, and the two shares add up to the loss."""
    s = sc.with_overrides(short, {"startlan.municipality_loss_share": 0.4, "startlan.default_base_per_year": 0.05,
                                  "startlan.default_resolution_months": 3.0,
                                  "startlan.forced_sale_discount_share": 0.5})
    result = RunResult(s, 2, [run_replication(s, 2, r) for r in range(2)])
    y = yearly(result.monthly)
    assert (y.groupby("replication")["loss_nok"].sum() > 0).all()  # (so the check bites)
    assert y["loss_municipality_nok"].to_numpy() == pytest.approx(0.4 * y["loss_nok"].to_numpy(), abs=1e-6)
    assert y["loss_state_nok"].to_numpy() == pytest.approx(0.6 * y["loss_nok"].to_numpy(), abs=1e-6)
    b = budget.budget_by_replication(y, result.loans, s)
    assert b["loss_nok"].sum() > 0
    assert b["loss_municipality_nok"].to_numpy() == pytest.approx(0.4 * b["loss_nok"].to_numpy(), abs=1e-6)
    assert b["loss_state_nok"].to_numpy() == pytest.approx(0.6 * b["loss_nok"].to_numpy(), abs=1e-6)


def test_startlan_paid_is_split_by_group_as_the_loans_table_says(per_rep):
    """budget.csv's startlån paid to leie-til-eie tenants and to other borrowers are, year by year, the sums of
    the loans table's startlån of each group, by the year of the payout."""
    b, result = per_rep
    loans = result.loans.assign(year=2010 + result.loans["t"].astype(int) // 12)  # short starts in January 2010
    by_group = loans.pivot_table(index=["replication", "year"], columns="group", values="startlan_nok",
                                 aggfunc="sum", fill_value=0.0)
    got = b.set_index(["replication", "year"])
    assert (by_group["lte"] > 0).sum() > 5 and (by_group["other"] > 0).sum() > 5
    for group in ("lte", "other"):
        expected = by_group[group].reindex(got.index, fill_value=0.0)
        assert got[f"startlan_paid_{group}_nok"].to_numpy() == pytest.approx(expected.to_numpy(), abs=0.01), group


def test_the_budget_summary_gives_each_columns_percentiles_in_order():
    """Three replications with 10, 30 and 20 for a column: mean 20; the 5th percentile lies a tenth of the way from
    10 to 20 (11) and the 95th nine tenths of the way from 20 to 30 (29), interpolated linearly as pandas does."""
    cols = [c for c, _ in budget.COLUMNS]
    per_rep = pd.DataFrame({"replication": [0, 1, 2], "year": 2012, **{c: [10.0, 30.0, 20.0] for c in cols}})
    row = budget.budget_summary(per_rep).iloc[0]
    for c in cols:
        assert (row[f"{c}_p5"], row[f"{c}_mean"], row[f"{c}_p95"]) == pytest.approx((11.0, 20.0, 29.0)), c
