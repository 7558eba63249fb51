"""Lending rules against hand-worked examples (worked out in the comments), and their algebraic properties."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim import lending


# ---------------------------------------------------------------------------------------------- annuities
def test_annuity_payment_hand_worked():
    # P = 1,000,000, r = 5 %/12 = 0.00416667, n = 360:
    # (1 + r)^360 = 4.467744; payment = P * r / (1 - 1/4.467744) = 4166.667 / 0.776173 = 5,368.22
    assert lending.annuity_payment_month(1_000_000, 5.0, 30) == pytest.approx(5368.22, abs=0.01)
    # P = 2,000,000 at 3 % over 25 years: r = 0.0025, n = 300, (1.0025)^300 = 2.115020,
    # payment = 5,000 / (1 - 1/2.115020) = 5,000 / 0.527191 = 9,484.23
    assert lending.annuity_payment_month(2_000_000, 3.0, 25) == pytest.approx(9484.23, abs=0.01)
    # zero rate: straight repayment, 1,200,000 over 10 years = 10,000 a month
    assert lending.annuity_payment_month(1_200_000, 0.0, 10) == pytest.approx(10_000.0)
    # nothing borrowed, nothing paid
    assert lending.annuity_payment_month(0, 5.0, 30) == 0.0
    assert lending.annuity_payment_month(-5, 5.0, 30) == 0.0


def test_annuity_principal_is_the_inverse_hand_worked():
    # 5,368.22 a month at 5 % over 30 years carries NOK 1,000,000 (the example above, read backwards)
    assert lending.annuity_principal(5368.216, 5.0, 30) == pytest.approx(1_000_000, abs=1)
    # 10,000 a month at 0 % over 10 years: 120 payments carry 1,200,000
    assert lending.annuity_principal(10_000, 0.0, 10) == pytest.approx(1_200_000)
    # no capacity, no loan
    assert lending.annuity_principal(-100, 5.0, 30) == 0.0
    assert lending.annuity_principal(0, 5.0, 30) == 0.0


def test_annuity_balance_hand_worked():
    def balance(rate_pct, term_years, payments, principal=1_000_000):
        r = lending.monthly_rate(rate_pct)
        return lending.floating_annuity_balance(principal, [r] * payments, round(term_years * 12))

    # after 12 payments of 5,368.22 at 5 %: B = P g - pay (g - 1)/r with g = 1.0041667^12 = 1.051162
    # = 1,051,162 - 5368.22 * 0.051162 / 0.0041667 = 1,051,162 - 65,915.6 = 985,246
    assert balance(5.0, 30, 12) == pytest.approx(985_246, abs=1)
    # half way (180 payments): g = 1.0041667^180 = 2.113704; B = 2,113,704 - 5368.22 * 1.113704 / 0.0041667
    # = 2,113,704 - 1,434,865 = 678,839 (well above half: early payments are mostly interest)
    assert balance(5.0, 30, 180) == pytest.approx(678_839, abs=2)
    assert balance(5.0, 30, 0) == 1_000_000
    assert balance(5.0, 30, 360) == pytest.approx(0.0, abs=1e-6)
    assert balance(5.0, 30, 500) == pytest.approx(0.0, abs=1e-6)  # past the term: repaid
    # zero rate: straight line, half the term half the loan
    assert balance(0.0, 10, 60) == pytest.approx(500_000)
    # the margin is added in points: 4.75 % + 0.25 points is 5 %
    assert lending.monthly_rate(4.75, 0.25) == pytest.approx(lending.monthly_rate(5.0), rel=1e-15)


def test_a_floating_rate_recomputes_the_payment_on_what_is_left():
    # 1,000,000 over 2 years: a year at 6 %, then 3 %. At 6 % the payment is 44,320.61 and after 12 payments
    # B = 1,000,000 * 1.005^12 - 44,320.61 * (1.005^12 - 1) / 0.005 = 1,061,677.81 - 546,719.65 = 514,958.16.
    # At 3 % the payment on 514,958.16 over the 12 months left is 514,958.16 * 0.0025 / (1 - 1.0025^-12)
    # = 43,613.71; after 6 of them B = 514,958.16 * 1.0025^6 - 43,613.71 * (1.0025^6 - 1) / 0.0025
    # = 522,730.97 - 263,323.24 = 259,407.73, and the 12 repay it exactly
    six, three = lending.monthly_rate(6.0), lending.monthly_rate(3.0)
    assert lending.floating_annuity_balance(1_000_000, [six] * 12, 24) == pytest.approx(514_958.16, abs=0.01)
    assert lending.floating_annuity_balance(1_000_000, [six] * 12 + [three] * 6, 24) == pytest.approx(259_407.73, abs=0.01)
    assert lending.floating_annuity_balance(1_000_000, [six] * 12 + [three] * 12, 24) == pytest.approx(0.0, abs=1e-6)
    # at the rate of payout the balance after 18 payments would be 261,331.36: a fall in the rate lowers the
    # payment but pays the loan down faster, and the loss on a default follows the balance as it is
    assert lending.floating_annuity_balance(1_000_000, [six] * 18, 24) == pytest.approx(261_331.36, abs=0.01)


def test_balance_matches_month_by_month_amortisation():
    # independent check: roll the loan forward one month at a time, balance = balance * (1 + r) - payment
    principal, rate, years = 750_000.0, 4.64, 20
    r = rate / 1200
    payment = lending.annuity_payment_month(principal, rate, years)
    balance = principal
    for k in range(1, years * 12 + 1):
        balance = balance * (1 + r) - payment
        if k in (1, 7, 60, 121, 239):
            assert lending.floating_annuity_balance(principal, [lending.monthly_rate(rate)] * k, years * 12) == \
                pytest.approx(balance, abs=0.01), k
    assert balance == pytest.approx(0.0, abs=1e-4)  # the last payment clears the loan


# ---------------------------------------------------------------------------------------------- ability to pay
def test_a_default_loss_is_what_the_forced_sale_leaves_uncovered_hand_worked():
    # a home worth 2,000,000 sells for 2,000,000 * (1 - 0.15) = 1,700,000
    # startlån alone, balance 1,900,000: 1,700,000 goes to it, 200,000 is lost
    assert lending.default_loss_nok(1_900_000, 0.0, 2_000_000, 0.15) == pytest.approx(200_000)
    # a bank loan of 300,000 beside it has the first mortgage: 1,400,000 is left for the startlån, 500,000 lost
    assert lending.default_loss_nok(1_900_000, 300_000, 2_000_000, 0.15) == pytest.approx(500_000)
    # prices have risen: worth 3,000,000, the sale (2,550,000) covers both loans, nothing is lost
    assert lending.default_loss_nok(1_900_000, 300_000, 3_000_000, 0.15) == 0.0
    # the sale does not even cover the bank loan: the whole startlån balance is lost, no more
    assert lending.default_loss_nok(1_900_000, 300_000, 200_000, 0.15) == pytest.approx(1_900_000)
    # a sale that recovers nothing (a discount of 1) loses the balance
    assert lending.default_loss_nok(1_900_000, 0.0, 2_000_000, 1.0) == pytest.approx(1_900_000)


@settings(max_examples=200, deadline=None)
@given(balance=st.floats(0, 5e6), bank=st.floats(0, 5e6), value=st.floats(0, 1e7), extra=st.floats(0, 1e6),
       discount=st.floats(0, 1))
def test_a_default_loss_is_within_the_balance_and_falls_as_the_home_is_worth_more(balance, bank, value, extra,
                                                                                   discount):
    loss = lending.default_loss_nok(balance, bank, value, discount)
    assert 0.0 <= loss <= balance
    assert lending.default_loss_nok(balance, bank, value + extra, discount) <= loss


def test_stressed_rate_add_on_and_floor():
    assert lending.stressed_rate_pct(2.0, 2.5, 0.0) == 4.5  # add-on binds: 2.0 + 2.5
    assert lending.stressed_rate_pct(2.0, 2.5, 5.0) == 5.0  # floor binds (Husbanken from 2020: 5 %)
    assert lending.stressed_rate_pct(4.64, 2.5, 5.0) == pytest.approx(7.14)  # 2024-07: 4.64 + 2.5 above the floor
    assert lending.stressed_rate_pct(2.5, 2.5, 5.0) == 5.0  # exactly at the floor


def test_living_costs_and_capacity():
    # two adults and two children: 2 * 90,000 + 2 * 55,000 + 40,000 = 330,000 a year
    assert lending.living_costs_year(2, 2, 90_000, 55_000, 40_000) == 330_000
    # Drammen's figures, one adult, no children: 80,000 + 25,000 = 105,000
    assert lending.living_costs_year(1, 0, 80_000, 40_000, 25_000) == 105_000
    # (450,000 - 330,000 - 24,000) / 12 = 8,000 a month
    assert lending.payment_capacity_month(450_000, 330_000, 24_000) == pytest.approx(8_000)
    # income below living costs: negative capacity, (200,000 - 330,000) / 12 = -10,833.33
    assert lending.payment_capacity_month(200_000, 330_000, 0) == pytest.approx(-10_833.33, abs=0.01)


def test_largest_loan_of_a_household_hand_worked():
    # the chain the model uses: one adult, one child, NOK 300,000 after tax, Drammen's 2010 living costs
    # living = 80,000 + 40,000 + 25,000 = 145,000; capacity = (300,000 - 145,000) / 12 = 12,916.67 a month
    living = lending.living_costs_year(1, 1, 80_000, 40_000, 25_000)
    capacity = lending.payment_capacity_month(300_000, living, 0)
    assert capacity == pytest.approx(12_916.67, abs=0.01)
    # tested at Husbanken 2.5 % + margin 0.25 + add-on 2.5 = 5.25 % (no floor before 2019)
    rate = lending.stressed_rate_pct(2.5 + 0.25, 2.5, 0.0)
    assert rate == pytest.approx(5.25)
    # r = 0.004375, (1.004375)^360 = 4.814175, 1 - 1/4.814175 = 0.792280, / 0.004375 = 181.0926 months' worth
    # largest loan = 12,916.67 * 181.0926 = 2,339,113
    assert lending.annuity_principal(capacity, rate, 30) == pytest.approx(2_339_113, abs=5)


def test_the_long_term_is_for_lasting_low_income_that_cannot_carry_the_loan_hand_worked():
    # the household above: 12,916.67 a month at 5.25 % carries 2,339,113 over 30 years (360 payments); over 50
    # years (600): (1.004375)^600 = 13.725762, 1 - 1/13.725762 = 0.927144, / 0.004375 = 211.9187 months' worth,
    # so 12,916.67 * 211.9187 = 2,737,283
    capacity = 155_000 / 12
    assert lending.largest_loan(capacity, 5.25, 30, 50, 2_600_000, True) == (pytest.approx(2_737_283, abs=5), 50)
    # what it needs fits in 30 years: the normal term, low income or not
    assert lending.largest_loan(capacity, 5.25, 30, 50, 2_000_000, True) == (pytest.approx(2_339_113, abs=5), 30)
    # not lasting low income: the normal term even when it falls short (and then no grant either)
    assert lending.largest_loan(capacity, 5.25, 30, 50, 2_600_000, False) == (pytest.approx(2_339_113, abs=5), 30)
    # no longer term in the scenario
    assert lending.largest_loan(capacity, 5.25, 30, 30, 2_600_000, True) == (pytest.approx(2_339_113, abs=5), 30)
    # the financing records the term it was sized over
    f = lending.size_financing(2_500_000, 75_000, 0, 2_737_283, 1.0, True, 0.3, 400_000, 50)
    assert f.approved and f.grant_nok == 0 and f.term_years == 50


# ---------------------------------------------------------------------------------------------- loan size and grant
def _fin(**kw):
    args = dict(price_nok=2_000_000, costs_nok=60_000, own_funds_nok=60_000, max_loan_nok=3_000_000,
                startlan_max_share_of_price=1.0, grant_eligible=True, grant_max_share_of_price=0.3,
                grant_max_nok=400_000, term_years=30)
    args.update(kw)
    return lending.size_financing(**args)


def test_financing_fully_affordable_no_grant():
    f = _fin()
    # need = 2,000,000 + 60,000 - 60,000 = 2,000,000, all carried by the startlån (full financing)
    assert f.approved and f.startlan_nok == pytest.approx(2_000_000)
    assert f.grant_nok == 0 and f.bank_loan_nok == 0 and f.own_funds_nok == 60_000
    # eligibility does not matter when there is no gap
    assert _fin(grant_eligible=False) == f


def test_financing_grant_closes_the_gap():
    f = _fin(max_loan_nok=1_750_000)
    # need 2,000,000; the household carries 1,750,000; grant 250,000 <= min(0.3 * 2,000,000, 400,000) = 400,000
    assert f.approved and f.startlan_nok == pytest.approx(1_750_000) and f.grant_nok == pytest.approx(250_000)
    assert f.bank_loan_nok == 0 and f.borrowed_nok == pytest.approx(1_750_000)


def test_financing_gap_exactly_at_the_cap_is_approved():
    # cap = min(0.3 * 2,000,000, 400,000) = 400,000; carried 1,600,000 leaves a gap of exactly 400,000
    f = _fin(max_loan_nok=1_600_000)
    assert f.approved and f.grant_nok == pytest.approx(400_000)


def test_financing_no_grant_without_a_loan():
    # savings 1,900,000 leave a need of 160,000, well under the grant cap of 400,000; but a household that can
    # carry no loan gets no startlån, and the grant comes only with one: refused
    f = _fin(own_funds_nok=1_900_000, max_loan_nok=0.0)
    assert not f.approved and f.reason == "ability_to_pay" and f.grant_nok == 0
    assert not _fin(own_funds_nok=1_900_000, max_loan_nok=-50_000.0).approved
    # with savings that cover everything no loan and no grant are needed: a purchase on own funds
    f = _fin(own_funds_nok=2_100_000, max_loan_nok=0.0)
    assert f.approved and f.startlan_nok == 0 and f.grant_nok == 0 and f.own_funds_nok == 2_060_000
    # the smallest loan it can carry brings the grant back
    f = _fin(own_funds_nok=1_900_000, max_loan_nok=10_000.0)
    assert f.approved and f.startlan_nok == pytest.approx(10_000) and f.grant_nok == pytest.approx(150_000)


def test_financing_gap_above_grant_cap_is_refused():
    f = _fin(max_loan_nok=1_500_000)  # gap 500,000 > cap 400,000
    assert not f.approved and f.reason == "gap_above_grant_cap"
    assert f.startlan_nok == 0 and f.grant_nok == 0
    # the share cap binds: min(0.2 * 2,000,000, 1,000,000) = 400,000 < gap 500,000
    f = _fin(max_loan_nok=1_500_000, grant_max_nok=1_000_000, grant_max_share_of_price=0.2)
    assert not f.approved and f.reason == "gap_above_grant_cap"
    # ... and with a 0.25 share (cap 500,000) the same gap is closed
    assert _fin(max_loan_nok=1_500_000, grant_max_nok=1_000_000, grant_max_share_of_price=0.25).approved


def test_financing_not_eligible_for_grant_is_refused():
    f = _fin(max_loan_nok=1_900_000, grant_eligible=False)  # gap 100,000 and income above the means test
    assert not f.approved and f.reason == "ability_to_pay"
    # a household that can carry nothing (negative capacity) is refused too when not eligible
    assert not _fin(max_loan_nok=-50_000, grant_eligible=False).approved


def test_financing_a_gap_below_half_a_krone_is_rounding():
    f = _fin(max_loan_nok=1_999_999.6, grant_eligible=False)  # gap 0.4 NOK
    assert f.approved and f.grant_nok == 0


def test_financing_top_up_splits_startlan_and_bank_loan():
    f = _fin(startlan_max_share_of_price=0.25)
    # startlån capped at 25 % of price plus costs, 2,060,000: 515,000; the bank lends the other 1,485,000
    assert f.approved and f.startlan_nok == pytest.approx(515_000) and f.bank_loan_nok == pytest.approx(1_485_000)
    # top-up with a grant: carried 1,750,000 = startlån 515,000 + bank 1,235,000, grant 250,000
    f = _fin(startlan_max_share_of_price=0.25, max_loan_nok=1_750_000)
    assert (f.startlan_nok, f.bank_loan_nok, f.grant_nok) == pytest.approx((515_000, 1_235_000, 250_000))


def test_full_financing_covers_the_purchase_costs_too():
    """A startlån may finance up to 100 % of price plus costs: with no savings, no bank loan is needed."""
    f = _fin(own_funds_nok=0)
    # need = 2,000,000 + 60,000; the startlån takes all of it
    assert f.approved and f.startlan_nok == pytest.approx(2_060_000) and f.bank_loan_nok == 0


def test_financing_own_funds_cover_everything():
    # savings 2,500,000 > price + costs 2,060,000: nothing borrowed, only 2,060,000 of the savings used
    f = _fin(own_funds_nok=2_500_000)
    assert f.approved and f.borrowed_nok == 0 and f.grant_nok == 0 and f.own_funds_nok == pytest.approx(2_060_000)


# ---------------------------------------------------------------------------------------------- default
def test_default_hazard_at_and_above_the_reference_burden():
    # at the reference burden the hazard is the base
    assert lending.default_hazard_year(0.01, 0.3, 0.3, 6.0) == pytest.approx(0.01)
    # burden 0.4: 0.01 * exp(6 * 0.1) = 0.01 * 1.822119 = 0.0182212
    assert lending.default_hazard_year(0.01, 0.4, 0.3, 6.0) == pytest.approx(0.0182212, abs=1e-7)
    # Drammen: base 0.008, burden 0.45: 0.008 * exp(6 * 0.15) = 0.008 * 2.459603 = 0.0196768
    assert lending.default_hazard_year(0.008, 0.45, 0.30, 6.0) == pytest.approx(0.0196768, abs=1e-7)
    # a burden far beyond any income (the income fell after approval): capped, a default at once, not an overflow
    assert lending.default_hazard_year(0.008, 1e6, 0.3, 6.0) == pytest.approx(0.008 * math.exp(700.0))
    # below the reference it falls: 0.008 * exp(-0.6) = 0.008 * 0.548812 = 0.0043905
    assert lending.default_hazard_year(0.008, 0.2, 0.3, 6.0) == pytest.approx(0.0043905, abs=1e-7)
    # no elasticity: flat
    assert lending.default_hazard_year(0.008, 0.9, 0.3, 0.0) == pytest.approx(0.008)


# ---------------------------------------------------------------------------------------------- properties
money = st.floats(min_value=10_000, max_value=10_000_000)
rates = st.floats(min_value=0.0, max_value=15.0)
terms = st.integers(min_value=1, max_value=50)


@given(money, rates, terms)
def test_principal_inverts_payment(p, r, n):
    assert lending.annuity_principal(lending.annuity_payment_month(p, r, n), r, n) == pytest.approx(p, rel=1e-9)


@given(st.floats(min_value=100, max_value=100_000), rates, terms)
def test_payment_inverts_principal(pay, r, n):
    assert lending.annuity_payment_month(lending.annuity_principal(pay, r, n), r, n) == pytest.approx(pay, rel=1e-9)


@given(money, rates, rates, terms)
def test_payment_rises_with_the_rate(p, r1, r2, n):
    lo, hi = sorted((r1, r2))
    assert lending.annuity_payment_month(p, lo, n) <= lending.annuity_payment_month(p, hi, n) * (1 + 1e-12)
    # and is never below straight repayment nor above straight repayment plus full interest
    pay = lending.annuity_payment_month(p, hi, n)
    assert p / (12 * n) * (1 - 1e-12) <= pay <= p / (12 * n) + p * hi / 1200 + 1e-6


@given(money, st.lists(rates, min_size=1, max_size=30), terms, st.integers(min_value=0, max_value=600))
def test_balance_decreases_in_months_whatever_the_rates(p, path, n, k):
    monthly = [lending.monthly_rate(path[i % len(path)]) for i in range(k + 1)]
    b0 = lending.floating_annuity_balance(p, monthly[:k], round(n * 12))
    b1 = lending.floating_annuity_balance(p, monthly, round(n * 12))
    assert -1e-6 <= b1 <= b0 + 1e-6 and b0 <= p * (1 + 1e-12)
    if k >= round(n * 12):
        assert b0 == pytest.approx(0.0, abs=1e-6 * max(p, 1.0))


@settings(max_examples=200)
@given(money, st.floats(0, 0.05), st.floats(0, 500_000), st.floats(-1_000_000, 8_000_000), st.floats(0.05, 1.2),
       st.booleans(), st.floats(0, 0.5), st.floats(0, 1_000_000))
def test_approved_financing_adds_up(price, cost_share, own, max_loan, share, eligible, gshare, gmax):
    costs = cost_share * price
    f = lending.size_financing(price, costs, own, max_loan, share, eligible, gshare, gmax, 30)
    if f.approved:
        # startlån + bank loan + grant + own funds used == price + costs
        total = f.startlan_nok + f.bank_loan_nok + f.grant_nok + f.own_funds_nok
        assert total == pytest.approx(price + costs, rel=1e-9, abs=1)
        assert f.startlan_nok <= share * (price + costs) + 1e-6
        assert f.borrowed_nok <= max(max_loan, 0) + 1e-6
        assert f.grant_nok <= min(gshare * price, gmax) + 1e-6
        assert min(f.startlan_nok, f.bank_loan_nok, f.grant_nok) >= 0
        assert f.own_funds_nok <= own + 1e-6
        if f.grant_nok > 0:  # a grant only where the household borrows all it can carry
            assert eligible and f.borrowed_nok == pytest.approx(max(max_loan, 0))
    else:
        assert f.reason in ("ability_to_pay", "gap_above_grant_cap")
        assert f.borrowed_nok == 0 and f.grant_nok == 0
        # refused only when the loan it can carry, own funds and the largest grant do not reach
        cap = min(gshare * price, gmax) if eligible and max_loan > 0 else 0.0  # no grant without a loan
        assert max(max_loan, 0) + own + cap < price + costs + 1e-6


@given(money, st.floats(0, 0.05), st.floats(0, 500_000), st.floats(0, 8_000_000), st.floats(0, 1_000_000))
def test_more_capacity_never_turns_an_approval_into_a_refusal(price, cost_share, own, max_loan, extra):
    args = (price, cost_share * price, own)
    rest = (1.0, True, 0.3, 400_000, 30)
    if lending.size_financing(*args, max_loan, *rest).approved:
        assert lending.size_financing(*args, max_loan + extra, *rest).approved


def test_hazard_rises_with_burden():
    hazards = [lending.default_hazard_year(0.008, b / 100, 0.3, 6.0) for b in range(0, 100, 5)]
    assert all(a < b for a, b in zip(hazards, hazards[1:]))
    assert all(math.isfinite(h) and h > 0 for h in hazards)
