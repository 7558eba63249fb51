"""The scenario: its schema (one place, top to bottom), and the loader that reads, merges and validates it.

A scenario is a TOML file. Every field below says its unit and what it means, and what kind of number it
is, so that sweeps, calibration and the README's key table can be derived from it:

- ``fact``: a documented figure or a structural choice (with a source in the file's ``[sources]``),
- ``policy``: a lever the municipality controls (sweeps vary these),
- ``exogenous``: a path the municipality does not control, such as prices and rates (uncertainties),
- ``behavioural``: how households behave; no document gives it, calibration fits it.

Dated parameters are a number (constant) or a table ``{2011 = 35e6, "2013-07" = 120e6}``: each value holds
from its date until the next. ``extends = "base.toml"`` merges a variant over a base key by key; a dated
table in a variant replaces the base's table whole.
"""

from __future__ import annotations

import datetime
import difflib
import hashlib
import math
import os
import re
import stat
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError,
                      field_validator, model_validator)

from sim.errors import ScenarioError
from sim.timeline import YearMonth, months_between, parse_dated

KINDS = ("fact", "policy", "exogenous", "behavioural")
MAX_YEARS = 100  # the longest period a scenario may run
MAX_REPLICATIONS = 100_000  # replications of a scenario, a sweep or a command line
MAX_COUNT_PER_YEAR = 1_000_000  # households or dwellings a year (a targets file's counts are held to it too)
MAX_NOK_PER_YEAR = 1e12  # NOK a year (and a target's yearly sum)
# a scenario's or a sweep's name: usable as a folder name, and not a hidden one (".." would be its parent)
NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
NAME_RULE = "must be a short text usable as a folder name: letters A-Z, digits and _ . -, not starting with ."
NAME_FROM_FILE = ".name from the file"  # (in a scenario's origins: its name is its file's, as it sets none)


def F(default: Any = ..., *, unit: str, doc: str, kind: str = "fact", **constraints: Any) -> Any:
    """A schema field with its unit, meaning and kind stored beside it."""
    assert kind in KINDS
    return Field(default, description=doc, json_schema_extra={"unit": unit, "kind": kind}, **constraints)


# A positive figure below the least of its unit was written in another unit: NOK in millions, a rate as a fraction.
# (Only values as written are checked: a value a sweep's uncertainty computes, a shifted rate near zero say, is
# validated with the context COMPUTED and may go below.)
NOK_LEAST = (1000.0, "amounts are in NOK, not thousands or millions: write 150_000_000 for 150 million")
PCT_LEAST = (0.1, "rates are in percent: write 2.7 for 2.7 %, not 0.027")
COMPUTED = {"computed": True}


def _in_its_unit(v: float, least: tuple[float, str] | None, info, where: str = "") -> None:
    if least is not None and 0 < v < least[0] and info.context != COMPUTED:
        raise ValueError(f"value{where} is {v:g}; {least[1]}")


def _unit(least: tuple[float, str]):
    """A number that is 0 or at least ``least[0]`` (see NOK_LEAST)."""
    def check(v: float, info) -> float:
        _in_its_unit(v, least, info)
        return v

    return AfterValidator(check)


def _dated(ge: float | None = None, le: float | None = None, gt: float | None = None,
           least: tuple[float, str] | None = None):
    def check(value: Any, info) -> Any:
        if isinstance(value, dict):
            value = {str(k): v for k, v in value.items()}
        steps = parse_dated(value)
        for when, v in steps:
            where = "" if when.year == 1 else f" at {when}"
            if ge is not None and v < ge:
                raise ValueError(f"value{where} is {v:g}; it must be at least {ge:g}")
            if gt is not None and v <= gt:
                raise ValueError(f"value{where} is {v:g}; it must be above {gt:g}")
            if le is not None and v > le:
                raise ValueError(f"value{where} is {v:g}; it must be at most {le:g}")
            _in_its_unit(v, least, info, where)
        # numbers as floats and date keys as text, checked before pydantic can coerce (true is not 1)
        return {str(k): float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)

    return Annotated[Any, BeforeValidator(check)]


