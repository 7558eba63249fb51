"""The model: dwellings and households (entities) and the simpy processes that move them.

A household arrives on the waiting list, moves into a municipal dwelling when one is re-let, and may be
screened for ownership potential, advised, apply for a startlån (and a tilskudd), wait for the frame,
and buy: its own municipal dwelling or one on the private market. Tenants also leave by other routes.
Other startlån borrowers from outside the stock draw on the same frame.

Every household carries its own row of uniform random numbers, drawn when the run is set up, and each
decision maps one fixed column of that row through its distribution. A policy that delays a household
changes when its draws are used, never which draws it gets (common random numbers across policies).

Time is in months from the scenario's start. Flows are counted into arrays indexed by month; levels are
recorded at each month end. Nothing here touches pandas or the file system.
"""

from __future__ import annotations

import bisect
import contextlib
import gc
import itertools
import math
import operator
from collections import deque
from collections.abc import Iterator
from heapq import heappush

import numpy as np
import simpy
from scipy import special
from scipy.special import cython_special

from sim import lending
from sim.events import NORMAL, URGENT, Call, Due, Environment, Signal, run_events
from sim.frame import Frame
from sim.scenario import Scenario
from sim.timeline import YearMonth, parse_dated, resolve_monthly

# Flows: counted in the month they happen; a year is their sum.
FLOWS = (
    "arrivals", "moved_in", "gave_up_waiting", "exits_other_routes",
    "screened", "referred", "referred_again", "left_advice_queue", "advice_started", "advice_completed",
    "advice_dropped",
    "applications", "refused_debt", "refused_ability_to_pay", "refused_grant_budget",
    "frame_approved", "frame_gave_up", "frame_wait_months_sum", "search_failed",
    "new_owners_municipal", "new_owners_private",
    "new_owners_municipal_immigrant", "new_owners_private_immigrant",
    "new_owners_municipal_introduction", "new_owners_private_introduction",
    "new_owners_municipal_introduction_ever", "new_owners_private_introduction_ever",
    "startlan_loans", "startlan_nok", "startlan_loans_lte", "startlan_nok_lte",
    "startlan_loans_other", "startlan_nok_other", "bank_loan_nok",
    "tilskudd_grants", "tilskudd_nok",
    "frame_granted_nok", "frame_expired_nok", "frame_lapsed_nok",
    "units_sold", "units_sold_value_nok", "units_bought", "units_bought_cost_nok",
    "other_applicants", "other_refused",
    "defaults", "loss_nok", "loss_municipality_nok", "loss_state_nok", "rent_income_nok",
)
# Levels: the state at the end of each month; a year takes its last month's value (December, but at the run's end).
LEVELS = (
    "tenants", "municipal_units", "vacant_units", "waiting_list", "in_advice", "advice_queue",
    "waiting_for_frame", "frame_remaining_nok", "tilskudd_remaining_nok", "rent_roll_nok_month",
    "active_loans", "loans_in_default",
)


class MonthFlows:
    """One month's flows while the model runs: an attribute per name in FLOWS. Counting is an attribute update
    (``model.flows_now.moved_in += 1.0``), the cheapest a Python object offers (slots: about 20 ns, where a list
    per flow indexed by the month takes 50 ns and a dict entry 70 ns; flows are counted about once per event)."""

    __slots__ = FLOWS

    def __init__(self):
        for name in FLOWS:
            setattr(self, name, 0.0)


# Columns of a household's row of uniforms.
U_PATIENCE, U_EXIT, U_SCREEN, U_POTENTIAL, U_OWN, U_WORK, U_DEFAULT, U_REPLACE = range(8)
U_TWO_ADULTS, U_CHILDREN, U_N_CHILDREN, U_IMMIGRANT, U_INTRO, U_INCOME, U_SAVINGS, U_DEBT = range(8, 16)
ATTEMPT_BASE = 16
# each attempt's own draws: an advice spell may clear debt problems that an earlier one did not
U_ADVICE, U_DROPOUT, U_PRICE, U_SEARCH, U_FRAME_PATIENCE, U_DEBT_CLEAR = range(6)
PER_ATTEMPT = 6
MAX_ATTEMPTS = 4
HOUSEHOLD_CHUNK = 256  # households built at a time, just before they arrive (see _build_households)
N_UNIFORMS = ATTEMPT_BASE + PER_ATTEMPT * MAX_ATTEMPTS

# Stream names, in a fixed order: each is spawned from the replication's seed by its index.
STREAMS = ("stock", "tenants", "arrivals", "other_borrowers", "frame_rounds")

_time_of = operator.attrgetter("t")

# Outcomes of one attempt at buying.
BOUGHT, REFUSED, DROPPED = "bought", "refused", "dropped"


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector, and restore it after. A run creates millions of short-lived
    objects and no garbage cycles that matter while it runs; the collector would re-scan every live household
    again and again, a cost that grows faster than the stock (measured in benchmarks/). Reference counting still
    frees everything as usual. Nested use keeps it paused until the outermost ends."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


def poisson_ppf(q: np.ndarray, mu: float) -> np.ndarray:
    """The Poisson quantile function for 0 <= q < 1: the smallest k with P(X <= k) >= q, found in a table
    of the distribution function (``scipy.special.pdtr``, as ``scipy.stats.poisson`` uses) rather than by
    ``scipy.stats.poisson.ppf``'s iterative inversion, which is slow for thousands of households."""
    k_max = int(mu + 12 * math.sqrt(mu) + 12)
    cdf = special.pdtr(np.arange(k_max + 1), mu)
    cdf[-1] = 1.0  # the tail beyond k_max is below double precision
    return np.searchsorted(cdf, q, side="left").astype(float)


class Dwelling:
    __slots__ = ("id", "family", "value0_nok", "rent0_nok", "sellable", "dedicated", "tenant_id")

    def __init__(self, id, family, value0_nok, rent0_nok, sellable, dedicated):
        self.id = id
        self.tenant_id = -1  # the household living in it, for the record of its leaving
        self.family = family
        self.value0_nok = value0_nok
        self.rent0_nok = rent0_nok
        self.sellable = sellable
        self.dedicated = dedicated


class Household:
    """A household; ``lte`` is True for municipal tenants, False for other startlån borrowers."""

    __slots__ = ("id", "lte", "adults", "children", "immigrant", "intro_end", "works_after_intro",
                 "income0_nok", "savings_nok", "debt_problems", "other_debt", "u", "arrived", "give_up_at",
                 "dwelling", "exit_at")

    def __init__(self, id, lte, adults, children, immigrant, intro_end, works_after_intro,
                 income0_nok, savings_nok, debt_problems, u, arrived):
        self.id = id
        self.lte = lte
        self.adults = adults
        self.children = children
        self.immigrant = immigrant
        self.intro_end = intro_end  # model time the introduction programme ends (-inf if never in it); set again
        # when the household moves in, since the programme starts at settlement
        self.works_after_intro = works_after_intro
        self.income0_nok = income0_nok
        self.savings_nok = savings_nok
        self.debt_problems = debt_problems  # payment problems: no loan until advice clears them
        self.other_debt = debt_problems  # the debt itself: its payments count against ability to pay, cleared or not
        self.u = u  # the household's uniforms, one column per decision (see U_*)
        self.arrived = arrived
        self.give_up_at = math.inf
        self.dwelling = None
        self.exit_at = math.inf


