"""Startlån and tilskudd rules, as pure functions of plain numbers (NOK, years, percent).

Nothing here knows about simulation time or randomness, so every rule can be checked against a
hand-worked example. Amounts are NOK; rates are annual and given in percent (4.64 means 4.64 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple


def monthly_rate(rate_pct, margin_points=0.0):
    """Percent a year (plus a margin in points) as a fraction a month: ``rate_pct / 100 / 12 + margin / 100 / 12``,
    written once so that the model and the budget compute the same floats (for numbers or numpy arrays)."""
    return rate_pct / 100.0 / 12.0 + margin_points / 100.0 / 12.0


def annuity_payment_month(principal_nok: float, rate_pct: float, term_years: float) -> float:
    """Monthly payment of an annuity loan (interest plus instalment, constant each month).

    payment = P * r / (1 - (1 + r) ** -n), with r the monthly rate and n the number of payments; the discount
    factor 1 - (1 + r) ** -n is computed as -expm1(-n * log1p(r)), without cancellation for very small rates.
    """
    if principal_nok <= 0.0:
        return 0.0
    n = round(term_years * 12)
    r = rate_pct / 100.0 / 12.0  # (monthly_rate written out: a call more on the hot path costs 0.5 %)
    if r == 0.0:
        return principal_nok / n
    return principal_nok * r / -math.expm1(-n * math.log1p(r))


def annuity_principal(payment_month_nok: float, rate_pct: float, term_years: float) -> float:
    """The largest principal whose annuity payment is ``payment_month_nok`` (inverse of the above)."""
    if payment_month_nok <= 0.0:
        return 0.0
    n = round(term_years * 12)
    r = rate_pct / 100.0 / 12.0  # (monthly_rate written out: a call more on the hot path costs 0.5 %)
    if r == 0.0:
        return payment_month_nok * n
    return payment_month_nok * -math.expm1(-n * math.log1p(r)) / r


def floating_annuity_balance(principal_nok: float, monthly_rates: Iterable[float], term_months: int) -> float:
    """Outstanding balance of an annuity loan on a floating rate after one payment at each of ``monthly_rates``
    (fractions a month, from :func:`monthly_rate`): each payment is recomputed on the remaining balance, its
    month's rate and the remaining term, as the budget follows the portfolio (``sim/budget.py``)."""
    balance, k = principal_nok, term_months
    expm1, log1p = math.expm1, math.log1p
    for r in monthly_rates:  # (the model follows a loan in default month by month: calls written out)
        if k <= 0 or balance <= 0.0:
            break
        payment = balance * r / -expm1(-k * log1p(r)) if r > 0.0 else balance / k
        instalment = payment - balance * r
        balance -= balance if balance < instalment else instalment
        k -= 1
    return balance


def default_loss_nok(startlan_balance_nok: float, bank_balance_nok: float, value_nok: float,
                     forced_sale_discount_share: float) -> float:
    """Loss on a startlån in default, settled by selling the home: the sale fetches its market value less the
    forced-sale discount (a lower price and the sale's costs); an ordinary bank loan beside the startlån has the
    first mortgage and is repaid first, and the startlån gets what is left. The loss is the part of the startlån's
    balance the sale does not cover: never negative, never more than the balance."""
    recovered = max(value_nok * (1.0 - forced_sale_discount_share) - bank_balance_nok, 0.0)
    return max(startlan_balance_nok - recovered, 0.0)


def stressed_rate_pct(rate_pct: float, addon_points: float, floor_pct: float) -> float:
    """Rate the ability to pay is tested at: the loan rate plus a stress add-on, never below a floor."""
    return max(rate_pct + addon_points, floor_pct)


def living_costs_year(adults: int, children: int, adult_nok: float, child_nok: float, household_nok: float) -> float:
    """Yearly living costs of a household type (SIFO-style reference budget: per adult, per child, fixed)."""
    return adults * adult_nok + children * child_nok + household_nok


