"""The startlån frame: a yearly sum in rounds, a priority-ordered waiting line, and give-up.

Two pots hold the money: one earmarked for leie-til-eie tenants and one general. A leie-til-eie loan is
taken from the earmark if it fits there, else from the general pot; other borrowers use only the general
pot. A loan is never split between pots and a pot never goes below zero.

When a loan does not fit, the applicant joins a waiting line ordered by the scenario's priority rule.
Whenever money arrives, the line is served first-fit in priority order: the first applicant whose loan
fits is served, then the next, so a large loan at the head does not block smaller ones behind it.

The pots are plain numbers rather than ``simpy.Container``s: nobody waits on a pot itself (the line does
the waiting), and a container would schedule an event for every put and get. The line also keeps the
smallest amounts waiting at hand (in heaps), so serving stops as soon as no loan waiting can fit.

At county scale the line holds thousands, so nothing is taken out of its middle: a loan granted or given
up is only marked as out of line, and the line is rebuilt without such loans once they outnumber those
waiting. A loan leaving the line then costs the same at any length of line, where taking an entry out of
the middle of a list costs in proportion to its length (and a round that grants thousands of loans took
thousands out).
"""

from __future__ import annotations

import bisect
import itertools
import math
from dataclasses import dataclass
from heapq import heapify, heappop, heappush

import simpy

from sim.events import Signal

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
    event: Signal | None = None
    pot: str = ""
    year: int = 0
    in_line: bool = False  # waiting in the line now

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
        # the line in priority order, with loans that have left it (``in_line`` False) until it is rebuilt
        self._line: list[Application] = []
        self._keys: list[tuple] = []  # their keys, so the line is searched with C-level tuple comparisons
        self._in_line = 0
        self._gone = 0  # loans that left the line since it was last rebuilt
        # the amounts in line, smallest first: heaps of (amount, sequence number, application), holding loans that
        # have left the line until they come to the top or the line is rebuilt. All of the loans (they may use the
        # general pot), and the leie-til-eie ones (they may also use the earmark).
        self._amounts: list[tuple[float, int, Application]] = []
        self._amounts_lte: list[tuple[float, int, Application]] = []
        self.year = 0
        self._seq = itertools.count()

    @property
    def waiting(self) -> list[Application]:
        """The loans waiting, in priority order."""
        return [app for app in self._line if app.in_line]

    @property
    def queued(self) -> int:
        """How many loans are waiting."""
        return self._in_line

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
            app.event = Signal(self.env)
            app.in_line = True
            self._in_line += 1
            keys = self._keys
            if not keys or keys[-1] < app.key:  # the usual case: first come, or the last of its class
                keys.append(app.key)
                self._line.append(app)
            else:
                i = bisect.bisect_right(keys, app.key)
                keys.insert(i, app.key)
                self._line.insert(i, app)
            entry = (amount_nok, app.key[-1], app)  # (by the sequence number, no two entries compare their apps)
            heappush(self._amounts, entry)
            if lte:
                heappush(self._amounts_lte, entry)
        return app

    def withdraw(self, app: Application) -> bool:
        """An applicant gives up waiting. Returns False if the loan was granted already (nothing to withdraw)."""
        if not app.in_line:
            return False
        self._leave(app)
        return True

    def _leave(self, app: Application) -> None:
        """The loan leaves the line (granted or given up); the line is rebuilt once more have left than wait."""
        app.in_line = False
        self._in_line -= 1
        self._gone += 1
        if self._gone > 32 and self._gone > self._in_line:
            self._line = [a for a in self._line if a.in_line]
            self._keys = [a.key for a in self._line]
            for heap in (self._amounts, self._amounts_lte):
                heap[:] = [entry for entry in heap if entry[2].in_line]
                heapify(heap)
            self._gone = 0

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

    @staticmethod
    def _smallest(heap: list) -> float:
        """The smallest amount in line in this heap (inf if none)."""
        while heap and not heap[0][2].in_line:
            heappop(heap)
        return heap[0][0] if heap else math.inf

    def _anything_fits(self) -> bool:
        return (self._smallest(self._amounts) <= self.level[GENERAL]
                or self._smallest(self._amounts_lte) <= self.level[EARMARKED])

    def _serve(self) -> None:
        """First-fit in priority order, stopping as soon as no loan waiting fits what is left."""
        if not self._anything_fits():
            return
        for app in self._line:  # (rebuilt as it is walked, the line is a new list, and this one stays as it was)
            if app.in_line:
                pot = self._pot_for(app)
                if pot is not None:
                    self._leave(app)
                    self._grant(app, pot)
                    if not self._anything_fits():
                        return