def is_number(value: Any) -> bool:
    """A finite number written as a number (not true or false, which Python counts as 1 and 0)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _year_month(value: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}", str(value).strip()):
        raise ValueError(f"{value!r} is not a year-month: write it YYYY-MM, with the month in two digits "
                         "(\"2030-12\", \"2011-06\")")
    return str(YearMonth.parse(value))


DatedProbability = _dated(ge=0, le=1)
DatedIndex = _dated(gt=0, le=1000)  # an index, 1.0 at period start: a thousandfold rise is a typo
DatedRatePct = _dated(ge=0, le=30)  # a rate in percent a year (4.5, not 45)
DatedCount = _dated(ge=0, le=MAX_COUNT_PER_YEAR)  # households or dwellings a year
DatedNok = _dated(ge=0, le=MAX_NOK_PER_YEAR, least=NOK_LEAST)  # NOK a year
Nok = Annotated[float, _unit(NOK_LEAST)]  # NOK: 0, or at least 1,000
DatedRateLevelPct = _dated(ge=0, le=30, least=PCT_LEAST)  # a rate level in percent (not an add-on or a margin)


def _quoted(value: Any) -> Any:
    if isinstance(value, (datetime.date, datetime.time)):  # TOML reads 2010-01-01 without quotes as a date
        advice = f"\"{value:%Y-%m}\"" if isinstance(value, datetime.date) else "\"YYYY-MM\""
        raise ValueError(f"{value} is written without quotes: write the year-month in quotes, {advice}")
    return value


Month = Annotated[str, BeforeValidator(_quoted), AfterValidator(_year_month)]
Probability = Annotated[float, Field(ge=0, le=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_and_yes_no_as_written(cls, value: Any, info) -> Any:
        """A number must be written as a number and a yes/no as true or false: pydantic would otherwise take
        ``"0.4"`` as 0.4, ``"yes"`` as true and true as 1, so a mistyped value would pass unnoticed."""
        annotation = cls.model_fields[info.field_name].annotation
        if annotation in (int, float) and isinstance(value, (bool, str)):
            shown = str(value).lower() if isinstance(value, bool) else f"the text {value!r}"
            raise ValueError(f"expected a number, got {shown}" + (" (write it without quotes)"
                                                                   if isinstance(value, str) else ""))
        if annotation is bool and not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        if annotation is int and isinstance(value, float) and value.is_integer() and abs(value) >= 2**63:
            # (pydantic would say it cannot parse it as an integer): the range the key allows
            bounds = {name: getattr(m, name) for m in cls.model_fields[info.field_name].metadata
                      for name in ("ge", "gt", "le", "lt") if getattr(m, name, None) is not None}
            high = [f"at most {bounds['le']}"] if "le" in bounds else [f"below {bounds['lt']}"] if "lt" in bounds else []
            low = [f"at least {bounds['ge']}"] if "ge" in bounds else [f"above {bounds['gt']}"] if "gt" in bounds else []
            limit = (high if value > 0 else low) or ["a whole number of ordinary size"]
            raise ValueError(f"must be {limit[0]} (got {value:g})")
        return value


class Period(Section):
    """When the simulation runs."""

    start: Month = F("2010-01", unit="YYYY-MM", doc="first simulated month (a run-in before the programme is allowed)")
    end: Month = F("2030-12", unit="YYYY-MM", doc="last simulated month, inclusive")
    programme_start: Month = F("2011-06", unit="YYYY-MM", doc="month leie til eie starts screening tenants")

    @model_validator(mode="after")
    def _order(self) -> "Period":
        s, p, e = (YearMonth.parse(x) for x in (self.start, self.programme_start, self.end))
        if not s <= e:
            raise ValueError(f"dates out of order: start {s} must not come after end {e} (the end month is included)")
        if not s <= p <= e:
            raise ValueError(f"dates out of order: programme_start {p} must lie between start {s} and end {e}")
        if months_between(s, e) >= MAX_YEARS * 12:
            raise ValueError(f"the period from {s} to {e} is longer than {MAX_YEARS} years")
        return self

    @property
    def n_months(self) -> int:
        return months_between(YearMonth.parse(self.start), YearMonth.parse(self.end)) + 1


class Stock(Section):
    """The municipal rental stock at the start of the period."""

    initial_units: int = F(unit="dwellings", doc="municipal rental dwellings at period start", ge=1, le=1_000_000)
    family_share: Probability = F(unit="share", doc="share of dwellings with 3+ rooms (family dwellings)")
    dedicated_share: Probability = F(unit="share", doc="share dedicated to groups with staff on site; never for sale")
    sellable_share: Probability = F(unit="share", doc="share of the other dwellings the municipality is willing to sell")
    initial_occupancy: Probability = F(unit="share", doc="share of dwellings let at period start")
    relet_delay_months: float = F(unit="months", doc="time from a dwelling falling vacant to the next tenant moving in", ge=0, le=240)
    value_small_nok: Nok = F(unit="NOK", doc="market value of a small municipal dwelling at period start", gt=0, le=1e9)
    value_family_nok: Nok = F(unit="NOK", doc="market value of a family municipal dwelling at period start", gt=0, le=1e9)
    rent_small_nok_month: Nok = F(unit="NOK/month", doc="monthly rent of a small dwelling at period start", ge=0, le=1e6)
    rent_family_nok_month: Nok = F(unit="NOK/month", doc="monthly rent of a family dwelling at period start", ge=0, le=1e6)


class Households(Section):
    """Who comes into municipal housing, and what they bring."""

    arrivals_per_year: DatedCount = F(unit="households/year", doc="households joining the waiting list (incl. refugees settled)", kind="exogenous")
    initial_waiting_list: int = F(unit="households", doc="households on the waiting list at period start", ge=0, le=1_000_000)
    waiting_patience_months: float = F(unit="months", doc="mean time a household waits for a dwelling before finding another solution", gt=0, kind="behavioural", le=1200)
    exit_rate_per_year: float = F(unit="1/year", doc="hazard of a tenant leaving by other routes (private rental, moving away)", ge=0, kind="behavioural", le=12)
    initial_tenure_max_years: float = F(unit="years", doc="initial tenants moved in uniformly within this many years before start", gt=0, le=100)
    share_with_children: Probability = F(unit="share", doc="share of households with children")
    mean_children: float = F(unit="children", doc="mean number of children in households with children", ge=1, le=15)
    share_two_adults: Probability = F(unit="share", doc="share of households with two adults (the rest have one)")
    share_immigrant: Probability = F(unit="share", doc="share of households with immigrant background")
    share_introduction_programme: Probability = F(unit="share", doc="share of immigrant households arriving in the introduction programme")
    introduction_months: float = F(unit="months", doc="length of the introduction programme", gt=0, le=240)
    income_median_nok_year: Nok = F(unit="NOK/year", doc="median income after tax of a one-adult household not in the programme, at period start", gt=0, le=1e8)
    income_sigma_log: float = F(unit="log NOK", doc="spread (sd of log) of income after tax", ge=0, le=3)
    second_adult_income_share: float = F(unit="ratio", doc="a second adult adds this share of the median to household income", ge=0, le=5)
    introduction_income_nok_year: Nok = F(unit="NOK/year", doc="income after tax per adult while in the introduction programme, at period start", gt=0, le=1e8)
    work_after_introduction_probability: Probability = F(unit="share", doc="share who move into work after the programme (others keep a low income)", kind="behavioural")
    savings_mean_nok: float = F(unit="NOK", doc="mean savings on arrival (exponentially distributed)", ge=0, le=1e9)
    debt_problems_share: Probability = F(unit="share", doc="share with debt problems: payments on other debt, and no loan until advice clears the problems (the payments remain)")


class Market(Section):
    """Exogenous paths: prices, rates, incomes."""

    price_index: DatedIndex = F(unit="index", doc="house price index, 1.0 at period start", kind="exogenous")
    husbanken_rate_pct: DatedRateLevelPct = F(unit="%/year", doc="Husbanken's floating rate", kind="exogenous")
    income_index: DatedIndex = F(unit="index", doc="income growth index, 1.0 at period start", kind="exogenous")
    cost_index: DatedIndex = F(unit="index", doc="consumer price index for living costs, 1.0 at period start", kind="exogenous")
    private_price_small_nok: Nok = F(unit="NOK", doc="median price of a small dwelling bought privately, at period start", gt=0, le=1e9)
    private_price_family_nok: Nok = F(unit="NOK", doc="median price of a family dwelling bought privately, at period start", gt=0, le=1e9)
    price_sigma_log: float = F(unit="log NOK", doc="spread (sd of log) of private purchase prices", ge=0, le=3)


class Programme(Section):
    """Leie til eie: screening, advice, and how tenants buy."""

    advisers: int = F(unit="advisers", doc="advisers working on leie til eie", ge=0, kind="policy", le=100_000)
    households_per_adviser: int = F(unit="households", doc="households one adviser follows at a time", ge=1, le=10_000)
    screening_rate_per_year: _dated(ge=0, le=120) = F(unit="1/year", doc="rate at which a tenant is assessed for ownership potential", kind="behavioural")
    potential_share: DatedProbability = F(unit="share", doc="share of assessed tenants found to have ownership potential", kind="behavioural")
    advice_months_mean: float = F(unit="months", doc="mean duration of advice (gamma distributed)", gt=0, kind="behavioural", le=240)
    advice_months_cv: float = F(unit="ratio", doc="coefficient of variation of the advice duration", gt=0, le=10)
    dropout_probability: Probability = F(unit="share", doc="share of advised households who drop out", kind="behavioural")
    saving_during_advice_nok_month: float = F(unit="NOK/month", doc="what an advised household saves each month of advice", ge=0, le=1e7)
    debt_clear_probability: Probability = F(unit="share", doc="chance that an advice spell clears a household's debt problems (each spell its own chance)", kind="behavioural")
    buy_own_share: Probability = F(unit="share", doc="share of buyers who buy their own dwelling when it is for sale", kind="behavioural")
    sell_to_tenants: bool = F(unit="yes/no", doc="whether the municipality sells sellable dwellings to their tenants", kind="policy")
    replacement_ratio: _dated(ge=0, le=10) = F(unit="dwellings/sale", doc="dwellings bought for each dwelling sold to a tenant (at the sale's date)", kind="policy")
    replacements_ahead: float = F(0.0, unit="dwellings", doc="dwellings the municipality buys at the programme start, ahead of any sale (rounded; only if it sells to tenants and has advisers)", ge=0, kind="policy", le=1_000_000)
    replacement_delay_months: float = F(unit="months", doc="time from a sale to the replacement purchase (how fast the municipality buys in practice)", ge=0, kind="behavioural", le=240)
    search_months_mean: float = F(unit="months", doc="mean time from approval to a private purchase (exponential)", gt=0, kind="behavioural", le=240)
    search_success_probability: Probability = F(unit="share", doc="share of approved private searchers who find a home", kind="behavioural")
    closing_months_own: float = F(unit="months", doc="time from approval to buying one's own municipal dwelling", ge=0, le=240)
    reapply_after_months: float = F(unit="months", doc="time before a refused or gave-up tenant is referred again", gt=0, le=240)
    max_attempts: int = F(unit="attempts", doc="times a tenant goes through advice and application at most", ge=1, le=4)


class Startlan(Section):
    """Startlån: ability to pay, loan sizing, interest, default and loss."""

    stress_addon_points: DatedRatePct = F(unit="%-points", doc="added to the loan rate when testing ability to pay", kind="policy")
    stress_floor_pct: DatedRateLevelPct = F(unit="%/year", doc="lowest rate ability to pay is tested at", kind="policy")
    term_years: float = F(unit="years", doc="normal term the payment is computed over", gt=0, le=50, kind="policy")
    long_term_years: float = F(unit="years", doc="longest term, for a household with lasting low income (the grant's means test) that cannot carry what it needs over term_years: tried before a grant", gt=0, le=50, kind="policy")
    max_share_of_price: float = F(unit="share of price + costs", doc="startlån cap as a share of price plus purchase costs: 1.0 is full financing, less is a top-up", gt=0, le=1.2, kind="policy")
    purchase_costs_share: float = F(unit="share of price", doc="fees and document duty on a purchase", ge=0, le=0.2)
    living_adult_nok_year: Nok = F(unit="NOK/year", doc="living costs per adult at period start (SIFO-style)", ge=0, le=1e8)
    living_child_nok_year: Nok = F(unit="NOK/year", doc="living costs per child at period start", ge=0, le=1e8)
    living_household_nok_year: Nok = F(unit="NOK/year", doc="fixed living costs per household at period start", ge=0, le=1e8)
    other_debt_nok_year: Nok = F(unit="NOK/year", doc="payments on other debt of a household with debt problems, deducted from its ability to pay also after advice clears the problems", ge=0, le=1e8)
    municipal_margin_points: float = F(unit="%-points", doc="municipality's margin over Husbanken's rate", ge=0, le=0.25, kind="policy")
    default_base_per_year: float = F(unit="1/year", doc="default hazard of a borrower at the reference payment burden", ge=0, kind="behavioural", le=12)
    default_burden_elasticity: float = F(unit="1/burden", doc="how steeply the hazard rises with payment burden", ge=0, le=100)
    default_reference_burden: Probability = F(unit="payment/income", doc="burden at which the hazard is the base")
    default_resolution_months: float = F(unit="months", doc="time a loan stays in default before the loss is settled", gt=0, le=240)
    forced_sale_discount_share: Probability = F(unit="share of value", doc="what the sale of a defaulted borrower's home loses against its market value (lower price, costs of the sale); the startlån loses what the rest, after any bank loan, does not cover")
    municipality_loss_share: Probability = F(unit="share of loss", doc="the municipality's share of a loss (the state carries the rest)")

    @model_validator(mode="after")
    def _terms(self) -> "Startlan":
        if self.long_term_years < self.term_years:
            raise ValueError(f"long_term_years: {self.long_term_years:g} years is shorter than term_years "
                             f"({self.term_years:g}); the long term must be at least the normal term")
        return self


class Round(Section):
    month: int = F(unit="month of year", doc="calendar month the round arrives (1-12)", ge=1, le=12)
    share: Probability = F(unit="share of yearly frame", doc="share of the year's frame in this round")
    cut_max_share: Probability = F(0.0, unit="share of round", doc="the round may be cut by a uniform random share up to this")


class Frame(Section):
    """The yearly startlån frame from Husbanken and how it is rationed."""

    yearly_nok: DatedNok = F(unit="NOK/year", doc="frame applied for and granted each year, before any cut", kind="policy")
    rounds: list[Round] = F(unit="rounds", doc="allocation rounds in a year: month, share, largest random cut", kind="policy")
    earmark_lte_share: Probability = F(0.0, unit="share of frame", doc="share reserved for leie-til-eie tenants", kind="policy")
    priority: Literal["first_come", "families_first", "lte_first", "smallest_loan_first"] = F(
        "first_come", unit="rule", doc="order in which waiting applicants are served", kind="policy")
    patience_months: float = F(unit="months", doc="mean time an approved applicant waits for the frame before giving up", gt=0, kind="behavioural", le=1200)
    carry_over: bool = F(False, unit="yes/no", doc="whether frame left at year end carries into the next year", kind="policy")

    @model_validator(mode="after")
    def _rounds(self) -> "Frame":
        if not self.rounds:
            raise ValueError("rounds: at least one allocation round is needed")
        months = [r.month for r in self.rounds]
        if months != sorted(set(months)):
            raise ValueError(f"rounds: dates out of order: months {months} must be strictly increasing")
        total = sum(r.share for r in self.rounds)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"rounds: shares sum to {total:g}; they must sum to 1")
        return self


class Tilskudd(Section):
    """Tilskudd til etablering: the means-tested establishment grant."""

    budget_nok_year: DatedNok = F(unit="NOK/year", doc="grant budget each year (dated by year: a budget is set for a calendar year)", kind="policy")
    max_share_of_price: Probability = F(unit="share of price", doc="largest grant as a share of price", kind="policy")
    max_nok: Nok = F(unit="NOK", doc="largest grant", ge=0, kind="policy", le=1e9)
    income_limit_nok_year: Nok = F(unit="NOK/year", doc="means test: income after tax at or below this (at period start, follows the income index)", ge=0, kind="policy", le=1e9)
    writedown_years: float = F(unit="years", doc="grant written down evenly over this many years", gt=0, le=100)

    @field_validator("budget_nok_year")
    @classmethod
    def _by_year(cls, value: Any) -> Any:
        """The year's budget is what may be committed in it: a change within a year has no meaning in the model
        (what is left is set each January), so it is refused rather than ignored until the next January."""
        within = [when for when in (value if isinstance(value, dict) else {}) if not re.fullmatch(r"\d{4}(-01)?", when)]
        if within:
            raise ValueError(f"{within[0]}: a yearly budget is dated by year (\"{within[0][:4]}\" or "
                             f"\"{int(within[0][:4]) + 1}\"), not within a year")
        return value


class OtherBorrowers(Section):
    """Startlån borrowers from outside the municipal stock, drawing on the same frame."""

    applicants_per_year: DatedCount = F(unit="households/year", doc="startlån applicants a year from outside the municipal stock; they meet the same tests, and many are refused or find no home", kind="behavioural")
    income_median_nok_year: Nok = F(unit="NOK/year", doc="median income after tax of a one-adult household at period start (a second adult adds households.second_adult_income_share)", gt=0, le=1e8)
    income_sigma_log: float = F(unit="log NOK", doc="spread of income", ge=0, le=3)
    share_with_children: Probability = F(unit="share", doc="share of households with children")
    savings_mean_nok: float = F(unit="NOK", doc="mean own funds (exponentially distributed)", ge=0, le=1e9)


class Calibration(Section):
    """Which parameters calibration may fit (uniform prior ranges), and the fit this scenario uses.

    A parameter key is a behavioural key path; ``key@DATE`` names one entry of a dated table
    (``"programme.potential_share@2015"``).
    """

    fitted: str = F("", unit="path", doc=(
        "fitted parameter file (relative to this file); its estimates replace the values here. It is checked when "
        "read: only the tables lte calibrate writes (`[fit]`, `[estimate]`, `[interval90]`, `[prior]`, `[posterior]`), "
        "every estimate and posterior draw a value its key can take, the posterior's weights finite, not negative "
        "and not all zero"))
    parameters: dict[str, list[float]] = F(default_factory=dict, unit="[low, high]",
                                           doc="free parameters and their uniform prior ranges")

    @model_validator(mode="after")
    def _parameters(self) -> "Calibration":
        for key, bounds in self.parameters.items():
            path = key.split("@")[0]
            kind = field_kind(path)
            if kind is None:
                raise ValueError(f"parameters: {key!r} is not a scenario key{_suggest(path, leaf_paths(Scenario))}")
            if kind != "behavioural":
                raise ValueError(f"parameters: {key!r} is a {kind} key; calibration fits behavioural keys only")
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"parameters: {key!r} needs a range [low, high] with low < high")
            info = field_info(path)
            check = TypeAdapter(Annotated[info.annotation, *info.metadata])
            for bound in bounds:
                try:
                    check.validate_python(bound)
                except ValidationError as exc:
                    rule = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    raise ValueError(f"parameters: {key!r}: the range's end {bound:g} is not a value {path} can "
                                     f"take ({rule})") from None
        return self

    @field_validator("parameters", mode="before")
    @classmethod
    def _ranges_are_numbers(cls, value: Any) -> Any:
        """A range is two numbers written as numbers ([2, 12]; not ["2", "12"] or [false, true])."""
        if isinstance(value, dict):
            for key, bounds in value.items():
                if not isinstance(bounds, list) or not all(is_number(b) for b in bounds):
                    raise ValueError(f"{key!r}: a range is two numbers [low, high], got {bounds!r}")
        return value


class Scenario(Section):
    """A whole scenario. ``sources`` maps a key path to its source or to 'assumption: why'."""

    name: str = F(unit="text", doc=("short name; used for the default output folder: letters A-Z, digits and "
                                    "`_ . -`, not starting with `.`"), min_length=1, pattern=NAME_PATTERN)
    description: str = F("", unit="text", doc="what this scenario is for")
    seed: int = F(1, unit="integer", doc="default seed for replications (the --seed flag overrides)", ge=0)
    replications: int = F(20, unit="runs", doc="default number of replications (--replications overrides)", ge=1, le=MAX_REPLICATIONS)
    period: Period = Period()
    stock: Stock
    households: Households
    market: Market
    programme: Programme
    startlan: Startlan
    frame: Frame
    tilskudd: Tilskudd
    other_borrowers: OtherBorrowers
    calibration: Calibration = Calibration()
    sources: dict[str, str] = F(default_factory=dict, unit="text", doc="key path -> source or 'assumption: ...'")

    @model_validator(mode="after")
    def _dated_cover_period(self) -> "Scenario":
        start = YearMonth.parse(self.period.start)
        for path, value in iter_leaves(self.model_dump(exclude={"sources"})):
            if isinstance(value, dict) and value and all(_DATE_KEY.match(str(k)) for k in value):
                first = parse_dated(value)[0][0]
                if first > start:
                    raise ValueError(f"{path}: the first dated value ({first}) comes after the period start ({start}); "
                                     "give a value in force at the start")
        known = set(leaf_paths(Scenario))
        for key in self.sources:
            if key not in known:
                raise ValueError(f"sources: {key!r} is not a key of the scenario{_suggest(key, known)}")
        return self


_DATE_KEY = re.compile(r"^\d{4}(-\d{2})?$")


def iter_leaves(tree: dict, prefix: str = ""):
    """Yield (dotted path, value) for every leaf of a nested dict; dated tables count as leaves."""
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and not all(_DATE_KEY.match(str(k)) for k in value):
            yield from iter_leaves(value, path + ".")
        else:
            yield path, value


def leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Dotted paths of every field in the schema (sections expanded)."""
    out = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, Section):
            out.extend(leaf_paths(ann, f"{prefix}{name}."))
        else:
            out.append(f"{prefix}{name}")
    return out