class Advisers:
    """The advisers' places: at most ``capacity`` households in advice at once, the rest queue in order.

    A household that finds a free place starts at once, without an event; one that queues gets an event that
    fires with True when a place is handed over, or with False if it leaves the queue first (it moves away).
    Unlike ``simpy.Resource`` (which removes a finished user from a list, a cost that grows with the capacity)
    every operation here is O(1), which matters for county-size stocks: one who leaves stays in the queue, marked
    by its fired event, until a place would have come to it.
    """

    def __init__(self, env: simpy.Environment, capacity: int):
        self.env = env
        self.capacity = capacity
        self.busy = 0
        self.queue: deque[Signal] = deque()
        self._gone = 0  # events in the queue whose household has left it

    @property
    def queued(self) -> int:
        """Households waiting for a place."""
        return len(self.queue) - self._gone

    def request(self) -> Signal | None:
        """None if a place is free (and now taken); else an event that fires when one is handed over."""
        if self.busy < self.capacity:
            self.busy += 1
            return None
        event = Signal(self.env)
        self.queue.append(event)
        return event

    def leave(self, event: Signal) -> None:
        """The household waiting on ``event`` leaves the queue (its event fires with False), unless its place has
        come already."""
        if not event.triggered:
            event.succeed(False)
            self._gone += 1

    def release(self) -> None:
        """A household leaves advice: its place goes to the first still in the queue, or becomes free."""
        while self.queue:
            event = self.queue.popleft()
            if event.triggered:  # its household left the queue
                self._gone -= 1
                continue
            event.succeed(True)
            return
        self.busy -= 1


class _Values:
    """A scenario's values, section by section, as plain attributes: what the model reads while it runs. (Reading
    an attribute of a pydantic model costs three times as much, and the model reads the scenario on nearly every
    event: 3 % of a replication's instructions.)"""

    def __init__(self, model):
        for name in type(model).model_fields:
            value = getattr(model, name)
            setattr(self, name, _Values(value) if hasattr(type(value), "model_fields") else value)


class Params:
    """The scenario resolved for fast lookups: dated values as per-month lists, the rest as floats."""

    def __init__(self, s: Scenario):
        self.scenario = s
        self.start = YearMonth.parse(s.period.start)
        self.n = s.period.n_months
        self.programme_start = float(YearMonth.parse(s.period.programme_start).index() - self.start.index())

        def monthly(value):
            return resolve_monthly(parse_dated(value), self.start, self.n).tolist()

        m = s.market
        self.price_index = monthly(m.price_index)
        self.rate_pct = monthly(m.husbanken_rate_pct)
        # a loan's rate each month, as a fraction (Husbanken's rate + the margin), computed as the budget does
        self.loan_rate_month = lending.monthly_rate(np.array(self.rate_pct), s.startlan.municipal_margin_points).tolist()
        self.income_index = monthly(m.income_index)
        self.cost_index = monthly(m.cost_index)
        self.arrivals_per_year = np.array(monthly(s.households.arrivals_per_year))
        self.potential_share = monthly(s.programme.potential_share)
        self.replacement_ratio = monthly(s.programme.replacement_ratio)
        # what an application is tested against each month: the stressed rate (percent) and the grant's income limit
        sl = s.startlan
        self.stressed_rate_pct = [lending.stressed_rate_pct(rate + sl.municipal_margin_points, addon, floor)
                                  for rate, addon, floor in zip(self.rate_pct, monthly(sl.stress_addon_points),
                                                                monthly(sl.stress_floor_pct))]
        self.grant_income_limit = [s.tilskudd.income_limit_nok_year * i for i in self.income_index]
        self.frame_yearly = monthly(s.frame.yearly_nok)
        self.tilskudd_budget = monthly(s.tilskudd.budget_nok_year)
        self.other_per_year = np.array(monthly(s.other_borrowers.applicants_per_year))
        # screening hazard per month, and its running total from the start (for dated rates)
        self.screening_rate = [r / 12.0 for r in monthly(s.programme.screening_rate_per_year)]
        self.screening_cum = np.concatenate([[0.0], np.cumsum(self.screening_rate)]).tolist()

    def screening_time(self, t: float, e: float) -> float:
        """When a tenant is screened, counting from t, given a unit exponential draw e: the time at which the
        screening hazard accumulated since t reaches e (inverse of the cumulative hazard; dated rates allowed)."""
        m = int(t)
        if m >= self.n:
            return math.inf
        target = self.screening_cum[m] + (t - m) * self.screening_rate[m] + e
        k = bisect.bisect_right(self.screening_cum, target) - 1
        if k >= self.n:
            return math.inf
        return k + (target - self.screening_cum[k]) / self.screening_rate[k]

    def month(self, t: float) -> int:
        return min(int(t), self.n - 1)