def payment_capacity_month(income_after_tax_year: float, living_costs_year_nok: float, other_debt_year_nok: float) -> float:
    """Betjeningsevne: what is left each month for a housing loan's payment (may be negative)."""
    return (income_after_tax_year - living_costs_year_nok - other_debt_year_nok) / 12.0


class Financing(NamedTuple):
    """How a purchase is financed. All amounts NOK; ``approved`` is False if no plan closes the gap.
    (An immutable tuple: the model sizes thousands of these a run, and a tuple is the cheapest to make.)"""

    approved: bool
    startlan_nok: float = 0.0
    bank_loan_nok: float = 0.0
    grant_nok: float = 0.0
    own_funds_nok: float = 0.0
    reason: str = ""
    term_years: float = 0.0  # the term the loans are sized over (0 when refused)

    @property
    def borrowed_nok(self) -> float:
        return self.startlan_nok + self.bank_loan_nok


def largest_loan(payment_capacity_month_nok: float, stressed_rate_pct: float, term_years: float,
                 long_term_years: float, need_nok: float, lasting_low_income: bool) -> tuple[float, float]:
    """The largest loan a household can carry, and the term it is sized over: the normal term; or, for a
    household with lasting low income that cannot carry what it needs over the normal term, the long term (a
    longer term before a grant: the grant is for those who cannot carry a large enough startlån)."""
    loan = annuity_principal(payment_capacity_month_nok, stressed_rate_pct, term_years)
    if lasting_low_income and loan < need_nok and long_term_years > term_years:
        return annuity_principal(payment_capacity_month_nok, stressed_rate_pct, long_term_years), long_term_years
    return loan, term_years


def size_financing(
    price_nok: float,
    costs_nok: float,
    own_funds_nok: float,
    max_loan_nok: float,
    startlan_max_share_of_price: float,
    grant_eligible: bool,
    grant_max_share_of_price: float,
    grant_max_nok: float,
    term_years: float,
) -> Financing:
    """Size the loans and the grant for one purchase.

    need = price + costs - own funds. The household can carry loans up to ``max_loan_nok`` (from its
    ability to pay, over ``term_years``, which the financing records). If it can carry the whole need, no grant
    is given. Otherwise a means-tested grant closes the gap, capped by a share of price and an amount; a gap
    larger than the cap means no deal. The grant comes only with a loan (every buyer in the programme is financed
    with a startlån): a household that can carry no loan at all is refused, however small its gap.
    The startlån takes the borrowed sum up to ``startlan_max_share_of_price * (price + costs)`` (1.0 is full
    financing, of the price and the purchase costs alike; a small share makes it a top-up); an ordinary bank
    loan takes the rest.
    """
    need = max(price_nok + costs_nok - own_funds_nok, 0.0)
    own_used = min(own_funds_nok, price_nok + costs_nok)
    borrow = min(need, max(max_loan_nok, 0.0))
    gap = need - borrow
    grant = 0.0
    if gap > 0.5:  # half a krone: rounding, not a gap
        if not grant_eligible or borrow <= 0.0:
            return Financing(False, 0.0, 0.0, 0.0, own_used, "ability_to_pay", 0.0)
        cap = min(grant_max_share_of_price * price_nok, grant_max_nok)
        if gap > cap:
            return Financing(False, 0.0, 0.0, 0.0, own_used, "gap_above_grant_cap", 0.0)
        grant = gap
    startlan = min(borrow, startlan_max_share_of_price * (price_nok + costs_nok))
    # (positional: a named tuple made with keywords takes twice as long, and this is made thousands of times a run)
    return Financing(True, startlan, borrow - startlan, grant, own_used, "", term_years)


def default_hazard_year(base_per_year: float, burden: float, reference_burden: float, elasticity: float) -> float:
    """Yearly default hazard that rises with the payment burden (payment / income).

    hazard = base * exp(elasticity * (burden - reference)); at the reference burden it is the base. The exponent is
    capped at 700 (a factor of about 1e304, a default at once for any base): a burden many times the income (its
    income fell far after the loan was approved) would otherwise overflow.
    """
    return base_per_year * math.exp(min(elasticity * (burden - reference_burden), 700.0))
