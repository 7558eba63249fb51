"""The startlån frame: a yearly sum in rounds, a priority-ordered waiting line, and give-up.

Two ``simpy.Container`` pots hold the money: one earmarked for leie-til-eie tenants and one general.
A leie-til-eie loan is taken from the earmark if it fits there, else from the general pot; other
borrowers use only the general pot. A loan is never split between pots and a pot never goes below zero.

When a loan does not fit, the applicant joins a waiting line ordered by the scenario's priority rule.
Whenever money arrives, the line is served first-fit in priority order: the first applicant whose loan
fits is served, then the next, so a large loan at the head does not block smaller ones behind it.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field

import simpy

PRIORITY_RULES = ("first_come", "families_first", "lte_first", "smallest_loan_first")


@dataclass(order=True, slots=True)
class Application:
    """A loan waiting for (or granted by) the frame."""

    key: tuple
    amount_nok: float = field(compare=False)
    lte: bool = field(compare=False)
    requested_at: float = field(compare=False)
    event: simpy.Event = field(compare=False, default=None)
    pot: str = field(compare=False, default="")
    year: int = field(compare=False, default=0)


class Frame:
    def __init__(self, env: simpy.Environment, earmark_share: float, priority: str, carry_over: bool):
        if priority not in PRIORITY_RULES:
            raise ValueError(f"unknown priority rule {priority!r}")
        self.env = env
        self.earmark_share = earmark_share
        self.priority = priority
        self.carry_over = carry_over
        self.earmarked = simpy.Container(env)
        self.general = simpy.Container(env)
        self.waiting: list[Application] = []
        self.year = 0
        self._seq = itertools.count()

    @property
    def remaining_nok(self) -> float:
        return self.earmarked.level + self.general.level

    def _key(self, amount: float, lte: bool, children: bool) -> tuple:
        now, seq = self.env.now, next(self._seq)
        if self.priority == "families_first":
            return (0 if children else 1, now, seq)
        if self.priority == "lte_first":
            return (0 if lte else 1, now, seq)
        if self.priority == "smallest_loan_first":
            return (amount, now, seq)
        return (now, seq)

    def _pot_for(self, app: Application) -> simpy.Container | None:
        if app.lte and self.earmarked.level >= app.amount_nok:
            return self.earmarked
        if self.general.level >= app.amount_nok:
            return self.general
        return None

    def _grant(self, app: Application, pot: simpy.Container) -> None:
        pot.get(app.amount_nok)  # fits, so the get succeeds at once
        app.pot = "earmarked" if pot is self.earmarked else "general"
        app.year = self.year
        app.event.succeed(app)

    def request(self, amount_nok: float, lte: bool, children: bool) -> Application:
        """Ask the frame for a loan. ``app.event`` fires when the loan is granted (maybe at once)."""
        app = Application(self._key(amount_nok, lte, children), amount_nok, lte, self.env.now, self.env.event())
        pot = self._pot_for(app)
        if pot is not None:
            self._grant(app, pot)
        else:
            bisect.insort(self.waiting, app)
        return app

    def withdraw(self, app: Application) -> None:
        """An applicant gives up waiting."""
        i = bisect.bisect_left(self.waiting, app)
        if i < len(self.waiting) and self.waiting[i] is app:
            del self.waiting[i]
        else:  # keys are unique, so this only happens for an application already granted
            self.waiting.remove(app)

    def add(self, amount_nok: float) -> None:
        """A round arrives: split it between the earmark and the general pot, then serve the line."""
        earmark = amount_nok * self.earmark_share
        if earmark > 0:
            self.earmarked.put(earmark)
        if amount_nok - earmark > 0:
            self.general.put(amount_nok - earmark)
        self._serve()

    def refund(self, app: Application) -> None:
        """A granted loan was not used (no home found): the commitment returns if its year is still open."""
        if app.year == self.year:
            (self.earmarked if app.pot == "earmarked" else self.general).put(app.amount_nok)
            self._serve()

    def close_year(self, new_year: int) -> float:
        """Year end: without carry-over, what is left expires. Returns the NOK that expired."""
        self.year = new_year
        if self.carry_over:
            return 0.0
        expired = self.remaining_nok
        for pot in (self.earmarked, self.general):
            if pot.level > 0:
                pot.get(pot.level)
        return expired

    def _serve(self) -> None:
        i = 0
        while i < len(self.waiting):
            app = self.waiting[i]
            pot = self._pot_for(app)
            if pot is None:
                i += 1
                continue
            del self.waiting[i]
            self._grant(app, pot)