def field_info(path: str):
    """(FieldInfo, section model) of a dotted key path, or None if the schema has no such key."""
    model: type[BaseModel] = Scenario
    parts = path.split(".")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return None
        ann = field.annotation
        if i == len(parts) - 1:
            return field
        if not (isinstance(ann, type) and issubclass(ann, Section)):
            return None
        model = ann
    return None


def field_kind(path: str) -> str | None:
    info = field_info(path)
    if info is None:
        return None
    return (info.json_schema_extra or {}).get("kind", "fact")


# keys an earlier version read, and what replaced them (a scenario written for it gets a pointer, not a guess)
RENAMED = {
    "startlan.loss_given_default_share": "replaced by startlan.forced_sale_discount_share: the loss on a default "
                                         "is now what the sale of the home leaves uncovered (README)",
}


def _suggest(word: str, candidates) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


# ----------------------------------------------------------------------------------------------------------
# Loading


NOT_REGULAR = "is not a regular file (a device, a pipe or a socket): give a TOML file"


def file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be read as a file ("not found", a folder, a device or a pipe), or None if it can.

    Checked before reading: a device such as /dev/zero would be read for ever and a pipe would wait for a writer."""
    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # (the latter: a path through a file, "a.toml/b.toml")
        return "not found"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not stat.S_ISREG(mode):
        return NOT_REGULAR
    return None


def read_toml(path: Path) -> dict:
    """Read a TOML file (a UTF-8 byte-order mark, as some Windows editors write, is skipped); a missing or
    malformed file, a folder or anything else that is not a regular file is a ScenarioError naming it."""
    problem = file_problem(path)
    if problem:
        raise ScenarioError(str(path), [("", "file not found" if problem == "not found" else problem)])
    try:
        # non-blocking, so that a pipe put in the file's place since the check does not wait for a writer
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ScenarioError(str(path), [("", NOT_REGULAR)])
            return tomllib.loads(fh.read().decode("utf-8").removeprefix("\ufeff"))
    except FileNotFoundError:
        raise ScenarioError(str(path), [("", "file not found")]) from None
    except IsADirectoryError:
        raise ScenarioError(str(path), [("", "is a folder, not a file")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(str(path), [("", f"not valid TOML: {exc}")]) from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), [("", "not a UTF-8 text file")]) from None


def merge(base: dict, override: dict, origins: dict[str, str], file: str, prefix: str = "") -> dict:
    """Merge override over base key by key (sections recurse; dated tables and lists are replaced)."""
    out = dict(base)
    for key, value in override.items():
        path = f"{prefix}{key}"
        info = field_info(path)
        annotation = info.annotation if info is not None else None
        is_section = isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, Section)
        if is_section and isinstance(out.get(key), dict) and key != "sources":
            out[key] = merge(out[key], value, origins, file, path + ".")
        elif key == "sources" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
            origins[path] = file
        else:
            out[key] = value
            origins[path] = file
            if isinstance(value, dict):
                for sub, _ in iter_leaves(value, path + "."):
                    origins[sub] = file
    return out


def _leaf(tree: dict, key: str):
    """The value at a dotted key path of a nested dict, or None."""
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def is_sweep_file(raw: dict) -> bool:
    """A file read as TOML is a sweep file, not a scenario, if it names a base scenario or has levers,
    uncertainties or a design (the one rule lte validate, lte run and lte sweep share)."""
    return "base" in raw or any(key in raw for key in ("levers", "uncertainties", "design"))


def load_raw(path: str | Path, _chain: tuple[Path, ...] = ()) -> tuple[dict, dict[str, str], list[Path]]:
    """Read a scenario file and the files it extends. Returns (merged dict, key origins, files read)."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        raise ScenarioError(str(path), [("extends", "files extend each other in a circle")])
    data = read_toml(path)
    if is_sweep_file(data):
        raise ScenarioError(str(path), [("", "is a sweep file (it names a base scenario, or has levers, "
                                             "uncertainties or a design), not a scenario; run it with lte sweep")])
    origins: dict[str, str] = {}
    files = [path]
    base_name = data.pop("extends", None)
    if base_name is not None:
        if not isinstance(base_name, str):
            raise ScenarioError(str(path), [("extends", "must be a file name in quotes")])
        base_path = path.parent / base_name
        problem = file_problem(base_path)
        if problem:
            raise ScenarioError(str(path), [("extends", f"base file {base_path} {problem}")])
        base, origins, base_files = load_raw(base_path, _chain + (resolved,))
        files = base_files + files
        base.pop("name", None)  # a variant names itself (or takes its file name)
        origins.pop("name", None)
        origins.pop(NAME_FROM_FILE, None)
        own_sources = data.get("sources") if isinstance(data.get("sources"), dict) else {}
        inherited = base.get("sources") if isinstance(base.get("sources"), dict) else {}
        own = data
        data = merge(base, own, origins, str(path))
        # a value the variant changes without a source of its own no longer has the base file's source (which
        # was for the base's value): say so, rather than let a report pair the new value with the old source
        changed = [key for key, value in iter_leaves({k: v for k, v in own.items() if k != "sources"})
                   if key in inherited and key not in own_sources and _leaf(base, key) != value]
        if changed and isinstance(data.get("sources"), dict):
            data["sources"] = {**data["sources"], **{key: f"set in {path.name} without a source (the base file's "
                                                          "source was for its own value)" for key in changed}}
    else:
        for sub, _ in iter_leaves(data):
            origins[sub] = str(path)
    if "name" not in data:
        data["name"] = path.stem
        origins[NAME_FROM_FILE] = str(path)
    origins.setdefault("name", str(path))
    return data, origins, files