class Model:
    """One replication of the model. Build it, call :meth:`run`, read the arrays."""

    # Every attribute of the model, declared: the model reads its own attributes on nearly every line, and a slot
    # is read by the interpreter's fastest path, where an instance dictionary of this size (over 30 names) is not
    # (3 % fewer instructions per Drammen replication).
    __slots__ = (
        "s", "p", "rng", "env", "n", "t_end", "this_month",  # inputs and the clock
        "_patience_months", "_exit_rate_month", "_introduction_months", "_advice_shape", "_advice_scale",
        "_months", "flows_now", "flow", "level", "_loans_diff", "_default_diff",  # what is counted
        "events_handled", "record_events", "events", "loans", "drawn", "_joined", "_left",  # what is recorded
        "_later", "_due", "_newcomers", "_running", "_next_household_id", "_next_dwelling_id",  # what is due
        "stock", "vacant", "waiting", "tenants", "rent_roll0", "in_advice", "exited", "sold", "bought",  # state
        "tilskudd_left", "advisers", "frame",
        "_on_relet", "_on_exit", "_on_refer", "_on_give_up_frame", "_on_leave_queue",  # bound actions
        "__weakref__",
    )

    def __init__(self, scenario: Scenario, streams: dict[str, np.random.Generator], record_events: bool = False):
        self.s = _Values(scenario)
        self.p = Params(scenario)
        self.rng = streams
        # the clock is read as ``env._now``, as SimPy's own loop reads it: ``env.now`` is a property, a Python call
        # on nearly every event (4 % of a replication's instructions); like Due, this relies on SimPy 4's internals
        self.env = Environment()
        self.n = n = self.p.n
        self.t_end = float(n)  # the end as a time: a float compared with an int takes the interpreter's slow path
        self.this_month = 0  # int(env.now), kept by the calendar (which runs first at each month boundary)
        h = scenario.households  # read on every move-in and arrival
        self._patience_months = h.waiting_patience_months
        self._exit_rate_month = h.exit_rate_per_year / 12.0
        self._introduction_months = h.introduction_months
        prog = scenario.programme  # advice durations: gamma, from the mean and coefficient of variation
        self._advice_shape = 1.0 / prog.advice_months_cv ** 2
        self._advice_scale = prog.advice_months_mean / self._advice_shape
        # flows while running: one MonthFlows per month; the current month's is ``flows_now``, kept by the
        # calendar. After the run, ``flow`` holds an array per flow.
        self._months = [MonthFlows() for _ in range(n)]
        self.flows_now = self._months[0]
        self.flow: dict[str, np.ndarray] = {}
        self.level = {name: np.zeros(n) for name in LEVELS}
        # +1 when a loan starts, -1 when it ends (lists: an element of a numpy array takes five times as long to
        # update)
        self._loans_diff = [0] * (n + 1)
        self._default_diff = [0] * (n + 1)
        self.events_handled = 0  # every event the loop handles for this run (tests check it against the loop)
        self.record_events = record_events
        self.events: list[tuple] = []
        # the calls and waits due in month m (each carries its time, t), moved to ``_due`` when the month begins
        self._later: list[list | None] = [[] for _ in range(n)]
        self._due: list = []  # this month's, once it has begun: sorted by time, the first due last
        self._newcomers: list[tuple] = []  # (arrivals per month, their households, the call that receives them)
        self._running: set[simpy.Process] = set()  # the processes not yet finished (see _close)
        self.loans: list[tuple] = []
        # households are not kept once they leave (memory at county scale); what the tables need is recorded
        self.drawn: list[tuple[np.ndarray, ...]] = []  # per batch drawn: ids, is-tenant, arrival time, income
        self._next_household_id = 0
        # each household's time on the waiting list: when it joined, when it left (two lists of floats: the cheapest
        # to append to, and numpy reads them at the end without unpacking tuples)
        self._joined: list[float] = []
        self._left: list[float] = []
        # state
        self.stock: dict[int, Dwelling] = {}
        self.vacant: deque[Dwelling] = deque()
        self.waiting: deque[Household] = deque()
        self.tenants = 0
        self.rent_roll0 = 0.0
        self.in_advice = 0
        self.exited = {"owner": 0, "other_route": 0, "gave_up_waiting": 0}
        self.sold = 0
        self.bought = 0
        self.tilskudd_left = 0.0
        self.advisers = Advisers(self.env, max(1, prog.advisers * prog.households_per_adviser)) \
            if prog.advisers > 0 else None
        f = scenario.frame
        self.frame = Frame(self.env, f.earmark_lte_share, f.priority, f.carry_over)
        self._next_dwelling_id = 0
        # the actions of timed calls, bound once: a bound method made for each call would be another object to
        # allocate, keep for years and fetch from memory when the call fires (the model's own are freed in _close:
        # each holds the model)
        self._on_relet = self._relet
        self._on_exit = self._exit_other_route
        self._on_refer = self._refer
        self._on_give_up_frame = self._give_up_frame
        self._on_leave_queue = self.advisers.leave if self.advisers is not None else None

    # ------------------------------------------------------------------ bookkeeping
    def _process(self, generator) -> simpy.Process:
        """Start a process. SimPy handles an event to start it, counted here, and one when it ends (see
        :meth:`_ended`)."""
        self.events_handled += 1
        process = simpy.Process(self.env, generator)
        self._running.add(process)
        return process

    def _ended(self) -> None:
        """Called by a process's generator as it returns: SimPy handles the end as an event, counted here, and
        the process needs no closing at the end of the run (see :meth:`_close`)."""
        self.events_handled += 1
        self._running.discard(self.env._active_proc)  # (SimPy's active_process, without the property's call)

    def flows_at(self, t: float) -> MonthFlows:
        """The flows of the month of time t, for a flow decided now that happens at t (which may lie ahead; the
        last month takes what falls after the end). A flow that happens now is counted into ``flows_now``."""
        m = int(t)
        return self._months[m if m < self.n else self.n - 1]

    def tally(self, name: str, amount: float = 1.0) -> None:
        """Count a flow now whose name is computed (``f"startlan_nok_{group}"``); fixed names are counted as
        attributes of ``flows_now``."""
        setattr(self.flows_now, name, getattr(self.flows_now, name) + amount)

    def log(self, hh: Household | None, event: str, dwelling: Dwelling | None = None,
            startlan: float = 0.0, grant: float = 0.0, price: float = 0.0, at: float | None = None) -> None:
        """Record an event: now, or at a later time ``at`` decided now. Callers check ``record_events`` first, so
        that a run that does not record events pays nothing for them (a call per event: 2 % of a run)."""
        self.events.append((self.env._now if at is None else at, hh.id if hh else -1,
                            "lte" if (hh is None or hh.lte) else "other",
                            event, dwelling.id if dwelling else -1, startlan, grant, price))

    def wait(self, dt: float) -> Due | Signal:
        """An event a process yields to wait ``dt`` months. Like :meth:`_after`, a wait that ends in a later month
        waits in that month's list (see :func:`run_events`), not in SimPy's queue, and one that ends now in the
        environment's line (see :class:`sim.events.Environment`)."""
        now = self.env._now
        t = now + dt if dt > 0.0 else now
        m = int(t)
        if m >= self.n:  # ends after the run: never fires, and is not counted
            return Signal(self.env)  # (never decided)
        self.events_handled += 1
        event = Due(t)
        if m > self.this_month:
            self._later[m].append(event)
        elif t > now:
            env = self.env
            heappush(env._queue, (now + (t - now), NORMAL, next(env._eid), event))
        else:
            self.env._normal.append(event)
        return event

    # ------------------------------------------------------------------ set-up
    def _draw_households(self, n: int, lte: bool, arrived: np.ndarray, stream: str) -> Iterator[Household]:
        """Draw n households from the stream's uniforms (row i depends only on i, not on n); the objects are
        built lazily, in order, as the returned iterator is consumed."""
        s = self.s
        u = self.rng[stream].random((n, N_UNIFORMS))
        if lte:
            h = s.households
            share_children, median, sigma, savings_mean = h.share_with_children, h.income_median_nok_year, \
                h.income_sigma_log, h.savings_mean_nok
            share_two, share_imm, share_intro, debt_share = h.share_two_adults, h.share_immigrant, \
                h.share_introduction_programme, h.debt_problems_share
        else:
            o = s.other_borrowers
            share_children, median, sigma, savings_mean = o.share_with_children, o.income_median_nok_year, \
                o.income_sigma_log, o.savings_mean_nok
            share_two, share_imm, share_intro, debt_share = s.households.share_two_adults, 0.0, 0.0, 0.0
        two = u[:, U_TWO_ADULTS] < share_two
        has_children = u[:, U_CHILDREN] < share_children
        extra = poisson_ppf(u[:, U_N_CHILDREN], max(s.households.mean_children - 1.0, 1e-9))
        children = np.where(has_children, 1 + extra, 0).astype(int)
        immigrant = u[:, U_IMMIGRANT] < share_imm
        intro = immigrant & (u[:, U_INTRO] < share_intro)
        adults = np.where(two, 2, 1)
        second = s.households.second_adult_income_share
        income0 = median * (1.0 + second * (adults - 1)) * np.exp(sigma * special.ndtri(u[:, U_INCOME]))
        savings = -savings_mean * np.log1p(-u[:, U_SAVINGS])
        debt = u[:, U_DEBT] < debt_share
        works = u[:, U_WORK] < s.households.work_after_introduction_probability
        intro_end = np.where(intro, arrived + s.households.introduction_months, -np.inf)
        start_id = self._next_household_id
        self._next_household_id += n
        self.drawn.append((np.arange(start_id, start_id + n), np.full(n, lte), arrived.astype(float), income0))
        columns = (adults, children, immigrant, intro_end, works, income0, savings, debt, u, arrived)
        return self._build_households(start_id, n, lte, columns)

    @staticmethod
    def _build_households(start_id: int, n: int, lte: bool, columns: tuple) -> Iterator[Household]:
        """The household objects, built a chunk at a time as they are needed: a household that has not yet
        arrived costs only its row in the arrays, and one that has left is freed."""
        *attributes, u, arrived = columns
        width = u.shape[1]
        # a household's row of uniforms is a view into the drawn matrix: no copy, indexed as fast as a list, and
        # a quarter of the memory of a list of floats (the matrix lives as long as one of its households)
        flat = memoryview(np.ascontiguousarray(u).reshape(-1))
        for a in range(0, n, HOUSEHOLD_CHUNK):
            b = min(a + HOUSEHOLD_CHUNK, n)
            first = [c[a:b].tolist() for c in attributes]
            rows = [flat[i:i + width] for i in range(a * width, b * width, width)]
            yield from map(Household, range(start_id + a, start_id + b), [lte] * (b - a), *first, rows,
                           arrived[a:b].tolist())

    def _advice_months(self, u: float) -> float:
        """An advice duration (months) from a uniform: gamma with the scenario's mean and coefficient of variation.
        Computed when an attempt starts, since most households never start one. (``cython_special`` has the same
        functions as ``scipy.special``, with the same results, for one number at a time: no array machinery, and a
        float back rather than a numpy scalar.)"""
        return cython_special.gammaincinv(self._advice_shape, u) * self._advice_scale

    def _arrival_times(self, per_year: np.ndarray, stream: str, t0: float = 0.0) -> np.ndarray:
        """A Poisson process with a rate that changes by month: counts per month, times within it."""
        rng = self.rng[stream]
        counts = rng.poisson(per_year / 12.0)
        offsets = rng.random(int(counts.sum()))
        months = np.repeat(np.arange(len(per_year)), counts)
        times = months + offsets
        times.sort()
        return times[times >= t0]

    def _setup(self) -> None:
        s, p = self.s, self.p
        st = s.stock
        rng = self.rng["stock"]
        n_units = st.initial_units
        du = rng.random((n_units, 4))
        for u_family, u_dedicated, u_sellable, _ in du.tolist():
            dedicated = u_dedicated < st.dedicated_share
            self._add_dwelling(u_family < st.family_share, (not dedicated) and u_sellable < st.sellable_share,
                               dedicated)
        occupied = (du[:, 3] < st.initial_occupancy).tolist()
        # initial tenants moved in before the start; exits are memoryless, so their clocks start now
        n_tenants = sum(occupied)
        moved = -rng.random(n_tenants) * s.households.initial_tenure_max_years * 12.0
        tenants = list(self._draw_households(n_tenants, True, moved, "tenants"))
        dwellings = list(self.stock.values())
        k = 0
        for i, d in enumerate(dwellings):
            if occupied[i]:
                self._move_in(tenants[k], d, announce=False)
                k += 1
            else:
                self._schedule_relet(d)
        waiting = self._draw_households(s.households.initial_waiting_list, True,
                                        np.zeros(s.households.initial_waiting_list), "tenants")
        for hh in waiting:
            self._join_waiting_list(hh)
        # newcomers, in order of arrival: each becomes a call at its time when its month begins (see _calendar)
        arrivals = self._arrival_times(p.arrivals_per_year, "arrivals")
        other = self._arrival_times(p.other_per_year, "other_borrowers")
        month_starts = np.arange(p.n + 1, dtype=float)
        self._newcomers = [
            (np.diff(np.searchsorted(arrivals, month_starts)).tolist(),
             self._draw_households(len(arrivals), True, arrivals, "tenants"), self._arrive),
            (np.diff(np.searchsorted(other, month_starts)).tolist(),
             self._draw_households(len(other), False, other, "other_borrowers"), self._other_applies),
        ]
        self._process(self._calendar())
        # dwellings bought ahead of sales, if sales can come (the municipality sells, and advisers lead to them)
        sales_can_come = s.programme.sell_to_tenants and s.programme.advisers > 0
        if s.programme.replacements_ahead > 0 and sales_can_come and p.programme_start < p.n:
            self._after(p.programme_start, self._buy_ahead, int(round(s.programme.replacements_ahead)))

    def _add_dwelling(self, family: bool, sellable: bool, dedicated: bool) -> Dwelling:
        st = self.s.stock
        d = Dwelling(self._next_dwelling_id, family, st.value_family_nok if family else st.value_small_nok,
                     st.rent_family_nok_month if family else st.rent_small_nok_month, sellable, dedicated)
        self._next_dwelling_id += 1
        self.stock[d.id] = d
        return d

    # ------------------------------------------------------------------ calendar: month ends, frame rounds
    def _calendar(self):
        """At each month boundary: record last month's levels, queue the calls and waits due in the new month
        (see :meth:`_after`), close the year, deliver frame rounds."""
        p, f = self.p, self.s.frame
        # one uniform per year and calendar month, whatever the rounds: a round's cut depends on its month alone,
        # so two frame designs compared share the luck of every month they both have a round in
        # (as lists of floats: a numpy number would pass into the frame's pots and slow every sum with them)
        cuts = self.rng["frame_rounds"].random((p.n // 12 + 2, 12)).tolist()
        for m in range(p.n):
            self.this_month = m
            self.flows_now = self._months[m]
            if m > 0:
                self._record_levels(m - 1)
            # the calls and waits due this month, and the month's newcomers, in order of time: the loop takes
            # them from the end of ``_due`` (see run_events)
            due = self._later[m]
            self._later[m] = None
            for per_month, households, action in self._newcomers:
                for hh in itertools.islice(households, per_month[m]):
                    self.events_handled += 1
                    due.append(Call(hh.arrived, action, hh))
            due.sort(key=_time_of)  # stable: equal times keep the order they were asked for
            due.reverse()
            self._due += due  # (empty until now: all of last month's were due before this boundary)
            del due  # the loop's list holds them now, so each is freed as it fires, while still in the caches
            ym = p.start.plus(m)
            year_no = ym.year - p.start.year
            if ym.month == 1 or m == 0:
                if m > 0:
                    self._close_year(m)
                else:
                    self.frame.year = ym.year
                self.tilskudd_left = p.tilskudd_budget[m]
            for rnd in f.rounds:
                if rnd.month == ym.month:
                    cut = cuts[year_no][rnd.month - 1] * rnd.cut_max_share
                    amount = p.frame_yearly[m] * rnd.share * (1.0 - cut)
                    self.flows_now.frame_granted_nok += amount
                    self.frame.add(amount)
            yield self._month_boundary()

    def _close_year(self, m: int) -> None:
        """The year that ends with month m - 1 closes: what is left of its frame expires, counted in that month."""
        self._months[m - 1].frame_expired_nok += self.frame.close_year(self.p.start.plus(m).year)

    def _month_boundary(self) -> Due:
        """A one-month wait that fires before any other event at the same instant, so month-end levels
        exclude what happens exactly at the boundary (which flows count in the new month). The boundary at the
        end of the run is never handled (the run stops first), so it is not counted."""
        if self.env._now + 1.0 < self.n:
            self.events_handled += 1
        event = Due(self.env._now + 1.0)
        self.env.schedule(event, URGENT, 1.0)
        return event

    def _record_levels(self, m: int) -> None:
        lv, p = self.level, self.p
        lv["tenants"][m] = self.tenants
        lv["municipal_units"][m] = len(self.stock)
        lv["vacant_units"][m] = len(self.stock) - self.tenants
        lv["in_advice"][m] = self.in_advice
        lv["advice_queue"][m] = self.advisers.queued if self.advisers else 0
        lv["waiting_for_frame"][m] = self.frame.queued
        lv["frame_remaining_nok"][m] = self.frame.remaining_nok
        lv["tilskudd_remaining_nok"][m] = self.tilskudd_left
        lv["rent_roll_nok_month"][m] = self.rent_roll0 * p.cost_index[m]
        self._months[m].rent_income_nok = lv["rent_roll_nok_month"][m]  # the month's rent, at the month-end roll

    # ------------------------------------------------------------------ waiting list and letting
    def _arrive(self, hh: Household) -> None:
        self.flows_at(hh.arrived).arrivals += 1.0
        if self.record_events:
            self.log(hh, "arrived")
        self._join_waiting_list(hh)

    def _join_waiting_list(self, hh: Household) -> None:
        hh.give_up_at = self.env._now - self._patience_months * math.log1p(-hh.u[U_PATIENCE])
        if self.vacant:
            self._move_in(hh, self.vacant.popleft())
        else:
            self.waiting.append(hh)

    def _next_from_waiting_list(self) -> Household | None:
        now = self.env._now
        while self.waiting:
            hh = self.waiting.popleft()
            if hh.give_up_at > now:
                return hh
            self._gave_up_waiting(hh)
        return None

    def _gave_up_waiting(self, hh: Household) -> None:
        self._joined.append(max(hh.arrived, 0.0))
        self._left.append(hh.give_up_at)
        self.flows_at(hh.give_up_at).gave_up_waiting += 1.0
        self.exited["gave_up_waiting"] += 1
        if self.record_events:
            self.events.append((hh.give_up_at, hh.id, "lte", "gave_up_waiting", -1, 0.0, 0.0, 0.0))
        hh.exit_at = hh.give_up_at

    def _at(self, t: float, action, arg) -> None:
        """Call ``action(arg)`` at time ``t`` (now at the earliest): an event with a callback, cheaper than a
        process for a single step (re-letting, leaving, referral, giving up).

        A call due in a later month waits in that month's list, sorted when the month begins (see
        :meth:`_calendar` and :func:`run_events`). Most are tenants' exits years ahead; kept out of SimPy's
        queue, they do not make every queue operation slower, which is what made the cost grow faster than the
        stock; one due now waits in the environment's line (see :class:`sim.events.Environment`). (:meth:`wait`
        repeats these lines for a process's wait rather than share a helper: a call more per event, on the hottest
        path, measured 1.8 % more instructions per run.)"""
        m = int(t)
        if m >= self.n:  # after the end of the run: never happens
            return
        self.events_handled += 1
        if m > self.this_month:
            self._later[m].append(Call(t, action, arg))
        else:
            env = self.env
            now = env._now
            if t > now:
                heappush(env._queue, (now + (t - now), NORMAL, next(env._eid), Call(t, action, arg)))
            else:
                env._normal.append(Call(now, action, arg))

    def _after(self, delay: float, action, arg) -> None:
        """Call ``action(arg)`` after ``delay`` months (see :meth:`_at`)."""
        self._at(self.env._now + delay if delay > 0.0 else self.env._now, action, arg)

    def _schedule_relet(self, d: Dwelling) -> None:
        self._at(self.env._now + self.s.stock.relet_delay_months, self._on_relet, d)  # (the delay is >= 0)

    def _relet(self, d: Dwelling) -> None:
        hh = self._next_from_waiting_list()
        if hh is None:
            self.vacant.append(d)
        else:
            self._move_in(hh, d)

    def _move_in(self, hh: Household, d: Dwelling, announce: bool = True) -> None:
        """A household moves in; its exit and screening times follow from its own draws."""
        p, u = self.p, hh.u
        now = self.env._now
        hh.dwelling = d
        d.tenant_id = hh.id
        self.tenants += 1
        self.rent_roll0 += d.rent0_nok
        rate = self._exit_rate_month
        hh.exit_at = exit_at = now - math.log1p(-u[U_EXIT]) / rate if rate > 0.0 else math.inf
        if announce:  # (the initial tenants moved in before the start)
            self._joined.append(hh.arrived if hh.arrived > 0.0 else 0.0)
            self._left.append(now)
            if hh.intro_end > -math.inf:  # a refugee starts the introduction programme when settled, i.e. now
                hh.intro_end = now + self._introduction_months
            self.flows_now.moved_in += 1.0
            if self.record_events:
                self.log(hh, "moved_in", d)
        screen_at = p.screening_time(now if now > p.programme_start else p.programme_start, -math.log1p(-u[U_SCREEN]))
        if screen_at < exit_at and screen_at < self.t_end:
            if u[U_POTENTIAL] < p.potential_share[int(screen_at)]:
                self._at(screen_at, self._on_refer, hh)
                return
            # screened and not referred: nothing changes, so it is counted now for its month, without an event
            self.flows_at(screen_at).screened += 1.0
            if self.record_events:
                self.log(hh, "screened", at=screen_at)
        # most tenants: nothing happens until they leave, so no process is needed
        self._leave_when_due(hh)

    def _leave_when_due(self, hh: Household) -> None:
        """Leave by another route at the household's exit time, if that falls within the run. The call holds the
        dwelling, not the household: nothing else is asked of the household, and most tenants, never referred, are
        then freed when they move in rather than kept for years."""
        if hh.exit_at < self.t_end:
            self._at(hh.exit_at, self._on_exit, hh.dwelling)

    def _vacate(self, d: Dwelling) -> None:
        """Its tenant leaves the dwelling (by buying a home, or by another route): one tenant and its rent fewer."""
        self.tenants -= 1
        self.rent_roll0 -= d.rent0_nok

    def _exit_other_route(self, d: Dwelling) -> None:
        """Its tenant leaves the dwelling by another route (see :meth:`_leave_when_due`)."""
        self._vacate(d)
        self._schedule_relet(d)
        self.flows_now.exits_other_routes += 1.0
        self.exited["other_route"] += 1
        if self.record_events:
            self.events.append((self.env._now, d.tenant_id, "lte", "exited", d.id, 0.0, 0.0, 0.0))

    # ------------------------------------------------------------------ the programme
    def _refer(self, hh: Household) -> None:
        """Screening found ownership potential (decided at move-in, see :meth:`_move_in`): the programme starts."""
        self.flows_now.screened += 1.0
        self.flows_now.referred += 1.0
        if self.record_events:
            self.log(hh, "screened")
            self.log(hh, "referred")
        self._process(self._programme(hh))

    def _programme(self, hh: Household):
        """Up to max_attempts of advice, application and buying, each attempt from its own uniforms; without a
        purchase, an ordinary tenant again.

        The attempts are written out here rather than delegated to a generator of their own: a process resumes
        through every generator it delegates to, and each is a frame to fetch from memory after a wait of months
        (one level fewer: 2.2 % fewer instructions per Drammen replication, 3-4 % less time at 1.5k and 15k)."""
        prog = self.s.programme
        u = hh.u
        outcome = DROPPED  # (also without advisers: no attempt can start)
        for attempt in range(min(prog.max_attempts, MAX_ATTEMPTS) if self.advisers is not None else 0):
            base = ATTEMPT_BASE + attempt * PER_ATTEMPT
            if attempt:  # back to advice after a refusal, a failed search or giving up on the frame
                self.flows_now.referred_again += 1.0
                if self.record_events:
                    self.log(hh, "referred_again")
            # advice: wait for a place, then for the advice to end (or the household to drop out); a household
            # whose time to move away comes while it waits for a place leaves the queue, and then the dwelling
            duration = self._advice_months(u[base + U_ADVICE])
            place = self.advisers.request()
            if place is not None:
                if hh.exit_at < self.t_end:
                    self._at(hh.exit_at, self._on_leave_queue, place)
                got_place = yield place
                self.events_handled += 1
                if not got_place:
                    self.flows_now.left_advice_queue += 1.0
                    if self.record_events:
                        self.log(hh, "left_advice_queue", hh.dwelling)
                    outcome = DROPPED
                    break
            self.in_advice += 1
            self.flows_now.advice_started += 1.0
            if self.record_events:
                self.log(hh, "advice_started")
            u_drop = u[base + U_DROPOUT]
            dropped = u_drop < prog.dropout_probability
            yield self.wait(duration * u_drop / prog.dropout_probability if dropped else duration)
            self.in_advice -= 1
            self.advisers.release()
            if dropped:
                self.flows_now.advice_dropped += 1.0
                if self.record_events:
                    self.log(hh, "advice_dropped")
                outcome = DROPPED
                break
            self.flows_now.advice_completed += 1.0
            if self.record_events:
                self.log(hh, "advice_completed")
            hh.savings_nok += prog.saving_during_advice_nok_month * duration
            if hh.debt_problems and u[base + U_DEBT_CLEAR] < prog.debt_clear_probability:
                hh.debt_problems = False
            # application, then frame and purchase; refused or failed, the household may try again later
            own = (hh.dwelling.sellable and prog.sell_to_tenants and u[U_OWN] < prog.buy_own_share)
            applied = self._apply(hh, own, u[base + U_PRICE])
            if applied is None:
                outcome = REFUSED
            else:
                outcome = yield from self._buy(hh, attempt, own, *applied)
            if outcome == BOUGHT or self.env._now + prog.reapply_after_months >= hh.exit_at:
                break
            yield self.wait(prog.reapply_after_months)
        if outcome != BOUGHT:  # no purchase: leaves by another route when its time comes (maybe after the end)
            self._leave_when_due(hh)
        self._ended()

    # ------------------------------------------------------------------ lending, frame and purchase
    def income_nok_year(self, hh: Household) -> float:
        """What the household earns now: the introduction benefit while in the programme (and after it, if it
        does not find work), else its own income, both indexed."""
        m = self.this_month
        if self.env._now < hh.intro_end or (hh.intro_end > -math.inf and not hh.works_after_intro):
            return self.s.households.introduction_income_nok_year * hh.adults * self.p.income_index[m]
        return hh.income0_nok * self.p.income_index[m]

    def _price(self, hh: Household, own: bool, u_price: float) -> float:
        """The price now: the tenant's own dwelling at its indexed value, or a private home, log-normal around
        the market price for its size (from the household's uniform for this attempt)."""
        m = self.this_month
        if own:
            return hh.dwelling.value0_nok * self.p.price_index[m]
        mk = self.s.market
        base = mk.private_price_family_nok if hh.children > 0 else mk.private_price_small_nok
        return base * self.p.price_index[m] * math.exp(mk.price_sigma_log * cython_special.ndtri(u_price))

    def _finance(self, hh: Household, price: float) -> lending.Financing:
        s, p = self.s, self.p
        sl, tk = s.startlan, s.tilskudd
        m = self.this_month
        income = self.income_nok_year(hh)
        living = lending.living_costs_year(hh.adults, hh.children, sl.living_adult_nok_year,
                                           sl.living_child_nok_year, sl.living_household_nok_year) * p.cost_index[m]
        other_debt = sl.other_debt_nok_year * p.cost_index[m] if hh.other_debt else 0.0
        capacity = lending.payment_capacity_month(income, living, other_debt)
        rate = p.stressed_rate_pct[m]
        # lasting low income: the grant's means test, which also opens the long term
        eligible = income <= p.grant_income_limit[m]
        costs = sl.purchase_costs_share * price
        max_loan, term = lending.largest_loan(capacity, rate, sl.term_years, sl.long_term_years,
                                              price + costs - hh.savings_nok, eligible)
        return lending.size_financing(price, costs, hh.savings_nok, max_loan, sl.max_share_of_price, eligible,
                                      tk.max_share_of_price, tk.max_nok, term)

    def _apply(self, hh: Household, own: bool, u_price: float) -> tuple[float, lending.Financing] | None:
        """The application: debt, ability to pay and the grant budget. Returns (price, financing) with the grant
        reserved, or None if refused (counted and logged here). Takes no time."""
        self.flows_now.applications += 1.0
        if hh.debt_problems:
            self.flows_now.refused_debt += 1.0
            if self.record_events:
                self.log(hh, "refused_debt")
            return None
        price = self._price(hh, own, u_price)
        fin = self._finance(hh, price)
        if not fin.approved:
            self.flows_now.refused_ability_to_pay += 1.0
            if self.record_events:
                self.log(hh, "refused_ability_to_pay", price=price)
            return None
        if fin.grant_nok > self.tilskudd_left:
            self.flows_now.refused_grant_budget += 1.0
            if self.record_events:
                self.log(hh, "refused_grant_budget", grant=fin.grant_nok, price=price)
            return None
        self.tilskudd_left -= fin.grant_nok
        return price, fin

    def _buy(self, hh: Household, attempt: int, own: bool, price: float, fin: lending.Financing):
        """After an approved application: wait for the frame, close or search, buy. Returns BOUGHT or REFUSED."""
        s, env = self.s, self.env
        prog, u = s.programme, hh.u
        base = ATTEMPT_BASE + attempt * PER_ATTEMPT
        now = env._now
        grant_year = self.frame.year
        app = None
        if fin.startlan_nok > 0.0:
            app = self.frame.request(fin.startlan_nok, hh.lte, hh.children > 0)
            if not app.granted:
                if self.record_events:
                    self.log(hh, "frame_queued", startlan=fin.startlan_nok)
                patience = -s.frame.patience_months * math.log1p(-u[base + U_FRAME_PATIENCE])
                self._after(patience, self._on_give_up_frame, app)
                granted = yield app.event
                self.events_handled += 1
                if not granted:  # gave up before the loan was granted
                    self.flows_now.frame_gave_up += 1.0
                    if self.record_events:
                        self.log(hh, "frame_gave_up", startlan=fin.startlan_nok)
                    if self.frame.year == grant_year:
                        self.tilskudd_left += fin.grant_nok
                    return REFUSED
            self.flows_now.frame_approved += 1.0
            self.flows_now.frame_wait_months_sum += env._now - now
            if self.record_events:
                self.log(hh, "frame_approved", startlan=fin.startlan_nok)
        if own:
            yield self.wait(prog.closing_months_own)
        else:
            u_s = u[base + U_SEARCH]
            found = u_s < prog.search_success_probability
            x = u_s / prog.search_success_probability if found else \
                (u_s - prog.search_success_probability) / (1.0 - prog.search_success_probability)
            yield self.wait(-prog.search_months_mean * math.log1p(-min(x, 1 - 1e-12)))
            if not found:
                if app is not None and not self.frame.refund(app):  # its year closed: the commitment lapsed
                    self.flows_now.frame_lapsed_nok += app.amount_nok
                if self.frame.year == grant_year:
                    self.tilskudd_left += fin.grant_nok
                self.flows_now.search_failed += 1.0
                if self.record_events:
                    self.log(hh, "search_failed")
                return REFUSED
        self._complete_purchase(hh, own, price, fin, now)
        return BOUGHT

    def _give_up_frame(self, app) -> None:
        """The applicant's patience ran out: if the loan is still waiting, leave the line and wake the applicant."""
        if self.frame.withdraw(app):
            app.event.succeed(False)

    def _complete_purchase(self, hh: Household, own: bool, price: float, fin: lending.Financing,
                           approved_at: float) -> None:
        now = self.env._now
        if hh.lte:
            route = "municipal" if own else "private"
            self.tally(f"new_owners_{route}")
            if hh.immigrant:
                self.tally(f"new_owners_{route}_immigrant")
            if hh.intro_end > -math.inf:
                self.tally(f"new_owners_{route}_introduction_ever")
                if now < hh.intro_end:
                    self.tally(f"new_owners_{route}_introduction")
            d = hh.dwelling
            hh.dwelling = None
            self._vacate(d)
            self.exited["owner"] += 1
            if own:
                del self.stock[d.id]
                self.sold += 1
                self.flows_now.units_sold += 1.0
                self.flows_now.units_sold_value_nok += price
                if self.record_events:
                    self.log(hh, "bought_municipal", d, fin.startlan_nok, fin.grant_nok, price)
                self._schedule_replacements(hh, d)
            else:
                if self.record_events:
                    self.log(hh, "bought_private", d, fin.startlan_nok, fin.grant_nok, price)
                self._schedule_relet(d)
        else:
            if self.record_events:
                self.log(hh, "bought_private", None, fin.startlan_nok, fin.grant_nok, price)
        self._disburse(hh, fin, price, approved_at)

    def _schedule_replacements(self, hh: Household, sold: Dwelling) -> None:
        ratio = self.p.replacement_ratio[self.this_month]
        n = int(ratio) + (1 if hh.u[U_REPLACE] < ratio - int(ratio) else 0)
        if n:
            self._after(self.s.programme.replacement_delay_months, self._replace, (sold, n))

    def _replace(self, order: tuple[Dwelling, int]) -> None:
        """Buy ``n`` dwellings like the one ``sold``."""
        sold, n = order
        for _ in range(n):
            self._buy_dwelling(sold.family, sold.sellable, sold.dedicated)

    def _buy_ahead(self, n: int) -> None:
        """At the programme start the municipality buys ``replacements_ahead`` (n) dwellings before any sale, with
        the stock's mix of family and sellable dwellings (drawn from the stock's own stream)."""
        st = self.s.stock
        for u_family, u_sellable in self.rng["stock"].random((n, 2)).tolist():
            self._buy_dwelling(u_family < st.family_share, u_sellable < st.sellable_share, False)

    def _buy_dwelling(self, family: bool, sellable: bool, dedicated: bool) -> None:
        d = self._add_dwelling(family, sellable, dedicated)
        cost = d.value0_nok * self.p.price_index[self.this_month]
        self.bought += 1
        self.flows_now.units_bought += 1.0
        self.flows_now.units_bought_cost_nok += cost
        if self.record_events:
            self.log(None, "unit_bought", d, price=cost)
        self._schedule_relet(d)

    def _disburse(self, hh: Household, fin: lending.Financing, price: float, approved_at: float) -> None:
        """Pay out the loan and grant; decide now (from the household's own draw) if and when it defaults.
        ``approved_at`` is when the application fixed the price and the financing."""
        p, sl = self.p, self.s.startlan
        now = self.env._now
        m = self.this_month
        group = "lte" if hh.lte else "other"
        if fin.grant_nok > 0.0:
            self.flows_now.tilskudd_grants += 1.0
            self.flows_now.tilskudd_nok += fin.grant_nok
        self.flows_now.bank_loan_nok += fin.bank_loan_nok
        if fin.startlan_nok <= 0.0:
            return
        flows = self.flows_now
        flows.startlan_loans += 1.0
        flows.startlan_nok += fin.startlan_nok
        if hh.lte:
            flows.startlan_loans_lte += 1.0
            flows.startlan_nok_lte += fin.startlan_nok
        else:
            flows.startlan_loans_other += 1.0
            flows.startlan_nok_other += fin.startlan_nok
        rate = p.rate_pct[m] + sl.municipal_margin_points
        payment = lending.annuity_payment_month(fin.borrowed_nok, rate, fin.term_years)
        burden = payment / max(self.income_nok_year(hh) / 12.0, 1.0)
        hazard = lending.default_hazard_year(sl.default_base_per_year, burden, sl.default_reference_burden,
                                             sl.default_burden_elasticity)
        default_at = now - 12.0 * math.log1p(-hh.u[U_DEFAULT]) / hazard if hazard > 0.0 else math.inf
        term_end = now + fin.term_years * 12.0
        loss = 0.0
        settle_at = math.inf
        if not default_at < min(term_end, p.n):  # repaid first, or after the run: no default
            default_at = math.inf
        else:
            settle_at = default_at + sl.default_resolution_months
            self._default_diff[p.month(default_at)] += 1
            self.flows_at(default_at).defaults += 1.0
            loss = math.nan  # not settled within the run: the loss is not known yet
            if settle_at < p.n:
                # the balance when it stops paying, as the budget follows it: a payment each month after the payout
                # month and before the default's, at that month's rate (the rates ahead are the scenario's path)
                balance = lending.floating_annuity_balance(
                    fin.startlan_nok, p.loan_rate_month[m + 1:int(default_at)], round(fin.term_years * 12))
                # the home is sold at its value then: the price, moved with the price index from the month it
                # was fixed (at approval); an ordinary bank loan beside the startlån, on the same schedule, has
                # the first mortgage
                settle_m = p.month(settle_at)
                loss = lending.default_loss_nok(balance, fin.bank_loan_nok * balance / fin.startlan_nok,
                                                price * p.price_index[settle_m] / p.price_index[int(approved_at)],
                                                sl.forced_sale_discount_share)
                self._default_diff[settle_m] -= 1
                settled = self.flows_at(settle_at)
                settled.loss_nok += loss
                settled.loss_municipality_nok += loss * sl.municipality_loss_share
                settled.loss_state_nok += loss * (1 - sl.municipality_loss_share)
        self._loans_diff[m] += 1
        end = min(term_end, settle_at)
        if end < p.n:
            self._loans_diff[p.month(end)] -= 1
        self.loans.append((hh.id, group, approved_at, now, fin.startlan_nok, fin.bank_loan_nok, fin.grant_nok, price,
                           rate, fin.term_years, default_at if default_at < p.n else math.nan,
                           settle_at if settle_at < p.n else math.nan, loss))

    # ------------------------------------------------------------------ other startlån borrowers
    def _other_applies(self, hh: Household) -> None:
        self.flows_at(hh.arrived).other_applicants += 1.0
        if self.record_events:
            self.log(hh, "applied")
        applied = self._apply(hh, False, hh.u[ATTEMPT_BASE + U_PRICE])
        if applied is None:  # most are refused at once: no process needed
            self.flows_at(hh.arrived).other_refused += 1.0
        else:
            self._process(self._other(hh, *applied))

    def _other(self, hh: Household, price: float, fin: lending.Financing):
        outcome = yield from self._buy(hh, 0, False, price, fin)
        if outcome != BOUGHT:
            self.flows_now.other_refused += 1.0
        self._ended()

    # ------------------------------------------------------------------ run
    def run(self) -> "Model":
        """Run to the end of the period, with the cyclic garbage collector paused (see :func:`collector_paused`).
        At the end the processes still waiting are let go (see :meth:`_close`), so the finished model holds no
        reference cycles and is freed by reference counting as soon as it is dropped."""
        with collector_paused():
            try:
                self._setup()
                self._handle_events()
                self._finish()
            finally:
                self._close()
        return self

    def _handle_events(self, until: float | None = None) -> None:
        """Handle events to the end of the period (or ``until``), from SimPy's heap and this month's list (see
        :func:`run_events`)."""
        run_events(self.env, self.t_end if until is None else float(until), self._due)

    def _close(self) -> None:
        """Let go of the processes still waiting at the end (in a queue, or for a time after the end).

        A waiting process and the event it waits on hold each other (the event's callbacks resume the process,
        the process keeps its target), and its suspended generator holds the model (``self``): cycles that only
        the cyclic collector could free, in one long pass over the whole finished model. With the event's
        callbacks cleared, the process is freed by reference counting (which closes its generator), and the model
        after it."""
        for process in self._running:
            if process.is_alive:
                process.target.callbacks.clear()
        self._running.clear()
        self._newcomers = []  # holds bound methods of the model
        del self._on_relet, self._on_exit, self._on_refer, self._on_give_up_frame

    def _finish(self) -> None:
        n = self.p.n
        self._record_levels(n - 1)
        if self.p.start.plus(n).month == 1:  # the run ends with a year, which closes like every other
            self._close_year(n)
        self.level["active_loans"][:] = np.cumsum(self._loans_diff)[:n]
        self.level["loans_in_default"][:] = np.cumsum(self._default_diff)[:n]
        still = deque()
        for hh in self.waiting:
            if hh.give_up_at < n:
                self._gave_up_waiting(hh)
            else:
                still.append(hh)
                self._joined.append(max(hh.arrived, 0.0))
                self._left.append(hh.give_up_at)
        self.waiting = still
        by_flow = np.array(list(map(operator.attrgetter(*FLOWS), self._months)), dtype=float).T.copy()
        self.flow = dict(zip(FLOWS, by_flow))  # (the give-ups above counted last)
        # the waiting list is reconstructed from each household's time on it, so late give-ups count in their month
        ends = np.arange(1, n + 1, dtype=float)
        joined, left = np.sort(np.array(self._joined, dtype=float)), np.sort(np.array(self._left, dtype=float))
        # on the list at the end of month m: entered before t = m + 1 and not left before it
        self.level["waiting_list"][:] = (np.searchsorted(joined, ends, side="left")
                                         - np.searchsorted(left, ends, side="left"))

    @property
    def tenant_households(self) -> int:
        """Tenant households drawn: every one enters the model (all arrivals fall within the run)."""
        return sum(int(lte.sum()) for _, lte, _, _ in self.drawn)

    def arrivals_table(self) -> dict[str, np.ndarray]:
        """Every household drawn (tenants and other borrowers): id, group, arrival time, starting income."""
        ids, lte, arrived, income = (np.concatenate(column) for column in zip(*self.drawn))
        return {"household_id": ids, "lte": lte, "arrived_t": arrived, "income0_nok": income}

