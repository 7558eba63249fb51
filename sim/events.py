"""The model's events, and the loop that runs them: what SimPy's own events do, made as cheaply as objects can be.

At county scale a run makes millions of events, and SimPy's (``simpy.Timeout``, ``simpy.Event``) each carry an
instance dictionary and are scheduled through a call. These carry only what SimPy's loop and a process waiting on
them read (``callbacks``, ``_ok``, ``_value``), in slots:

- :class:`Due`, a wait: succeeds, with no value, when the loop reaches its time (a timeout's job);
- :class:`Call`, a timed call: ``action(arg)`` at its time, with no process and no callbacks;
- :class:`Signal`, an event decided later: fired with a value by ``succeed`` (``simpy.Event``'s job; an advisers'
  place handed over, a loan granted by the frame);
- :func:`run_events`, SimPy's loop written out, taking events from SimPy's heap and from the month's list the
  model keeps beside it.

They rely on SimPy 4's internals (its queue entries, ``env._now``, ``env._eid``, ``PENDING``): simpy is pinned below
5, tests/test_model.py checks that events fire at their exact times, in SimPy's order, and that the model's count of
events matches the loop's, and tests/test_events.py that a Signal fires as a SimPy event would.
"""

from __future__ import annotations

from heapq import heappop, heappush

import simpy

# SimPy's queue holds entries (time, priority, id, event), urgent before normal at one instant. The model and a Signal
# push an event due now or later this month as ``env.schedule`` would, but without the call to it: one call fewer on
# the hottest paths (1.6 % of a replication's instructions).
NORMAL, URGENT = simpy.events.NORMAL, simpy.events.URGENT
PENDING = simpy.events.PENDING


class Due:
    """An event that succeeds, with no value, when the loop reaches the time it is due.

    It is what ``simpy.Timeout`` does, made as cheaply as an object can be: the loop (SimPy's
    ``Environment.step``, or :func:`run_events`) reads only an event's ``callbacks`` and ``_ok``, and a
    process that yields it (``Process._resume``) only ``callbacks``, ``_ok`` and ``_value``. Every wait of the
    model is one of these, so its cost is paid tens of thousands of times a run. Unlike a timeout it is not put
    in SimPy's queue when it is made: a wait due in a later month waits in that month's list (see
    :meth:`Model.wait`), and it carries the time it is due (``t``). tests/test_model.py checks that processes
    and calls wake at their exact times with this SimPy version.
    """

    __slots__ = ("t", "callbacks")
    _ok = True
    _value = None

    def __init__(self, t: float):
        self.t = t
        self.callbacks = []


class Call:
    """A timed call: ``action(arg)`` at time ``t``. It waits in SimPy's event queue (or its month's list) like an
    event, and the model's loop calls its action when it comes due, with no callbacks in between (see
    :func:`run_events`): a call is one small object, made when it is asked for (see :meth:`Model._at`).
    Every action takes one argument: a call waits for years at county scale, and a tuple of arguments would be
    another object to keep, and to fetch from memory when it fires."""

    __slots__ = ("t", "action", "arg")

    def __init__(self, t: float, action, arg):
        self.t = t
        self.action = action
        self.arg = arg


class Signal:
    """An event that something decides later: ``succeed(value)`` fires it, and a process waiting on it resumes with
    the value. It is what ``simpy.Event`` does for the model (an advisers' place handed over, or not; a loan granted
    by the frame, or given up), without its instance dictionary: two hundred thousand of them at 150k dwellings."""

    __slots__ = ("env", "callbacks", "_value")
    _ok = True

    def __init__(self, env: simpy.Environment):
        self.env = env
        self.callbacks = []
        self._value = PENDING

    @property
    def triggered(self) -> bool:
        """Whether it has been decided (its callbacks may not have run yet)."""
        return self._value is not PENDING

    def succeed(self, value) -> None:
        """Decide it: it fires now, after what is due at this instant already (as ``simpy.Event.succeed``)."""
        if self._value is not PENDING:
            raise RuntimeError(f"{self} has already been decided")
        self._value = value
        env = self.env
        heappush(env._queue, (env._now, NORMAL, next(env._eid), self))


class _EndOfRun(Exception):
    """Raised by the call at the end of the period to stop :func:`run_events`."""


def _stop(_) -> None:
    raise _EndOfRun


def run_events(env: simpy.Environment, until: float, due: list) -> None:
    """SimPy's loop, to time ``until``: what ``env.run(until)`` does, by the steps of ``Environment.step``, with two
    sources of events rather than one.

    SimPy's heap holds what the model asks for during the current month: waits and calls due before its end,
    processes starting and ending, places and loans handed over. The month's list (``due``, kept by the model's
    calendar) holds, sorted with the first due last, what had been asked for before the month began: most of a
    run's events, tenants' exits and screenings asked for years ahead among them. The loop takes whichever comes
    first, in SimPy's own order: by time, then urgent before normal, then the first asked for first (and everything
    on the month's list was asked for before anything in the heap that is due this month, since nothing is put in
    the heap for a later month). So the heap stays small at any stock, and the month's events cost a comparison each
    rather than a push and a pop. The end is an urgent event at its time, as SimPy's own ``until``. Written out
    here, an event costs no call to ``step``, and a timed call (:class:`Call`) has its action called directly.
    Like ``env._now`` and :class:`Due`, this relies on SimPy 4's internals; tests/test_model.py checks the order,
    the times and the count of events. (The benchmark runs SimPy's floor through it too, for comparison.)"""
    queue = env._queue
    env.schedule(Call(until, _stop, None), URGENT, until - env._now)
    try:
        while True:
            if due:
                event = due[-1]
                t = event.t
                first = queue[0]  # (never empty: the end is in it)
                if t < first[0] or (t == first[0] and first[1] == NORMAL):
                    due.pop()
                    env._now = t
                else:
                    env._now, _, _, event = heappop(queue)
            else:
                env._now, _, _, event = heappop(queue)
            if type(event) is Call:
                event.action(event.arg)
                continue
            callbacks, event.callbacks = event.callbacks, None
            for callback in callbacks:
                callback(event)
            if not event._ok and not hasattr(event, "_defused"):  # a process failed: raise its error, as SimPy
                exc = type(event._value)(*event._value.args)
                exc.__cause__ = event._value
                raise exc
    except _EndOfRun:
        pass
