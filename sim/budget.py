"""Budget tables: what a run means for the municipality's budget and economic plan, year by year, in NOK.

Built after the run from its yearly table and its loans table, so it needs no change to the model:

- **Startlån portfolio.** Each loan is an annuity on Husbanken's floating rate plus the municipal margin: every
  month the payment is recomputed on the remaining balance, the current rate and the remaining term. A loan
  in default stops paying; when the default is settled, the loss (``loss_nok`` of the loans table) is written
  off and the rest of the balance is recovered from the sale of the home and counts as repaid.
  So for every year: portfolio at year end = portfolio at start + paid out − repaid − losses (exactly).
- **Borrowing from Husbanken.** The municipality borrows what it lends on and repays Husbanken what its borrowers
  repay; a loss does not lessen what it owes, so at a settled default it repays Husbanken the loss too (its own
  share, and the state's, which the state pays it). Its debt to Husbanken is thus the portfolio, and it pays
  Husbanken's rate on it. Its margin is interest received minus interest paid.
- **Tilskudd** is written down evenly over ``tilskudd.writedown_years`` from the month it is paid.

All amounts are positive NOK; each column's README entry says whether it is money in or money out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sim import lending
from sim.scenario import Scenario
from sim.timeline import YearMonth, parse_dated, resolve_monthly

# (column, meaning) in budget order; every column is NOK unless it counts loans or dwellings.
COLUMNS = (
    ("startlan_paid_nok", "startlån paid out to borrowers (money out)"),
    ("startlan_loans", "number of startlån paid out"),
    ("startlan_paid_lte_nok", "of which to leie-til-eie tenants"),
    ("startlan_paid_other_nok", "of which to other borrowers"),
    ("frame_granted_nok", "frame granted by Husbanken in the year's rounds (after any cut)"),
    ("frame_used_nok", "frame committed to approved loans in the year (net of commitments returned)"),
    ("frame_unused_nok", "frame left unused at year end and lost (the last year's too when the run ends in "
                         "December, so that over a run without carry-over granted = used + unused)"),
    ("frame_lapsed_nok", "frame used in an earlier year that never became a loan: a commitment whose purchase "
                         "failed after its year closed (no carry-over), counted in the year it failed"),
    ("husbanken_borrowing_nok", "new borrowing from Husbanken to lend on (= startlån paid out; money in)"),
    ("repayments_received_nok", "instalments and recovered balances received from borrowers (money in)"),
    ("husbanken_repayments_nok", "repaid to Husbanken: what borrowers repaid, and the losses written off (a loss "
                                 "does not lessen the debt; money out)"),
    ("interest_received_nok", "interest received from borrowers at Husbanken's rate + margin (money in)"),
    ("interest_paid_husbanken_nok", "interest paid to Husbanken on the municipality's startlån debt (money out)"),
    ("margin_nok", "interest received − interest paid: the municipality's margin"),
    ("portfolio_start_nok", "outstanding startlån at the start of the year"),
    ("portfolio_end_nok", "outstanding startlån at the end of the year (= the debt to Husbanken)"),
    ("loss_nok", "losses written off on defaulted startlån"),
    ("loss_municipality_nok", "the municipality's 25 % of losses (money out)"),
    ("loss_state_nok", "the state's 75 % of losses"),
    ("tilskudd_paid_nok", "tilskudd til etablering paid out"),
    ("tilskudd_written_down_nok", "tilskudd written down in the year"),
    ("tilskudd_outstanding_nok", "tilskudd not yet written down at year end (on schedule whatever happens to the "
                                 "home: a grant repaid on an early sale is not modelled)"),
    ("units_sold", "municipal dwellings sold to their tenants"),
    ("dwelling_sales_income_nok", "income from dwellings sold to tenants (money in)"),
    ("units_bought", "replacement dwellings bought"),
    ("replacement_purchases_nok", "cost of replacement dwellings bought (money out)"),
    ("rent_income_nok", "rent from let municipal dwellings"),
    ("rent_income_change_nok", "rent income minus the first year's rent roll over this year's months at their cost level: the change from sales, replacements and vacancies"),
)


def _rates(scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    start = YearMonth.parse(scenario.period.start)
    n = scenario.period.n_months
    husbanken_pct = resolve_monthly(parse_dated(scenario.market.husbanken_rate_pct), start, n)
    margin = scenario.startlan.municipal_margin_points
    return lending.monthly_rate(husbanken_pct), lending.monthly_rate(husbanken_pct, margin)


def portfolio(loans: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Month by month for each replication: paid out, repaid, interest in and out, losses, balance at month end."""
    n = scenario.period.n_months
    r_hb, r_loan = _rates(scenario)
    reps = sorted(loans["replication"].unique()) if len(loans) else []
    rep_index = {r: i for i, r in enumerate(reps)}
    shape = (len(reps), n)
    out = {k: np.zeros(shape) for k in ("paid", "repaid", "interest_in", "interest_out", "loss", "balance")}
    if len(loans):
        ri = loans["replication"].map(rep_index).to_numpy()
        start = np.floor(loans["t"].to_numpy()).astype(int)
        principal = loans["startlan_nok"].to_numpy(float)
        months_total = np.round(loans["term_years"].to_numpy(float) * 12).astype(int)
        default = np.floor(np.nan_to_num(loans["default_t"].to_numpy(float), nan=np.inf)).clip(max=n + 1)
        settle = np.floor(np.nan_to_num(loans["settled_t"].to_numpy(float), nan=np.inf)).clip(max=n + 1)
        loss = loans["loss_nok"].to_numpy(float)
        np.add.at(out["paid"], (ri, start), principal)
        balance = np.zeros(len(loans))
        remaining = months_total.copy()
        for m in range(n):
            new = start == m
            balance[new] = principal[new]
            # payments from the month after payout, until the term ends or the loan defaults
            paying = (start < m) & (m < default) & (remaining > 0) & (balance > 0)
            r = r_loan[m]
            k = remaining[paying]
            b = balance[paying]
            pay = b * r / -np.expm1(-k * np.log1p(r)) if r > 0 else b / k
            interest = b * r
            principal_part = np.minimum(pay - interest, b)
            balance[paying] = b - principal_part
            remaining[paying] -= 1
            np.add.at(out["repaid"][:, m], ri[paying], principal_part)
            np.add.at(out["interest_in"][:, m], ri[paying], interest)
            # settlement of a default: the loss is written off, the rest is recovered from the sale
            settling = settle == m
            if settling.any():
                lost = np.minimum(loss[settling], balance[settling])
                np.add.at(out["loss"][:, m], ri[settling], lost)
                np.add.at(out["repaid"][:, m], ri[settling], balance[settling] - lost)
                balance[settling] = 0.0
            np.add.at(out["balance"][:, m], ri, balance)
        # the municipality pays Husbanken's rate on its debt, which follows the portfolio (balance at month start)
        # (loans in default included: the municipality still owes Husbanken what it lent on)
        start_balance = np.concatenate([np.zeros((len(reps), 1)), out["balance"][:, :-1]], axis=1)
        out["interest_out"] = start_balance * r_hb[None, :]
    labels = pd.period_range(start=scenario.period.start, periods=n, freq="M").year
    frames = []
    for r, i in rep_index.items():
        frames.append(pd.DataFrame({"replication": r, "year": labels,
                                    **{k: v[i] for k, v in out.items()}}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def tilskudd_writedown(loans: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Per replication and year: grant written down, and not yet written down at year end.

    A grant paid in month m0 is written down evenly over the scenario's years from that month. Each
    replication's grants are taken at once, and their months summed in the order of the loans table (the same
    sums, to the last bit, as adding one grant at a time)."""
    n = scenario.period.n_months
    months = int(round(scenario.tilskudd.writedown_years * 12))
    years = pd.period_range(start=scenario.period.start, periods=n, freq="M").year
    reps = np.sort(loans["replication"].unique()) if len(loans) else np.array([], dtype=int)
    written = np.zeros((len(reps), n))
    outstanding = np.zeros((len(reps), n))
    grants = loans[loans["tilskudd_nok"] > 0]
    if len(grants):
        span = np.arange(n)
        row_of = {r: i for i, r in enumerate(reps)}
        for r, g in grants.groupby("replication"):  # one pass over the grants, not one per replication
            i = row_of[r]
            m0 = np.floor(g["t"].to_numpy(float)).astype(int)[:, None]
            amount = g["tilskudd_nok"].to_numpy(float)[:, None]
            per_month = amount / months
            done = np.clip(span - m0 + 1, 0, months)  # months written down by the end of each month
            # a running sum down the grants adds them one at a time, in order (np.sum would pair them up)
            written[i] = np.cumsum(np.where((span >= m0) & (span < m0 + months), per_month, 0.0), axis=0)[-1]
            outstanding[i] = np.cumsum(np.where(span >= m0, amount - done * per_month, 0.0), axis=0)[-1]
    df = pd.DataFrame({"replication": np.repeat(reps, n), "year": np.tile(years, len(reps)),
                       "written": written.ravel(), "outstanding": outstanding.ravel()})
    return df.groupby(["replication", "year"]).agg(written=("written", "sum"), outstanding=("outstanding", "last")) \
        .reset_index()


def budget_by_replication(yearly: pd.DataFrame, loans: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """One row per replication and year with every budget column."""
    y = yearly.sort_values(["replication", "year"]).reset_index(drop=True)
    port = portfolio(loans, scenario)
    keys = ["replication", "year"]
    p = port.groupby(keys).agg(paid=("paid", "sum"), repaid=("repaid", "sum"), interest_in=("interest_in", "sum"),
                               interest_out=("interest_out", "sum"), loss=("loss", "sum"),
                               balance=("balance", "last")).reset_index() if len(port) else None
    b = y[keys].copy()
    b["startlan_paid_nok"] = y["startlan_nok"]
    b["startlan_loans"] = y["startlan_loans"]
    b["startlan_paid_lte_nok"] = y["startlan_nok_lte"]
    b["startlan_paid_other_nok"] = y["startlan_nok_other"]
    b["frame_granted_nok"] = y["frame_granted_nok"]
    rem = y["frame_remaining_nok"]
    prev_rem = rem.groupby(y["replication"]).shift(1, fill_value=0.0)
    prev_exp = y["frame_expired_nok"].groupby(y["replication"]).shift(1, fill_value=0.0)
    b["frame_used_nok"] = y["frame_granted_nok"] + prev_rem - prev_exp - rem
    b["frame_unused_nok"] = y["frame_expired_nok"]
    b["frame_lapsed_nok"] = y["frame_lapsed_nok"]
    b["husbanken_borrowing_nok"] = y["startlan_nok"]
    if p is not None:
        b = b.merge(p, on=keys, how="left").fillna(0.0)
    else:
        for c in ("paid", "repaid", "interest_in", "interest_out", "loss", "balance"):
            b[c] = 0.0
    b["repayments_received_nok"] = b.pop("repaid")
    b["husbanken_repayments_nok"] = b["repayments_received_nok"] + b["loss"]
    b["interest_received_nok"] = b.pop("interest_in")
    b["interest_paid_husbanken_nok"] = b.pop("interest_out")
    b["margin_nok"] = b["interest_received_nok"] - b["interest_paid_husbanken_nok"]
    b["portfolio_end_nok"] = b.pop("balance")
    b["portfolio_start_nok"] = b.groupby("replication")["portfolio_end_nok"].shift(1, fill_value=0.0)
    b["loss_nok"] = b.pop("loss")
    share = scenario.startlan.municipality_loss_share
    b["loss_municipality_nok"] = b["loss_nok"] * share
    b["loss_state_nok"] = b["loss_nok"] * (1 - share)
    b = b.drop(columns="paid")
    b["tilskudd_paid_nok"] = y["tilskudd_nok"]
    tw = tilskudd_writedown(loans, scenario)
    b = b.merge(tw, on=keys, how="left").fillna({"written": 0.0, "outstanding": 0.0})
    b["tilskudd_written_down_nok"] = b.pop("written")
    b["tilskudd_outstanding_nok"] = b.pop("outstanding")
    b["units_sold"] = y["units_sold"]
    b["dwelling_sales_income_nok"] = y["units_sold_value_nok"]
    b["units_bought"] = y["units_bought"]
    b["replacement_purchases_nok"] = y["units_bought_cost_nok"]
    b["rent_income_nok"] = y["rent_income_nok"]
    # change beyond price indexation: rent income minus what the first year's rent roll would bring in this year's
    # months at their cost level. Rent is the month's roll times the cost index, so the first year's roll (its rent
    # over the sum of its months' index) times the sum of this year's index; a year the run covers only in part
    # (a start or end mid-year) is compared month for month, not with a whole year
    start = YearMonth.parse(scenario.period.start)
    n = scenario.period.n_months
    index = pd.Series(resolve_monthly(parse_dated(scenario.market.cost_index), start, n),
                      index=pd.period_range(start=scenario.period.start, periods=n, freq="M").year)
    index_sum = b["year"].map(index.groupby(level=0).sum())
    first = b.groupby("replication")["rent_income_nok"].transform("first")
    first_index_sum = index_sum.groupby(b["replication"]).transform("first")
    b["rent_income_change_nok"] = b["rent_income_nok"] - first * index_sum / first_index_sum
    return b[keys + [c for c, _ in COLUMNS]]


def budget_summary(per_rep: pd.DataFrame, keys=("year",)) -> pd.DataFrame:
    """One row per year (and point): each column's mean and 5th and 95th percentile across replications."""
    keys = list(keys)
    cols = [c for c, _ in COLUMNS]
    g = per_rep.groupby(keys, sort=True)[cols]
    mean, lo, hi = g.mean(), g.quantile(0.05), g.quantile(0.95)
    out = pd.DataFrame(index=mean.index)
    for c in cols:
        out[f"{c}_mean"] = mean[c]
        out[f"{c}_p5"] = lo[c]
        out[f"{c}_p95"] = hi[c]
    return out.reset_index()
