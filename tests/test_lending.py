"""Lending rules against hand-worked examples, and their algebraic properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import lending


def test_annuity_payment_hand_worked():
    # P = 1,000,000, r = 5 %/12 = 0.0041667, n = 360:
    # (1 + r)^360 = 4.467744; payment = P * r / (1 - 1/4.467744) = 4166.67 / 0.776173 = 5,368.22
    assert lending.annuity_payment_month(1_000_000, 5.0, 30) == pytest.approx(5368.22, abs=0.01)
    # zero rate: straight repayment, 1,200,000 over 10 years = 10,000 a month
    assert lending.annuity_payment_month(1_200_000, 0.0, 10) == pytest.approx(10_000.0)
    assert lending.annuity_payment_month(0, 5.0, 30) == 0.0


def test_annuity_principal_is_the_inverse_hand_worked():
    # 5,368.22 a month at 5 % over 30 years carries NOK 1,000,000
    assert lending.annuity_principal(5368.216, 5.0, 30) == pytest.approx(1_000_000, abs=1)
    assert lending.annuity_principal(-100, 5.0, 30) == 0.0


def test_annuity_balance_hand_worked():
    # after 12 payments of 5,368.22 at 5 %: B = P g - pay (g - 1)/r with g = 1.0041667^12 = 1.051162
    # = 1,051,162 - 5368.22 * 0.051162 / 0.0041667 = 1,051,162 - 65,915.6 = 985,246
    assert lending.annuity_balance(1_000_000, 5.0, 30, 12) == pytest.approx(985_246, abs=1)
    assert lending.annuity_balance(1_000_000, 5.0, 30, 0) == pytest.approx(1_000_000)
    assert lending.annuity_balance(1_000_000, 5.0, 30, 360) == 0.0
    assert lending.annuity_balance(1_000_000, 0.0, 10, 60) == pytest.approx(500_000)


def test_stressed_rate():
    assert lending.stressed_rate_pct(2.0, 2.5, 0.0) == 4.5  # add-on binds
    assert lending.stressed_rate_pct(2.0, 2.5, 5.0) == 5.0  # floor binds (Husbanken 2020)
    assert lending.stressed_rate_pct(4.64, 2.5, 5.0) == pytest.approx(7.14)


def test_living_costs_and_capacity():
    # two adults and two children: 2 * 90,000 + 2 * 55,000 + 40,000 = 330,000 a year
    assert lending.living_costs_year(2, 2, 90_000, 55_000, 40_000) == 330_000
    # (450,000 - 330,000 - 24,000) / 12 = 8,000 a month
    assert lending.payment_capacity_month(450_000, 330_000, 24_000) == pytest.approx(8_000)
    assert lending.payment_capacity_month(200_000, 330_000, 0) < 0


def _fin(**kw):
    args = dict(price_nok=2_000_000, costs_nok=60_000, own_funds_nok=60_000, max_loan_nok=3_000_000,
                startlan_max_share_of_price=1.0, grant_eligible=True, grant_max_share_of_price=0.3,
                grant_max_nok=400_000)
    args.update(kw)
    return lending.size_financing(**args)


def test_financing_fully_affordable_no_grant():
    f = _fin()
    # need = 2,000,000 + 60,000 - 60,000 = 2,000,000, all carried by the loan
    assert f.approved and f.startlan_nok == pytest.approx(2_000_000) and f.grant_nok == 0 and f.bank_loan_nok == 0


def test_financing_grant_closes_the_gap():
    f = _fin(max_loan_nok=1_750_000)
    # need 2,000,000; the household carries 1,750,000; grant 250,000 <= min(0.3 * 2,000,000, 400,000)
    assert f.approved and f.startlan_nok == pytest.approx(1_750_000) and f.grant_nok == pytest.approx(250_000)


def test_financing_gap_above_grant_cap_is_refused():
    f = _fin(max_loan_nok=1_500_000)  # gap 500,000 > cap 400,000
    assert not f.approved and f.reason == "gap_above_grant_cap"
    f = _fin(max_loan_nok=1_500_000, grant_max_nok=1_000_000, grant_max_share_of_price=0.2)  # cap 400,000
    assert not f.approved


def test_financing_not_eligible_for_grant_is_refused():
    f = _fin(max_loan_nok=1_900_000, grant_eligible=False)
    assert not f.approved and f.reason == "ability_to_pay"


def test_financing_top_up_splits_startlan_and_bank_loan():
    f = _fin(startlan_max_share_of_price=0.25)
    # startlån capped at 25 % of 2,000,000 = 500,000; the bank lends the other 1,500,000
    assert f.startlan_nok == pytest.approx(500_000) and f.bank_loan_nok == pytest.approx(1_500_000)


def test_default_hazard():
    assert lending.default_hazard_year(0.01, 0.3, 0.3, 6.0) == pytest.approx(0.01)
    # burden 0.4: 0.01 * exp(6 * 0.1) = 0.01 * 1.8221 = 0.018221
    assert lending.default_hazard_year(0.01, 0.4, 0.3, 6.0) == pytest.approx(0.018221, abs=1e-6)


money = st.floats(min_value=10_000, max_value=10_000_000)
rates = st.floats(min_value=0.0, max_value=15.0)
terms = st.integers(min_value=1, max_value=50)


@given(money, rates, terms)
def test_principal_inverts_payment(p, r, n):
    assert lending.annuity_principal(lending.annuity_payment_month(p, r, n), r, n) == pytest.approx(p, rel=1e-9)


@given(money, rates, terms, st.integers(min_value=0, max_value=600))
def test_balance_decreases(p, r, n, k):
    b0 = lending.annuity_balance(p, r, n, k)
    b1 = lending.annuity_balance(p, r, n, k + 1)
    assert -1e-6 <= b1 <= b0 + 1e-6 and b0 <= p * (1 + 1e-12)


@settings(max_examples=200)
@given(money, st.floats(0, 0.05), st.floats(0, 500_000), st.floats(0, 8_000_000), st.floats(0.05, 1.2),
       st.booleans(), st.floats(0, 0.5), st.floats(0, 1_000_000))
def test_approved_financing_covers_price_and_costs(price, cost_share, own, max_loan, share, eligible, gshare, gmax):
    f = lending.size_financing(price, cost_share * price, own, max_loan, share, eligible, gshare, gmax)
    if f.approved:
        total = f.startlan_nok + f.bank_loan_nok + f.grant_nok + f.own_funds_nok
        assert total == pytest.approx(price * (1 + cost_share), rel=1e-9, abs=1)
        assert f.startlan_nok <= share * price + 1e-6
        assert f.borrowed_nok <= max(max_loan, 0) + 1e-6
        assert f.grant_nok <= min(gshare * price, gmax) + 1e-6
        assert min(f.startlan_nok, f.bank_loan_nok, f.grant_nok) >= 0
