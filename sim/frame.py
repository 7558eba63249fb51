"""The startlån frame: a yearly sum in rounds, a priority-ordered waiting line, and give-up.

Two pots hold the money: one earmarked for leie-til-eie tenants and one general. A leie-til-eie loan is
taken from the earmark if it fits there, else from the general pot; other borrowers use only the general
pot. A loan is never split between pots and a pot never goes below zero.

When a loan does not fit, the applicant joins a waiting line ordered by the scenario's priority rule.
Whenever money arrives, the line is served first-fit in priority order: the first applicant whose loan
fits is served, then the next, so a large loan at the head does not block smaller ones behind it.

The pots are plain numbers rather than ``simpy.Container``s: nobody waits on a pot itself (the line does
the waiting), and a container would schedule an event for every put and get. The line keeps the waiting
amounts sorted as well, so serving stops as soon as no waiting loan can fit; the cost of serving then
grows with the loans granted, not with the length of the line.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass

import simpy

PRIORITY_RULES = ("first_come", "families_first", "lte_first", "smallest_loan_first")
EARMARKED, GENERAL = "earmarked", "general"


@dataclass(slots=True)
class Application:
    """A loan waiting for (or granted by) the frame. A loan that must wait gets an ``event``, which fires with
    True when the loan is granted; one granted at once needs none (and SimPy handles no event). (The event's
    value is not the application itself: application and event would then hold each other, a reference cycle
    that only the garbage collector frees, and a run makes thousands of them.)"""

    key: tuple  # the place in the line: unique, ordered by the priority rule
    amount_nok: float
    lte: bool
    requested_at: float
    event: simpy.Event | None = None
    pot: str = ""
    year: int = 0

    @property
    def granted(self) -> bool:
        return self.pot != ""


class Frame:
    def __init__(self, env: simpy.Environment, earmark_share: float, priority: str, carry_over: bool):
        if priority not in PRIORITY_RULES:
            raise ValueError(f"unknown priority rule {priority!r}")
        self.env = env
        self.earmark_share = earmark_share
        self.priority = priority
        self.carry_over = carry_over
        self.level = {EARMARKED: 0.0, GENERAL: 0.0}
        self.waiting: list[Application] = []  # in priority order
        self._keys: list[tuple] = []  # their keys, so the line is searched with C-level tuple comparisons
        self._amounts: list[float] = []  # every waiting amount, sorted
        self._amounts_lte: list[float] = []  # the leie-til-eie ones (they may also use the earmark), sorted
        self.year = 0
        self._seq = itertools.count()

    @property
    def remaining_nok(self) -> float:
        return self.level[EARMARKED] + self.level[GENERAL]

    def _key(self, amount: float, lte: bool, children: bool) -> tuple:
        now, seq = self.env._now, next(self._seq)
        if self.priority == "families_first":
            return (0 if children else 1, now, seq)
        if self.priority == "lte_first":
            return (0 if lte else 1, now, seq)
        if self.priority == "smallest_loan_first":
            return (amount, now, seq)
        return (now, seq)

    def _pot_for(self, app: Application) -> str | None:
        if app.lte and self.level[EARMARKED] >= app.amount_nok:
            return EARMARKED
        if self.level[GENERAL] >= app.amount_nok:
            return GENERAL
        return None

    def _grant(self, app: Application, pot: str) -> None:
        self.level[pot] -= app.amount_nok
        app.pot = pot
        app.year = self.year
        if app.event is not None:
            app.event.succeed(True)

    def request(self, amount_nok: float, lte: bool, children: bool) -> Application:
        """Ask the frame for a loan: granted at once if it fits, else ``app.event`` fires (with True) when it is
        granted."""
        if not amount_nok > 0:
            raise ValueError(f"a loan must be positive, got {amount_nok}")
        app = Application(self._key(amount_nok, lte, children), amount_nok, lte, self.env._now)
        pot = self._pot_for(app)
        if pot is not None:
            self._grant(app, pot)
        else:
            app.event = self.env.event()
            i = bisect.bisect_right(self._keys, app.key)
            self._keys.insert(i, app.key)
            self.waiting.insert(i, app)
            bisect.insort(self._amounts, amount_nok)
            if lte:
                bisect.insort(self._amounts_lte, amount_nok)
        return app

    def withdraw(self, app: Application) -> bool:
        """An applicant gives up waiting. Returns False if the loan was granted already (nothing to withdraw)."""
        i = bisect.bisect_left(self._keys, app.key)
        if i < len(self.waiting) and self.waiting[i] is app:
            self._remove(i)
            return True
        return False

    def _remove(self, i: int) -> None:
        app = self.waiting.pop(i)
        del self._keys[i]
        del self._amounts[bisect.bisect_left(self._amounts, app.amount_nok)]
        if app.lte:
            del self._amounts_lte[bisect.bisect_left(self._amounts_lte, app.amount_nok)]

    def add(self, amount_nok: float) -> None:
        """A round arrives: split it between the earmark and the general pot, then serve the line."""
        earmark = amount_nok * self.earmark_share
        self.level[EARMARKED] += earmark
        self.level[GENERAL] += amount_nok - earmark
        self._serve()

    def refund(self, app: Application) -> bool:
        """A granted loan was not used (no home found): the commitment returns to its pot if its year is still open,
        or, with carry-over, whatever year it is (a closed year's frame has carried over, so its money is still
        the municipality's to lend). Returns False if it lapsed with its year instead."""
        if app.year == self.year or self.carry_over:
            self.level[app.pot] += app.amount_nok
            self._serve()
            return True
        return False

    def close_year(self, new_year: int) -> float:
        """Year end: without carry-over, what is left expires. Returns the NOK that expired."""
        self.year = new_year
        if self.carry_over:
            return 0.0
        expired = self.remaining_nok
        self.level[EARMARKED] = self.level[GENERAL] = 0.0
        return expired

    def _anything_fits(self) -> bool:
        return bool((self._amounts and self._amounts[0] <= self.level[GENERAL])
                    or (self._amounts_lte and self._amounts_lte[0] <= self.level[EARMARKED]))

    def _serve(self) -> None:
        """First-fit in priority order, stopping as soon as no waiting loan fits what is left."""
        i = 0
        while i < len(self.waiting) and self._anything_fits():
            app = self.waiting[i]
            pot = self._pot_for(app)
            if pot is None:
                i += 1
                continue
            self._remove(i)
            self._grant(app, pot)