def validate(data: dict, origins: dict[str, str], default_file: str, computed: bool = False) -> Scenario:
    """Validate a merged scenario dict; raise one ScenarioError listing every problem. ``computed``: some values
    were computed, not written (see COMPUTED)."""
    try:
        return Scenario.model_validate(data, context=COMPUTED if computed else None)
    except ValidationError as exc:
        problems: dict[str, list[tuple[str, str]]] = {}
        for err in exc.errors():
            loc = [str(x) for x in err["loc"]]
            key = ".".join(loc)
            rule = _rule(err, loc)
            if loc == ["name"]:  # the rule in words, not a pattern
                given = ", the file's name, as name is not set" if NAME_FROM_FILE in origins else ""
                rule = f"{NAME_RULE} (got {err.get('input')!r}{given})"
            file = _origin(loc, origins, default_file)
            problems.setdefault(file, []).append((key, rule))
        files = list(problems)
        if len(files) == 1:
            raise ScenarioError(files[0], problems[files[0]]) from None
        flat = [(f"{key} (in {file})" if key else file, rule) for file in files for key, rule in problems[file]]
        raise ScenarioError(default_file, flat) from None


def _model_at(parts: list[str]):
    """The section model at a key path; list items (``frame.rounds.0``) resolve to the item's model."""
    import typing

    model: Any = Scenario
    for part in parts:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = field.annotation
        if typing.get_origin(model) is list:
            model = typing.get_args(model)[0]
    return model


def _rule(err: dict, loc: list[str]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        if ".".join(loc) in RENAMED:
            return f"unknown key: {RENAMED['.'.join(loc)]}"
        model = _model_at([part for part in loc[:-1] if not part.isdigit()])
        names = model.model_fields.keys() if isinstance(model, type) and issubclass(model, BaseModel) else []
        return f"unknown key{_suggest(loc[-1], names)}"
    if kind == "missing":
        return "required key is missing"
    msg = err["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    bounds = {"greater_than_equal": ("ge", "at least"), "less_than_equal": ("le", "at most"),
              "greater_than": ("gt", "above"), "less_than": ("lt", "below")}
    if kind in bounds:
        key, words = bounds[kind]
        limit = (err.get("ctx") or {}).get(key)
        return f"must be {words} {limit} (got {err.get('input')!r})"
    return msg


def _origin(loc: list[str], origins: dict[str, str], default: str) -> str:
    for n in range(len(loc), 0, -1):
        key = ".".join(loc[:n])
        if key in origins:
            return origins[key]
    return default


def load(path: str | Path, apply_fit: bool = True) -> "LoadedScenario":
    """Read, merge and validate a scenario file; apply its fitted parameter file if it names one.

    Raises ScenarioError for any user mistake.
    """
    data, origins, files = load_raw(path)
    fit, fit_path = None, None
    fitted = (data.get("calibration") or {}).get("fitted") if isinstance(data.get("calibration"), dict) else None
    if fitted and apply_fit:
        # the values as written are checked first: a fit replacing a bad value must not hide it
        validate(data, origins, str(path))
        owner = origins.get("calibration.fitted", str(path))
        fit_path = Path(owner).parent / fitted
        problem = file_problem(fit_path)
        if problem:
            raise ScenarioError(owner, [("calibration.fitted", f"fitted parameter file {fit_path} {problem}")])
        fit = read_fit(fit_path)
        # a file that extends the one naming the fit and sets a fitted key itself keeps its own value
        rank = {str(f): i for i, f in enumerate(files)}
        fit["applied"] = [k for k in fit["estimate"]
                          if rank.get(origins.get(k.partition("@")[0], owner), 0) <= rank.get(owner, 0)]
        for key in fit["applied"]:
            set_value(data, key, fit["estimate"][key], str(fit_path))
            origins[key.partition("@")[0]] = str(fit_path)  # (a rule the fitted value breaks is the fit's)
        files = files + [fit_path]
    scenario = validate(data, origins, str(path))
    return LoadedScenario(scenario, [Path(f) for f in files], fit, fit_path)


# what `lte calibrate` writes in a fitted parameter file (sim.calibration.fit_toml): its tables, and [fit]'s keys
FIT_TABLES = ("fit", "estimate", "interval90", "prior", "posterior")
FIT_INFO = {"scenario": str, "targets": str, "until": str, "package_version": str, "seed": int, "particles": int,
            "generations": int, "replications": int, "evaluations": int, "tolerance": list}


def _fitted_value_problem(key: str, value: Any) -> str | None:
    """Why ``value`` cannot be the value of the scenario key ``key`` (or ``key@DATE``), or None."""
    path = key.partition("@")[0]
    info = field_info(path)
    if info is None:
        return f"not a scenario key{_suggest(path, leaf_paths(Scenario))}"
    if not is_number(value):
        return f"must be a finite number (got {value!r})"
    try:
        _adapter(path).validate_python(value)
    except ValidationError as exc:
        return _rule(exc.errors()[0], [path])
    return None


_ADAPTERS: dict[str, TypeAdapter] = {}


def _adapter(path: str) -> TypeAdapter:
    if path not in _ADAPTERS:
        info = field_info(path)
        _ADAPTERS[path] = TypeAdapter(Annotated[info.annotation, *info.metadata])
    return _ADAPTERS[path]


def read_fit(path: Path) -> dict:
    """A fitted parameter file: [fit] (how it was made), [estimate] (applied), [interval90] and [prior] (shown),
    [posterior] (draws and weights). Every value is checked here, so that a mistake is named in this file."""
    fit = read_toml(path)
    problems: list[tuple[str, str]] = []
    for table, value in fit.items():
        if table not in FIT_TABLES:
            problems.append((table, f"unknown table; a fitted parameter file has [{'], ['.join(FIT_TABLES)}]"
                                    f"{_suggest(table, FIT_TABLES)}"))
        elif not isinstance(value, dict):
            problems.append((table, f"must be a table ([{table}] with key = value lines)"))
    if problems:
        raise ScenarioError(str(path), problems)
    for key, value in fit.get("fit", {}).items():
        kind = FIT_INFO.get(key)
        if kind is None:
            problems.append((f"fit.{key}", f"unknown key{_suggest(key, FIT_INFO)}"))
        elif kind is int and not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            problems.append((f"fit.{key}", f"must be a whole number of at least 0 (got {value!r})"))
        elif kind is str and not isinstance(value, str):
            problems.append((f"fit.{key}", f"must be a text in quotes (got {value!r})"))
        elif kind is list and not (isinstance(value, list) and all(is_number(x) or x == "inf" for x in value)):
            problems.append((f"fit.{key}", f"must be a list of numbers (or \"inf\") (got {value!r})"))
    estimate = fit.get("estimate")
    if not estimate:
        problems.append(("estimate", "a fitted parameter file needs an [estimate] table of key = value"))
        estimate = {}
    for key, value in estimate.items():
        problem = _fitted_value_problem(key, value)
        if problem:
            problems.append((f"estimate.{key}", problem))
    for table in ("interval90", "prior"):
        for key, value in fit.get(table, {}).items():
            if key not in estimate:
                problems.append((f"{table}.{key}", f"unknown key: not a key of [estimate]{_suggest(key, estimate)}"))
            elif not (isinstance(value, list) and len(value) == 2 and all(is_number(x) for x in value)):
                problems.append((f"{table}.{key}", f"must be two numbers [low, high] (got {value!r})"))
    post = fit.get("posterior", {})
    if post:
        problems += _posterior_problems(post, estimate)
    if problems:
        raise ScenarioError(str(path), problems)
    return fit


def _posterior_problems(post: dict, estimate: dict) -> list[tuple[str, str]]:
    """The posterior sample: weights (finite, at least 0, not all 0), and for each estimated key as many valid
    draws as there are weights."""
    problems = [(f"posterior.{key}", f"unknown key: not weights or a key of [estimate]{_suggest(key, estimate)}")
                for key in post if key != "weights" and key not in estimate]
    weights = post.get("weights")
    if not isinstance(weights, list) or not weights:
        return problems + [("posterior.weights", "needs a list of weights, one per draw")]
    bad = [w for w in weights if not is_number(w) or w < 0]
    if bad:
        return problems + [("posterior.weights", f"weights must be finite numbers of at least 0 (got {bad[0]!r})")]
    if not sum(weights) > 0:
        return problems + [("posterior.weights", "weights must not all be 0")]
    n = len(weights)
    for key in estimate:
        draws = post.get(key)
        if not isinstance(draws, list) or len(draws) != n:
            got = f"{len(draws)}" if isinstance(draws, list) else "none"
            problems.append((f"posterior.{key}", f"needs a list of {n} draws, one per weight (got {got})"))
            continue
        for i, value in enumerate(draws):
            problem = _fitted_value_problem(key, value)
            if problem:
                problems.append((f"posterior.{key}", f"draw {i + 1}: {problem}"))
                break
    return problems


class LoadedScenario:
    """A validated scenario with the files it came from (for the manifest's hash) and its fit, if any (the
    fitted parameter file's contents and its path)."""

    def __init__(self, scenario: Scenario, files: list[Path], fit: dict | None = None, fit_path: Path | None = None):
        self.scenario = scenario
        self.files = files
        self.fit = fit
        self.fit_path = fit_path

    @property
    def fitted_keys(self) -> list[str]:
        """The keys whose values come from the fit: those :func:`load` applied (a variant's own values are kept),
        or every estimated key of a fit built in memory (calibration's)."""
        return list(self.fit.get("applied", self.fit.get("estimate", {}))) if self.fit else []

    def posterior_draws(self, n: int, seed: int) -> list[dict[str, float]]:
        """n parameter sets drawn (by weight, with replacement) from the fit's posterior; seeded."""
        if not self.fit or not self.fit.get("posterior"):
            return []
        post = self.fit["posterior"]
        keys = self.fitted_keys
        if not keys:
            return []
        import numpy as np

        w = np.asarray(post["weights"], float)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2**31 - 1,)))
        idx = rng.choice(len(w), size=n, p=w / w.sum())
        return [{k: post[k][i] for k in keys} for i in idx]

    def files_hash(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
        return h.hexdigest()


def set_value(data: dict, key: str, value: Any, file: str) -> None:
    """Set ``key`` (a dotted path, or ``path@DATE`` for one entry of a dated table) in a scenario dict."""
    path, _, date = key.partition("@")
    node = data
    parts = path.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise ScenarioError(file, [(key, f"unknown key{_suggest(path, leaf_paths(Scenario))}")])
        node = node[part]
    if parts[-1] not in node:
        raise ScenarioError(file, [(key, f"unknown key{_suggest(path, leaf_paths(Scenario))}")])
    if not date:
        node[parts[-1]] = value
        return
    table = node[parts[-1]]
    if not isinstance(table, dict) or date not in table:
        have = ", ".join(table) if isinstance(table, dict) else "a single value"
        raise ScenarioError(file, [(key, f"{path} has no dated entry {date} (it has {have})")])
    table[date] = value


def get_value(data: dict, key: str, file: str = "<scenario>") -> Any:
    """The value at ``key`` (or ``path@DATE``) of a scenario dict; a missing key is a ScenarioError."""
    path, _, date = key.partition("@")
    node = data
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ScenarioError(file, [(key, f"unknown key{_suggest(path, leaf_paths(Scenario))}")])
        node = node[part]
    if not date:
        return node
    if not isinstance(node, dict) or date not in node:
        have = ", ".join(node) if isinstance(node, dict) else "a single value"
        raise ScenarioError(file, [(key, f"{path} has no dated entry {date} (it has {have})")])
    return node[date]


def with_overrides(scenario: Scenario, overrides: dict[str, Any], file: str = "<overrides>",
                   computed: bool = False) -> Scenario:
    """A copy of a scenario with values replaced (``key`` or ``key@DATE``), validated again (sweeps, calibration);
    ``computed`` when some values were computed (a sweep's uncertainty samples), not written in a file."""
    data = scenario.model_dump(mode="json")
    origins: dict[str, str] = {}
    unknown: list[tuple[str, str]] = []  # keys that name nothing: reported with the values the others break
    for key, value in overrides.items():
        try:
            set_value(data, key, value, file)
        except ScenarioError as e:
            unknown.extend(e.problems)
            continue
        origins[key.partition("@")[0]] = file
    try:
        checked = validate(data, origins, file, computed)
    except ScenarioError as e:
        if not unknown or e.file != file:
            raise
        unknown.extend(e.problems)
    if unknown:
        raise ScenarioError(file, unknown)
    return checked
