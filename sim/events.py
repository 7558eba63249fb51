"""The model's events, and the loop that runs them: what SimPy's own events do, made as cheaply as objects can be.

At county scale a run makes millions of events, and SimPy's (``simpy.Timeout``, ``simpy.Event``) each carry an
instance dictionary and are scheduled through a call. These carry only what SimPy's loop and a process waiting on
them read (``callbacks``, ``_ok``, ``_value``), in slots:

- :class:`Due`, a wait: succeeds, with no value, when the loop reaches its time (a timeout's job);
- :class:`Call`, a timed call: ``action(arg)`` at its time, with no process and no callbacks;
- :class:`Signal`, an event decided later: fired with a value by ``succeed`` (``simpy.Event``'s job; an advisers'
  place handed over, a loan granted by the frame);
- :class:`Environment`, SimPy's environment with what is scheduled for now kept in two lines beside its heap;
- :func:`run_events`, SimPy's loop written out, taking events from that environment and from the month's list the
  model keeps beside it.

They rely on SimPy 4's internals (its queue entries, ``env._now``, ``env._eid``, ``PENDING``): simpy is pinned below
5, tests/test_model.py checks that events fire at their exact times, in SimPy's order, and that the model's count of
events matches the loop's, and tests/test_events.py that a Signal fires as a SimPy event would and that the
environment keeps SimPy's order.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

import simpy
from simpy.core import EmptySchedule, StopSimulation
from simpy.events import EventPriority

# SimPy's queue holds entries (time, priority, id, event), urgent before normal at one instant. The model pushes an
# event due later this month as ``env.schedule`` would, and appends one due now (as a Signal does) to the
# environment's line, without the call to ``schedule``: one call fewer on the hottest paths (1.6 % of a replication's
# instructions).
NORMAL, URGENT = simpy.events.NORMAL, simpy.events.URGENT
PENDING = simpy.events.PENDING


class Environment(simpy.Environment):
    """SimPy's environment, with what is scheduled for now kept out of its heap.

    Most events the model schedules are for the instant they are asked for: a process starting (urgent), a process
    ending, a place or a loan handed over (nine in ten of what passes through SimPy's heap at 150k dwellings). In
    SimPy each is a push onto the heap and a pop off it, which cost in proportion to the logarithm of what the heap
    holds, and the heap grows with the stock. Here they wait in two first-in, first-out lines, one per priority,
    and SimPy's order (by time, urgent before normal, then first scheduled first) is kept without comparing them:
    whatever the heap holds for this instant was scheduled before the instant began (anything scheduled since is
    for now, and in a line, or for later), so at one instant the order is the heap's urgent events, the urgent
    line, the heap's normal events, then the normal line. (The month's list of :func:`run_events`, all scheduled
    before the month began, comes before the heap's normal events.) :meth:`step`, and so SimPy's ``run``, and
    :func:`run_events` keep that order; tests/test_events.py checks it against SimPy's own environment.

    Unlike SimPy's own, it does not bind ``process``, ``timeout`` and ``event`` to itself when made (SimPy does that
    only for its own class), so it holds no reference cycle: the model calls ``simpy.Process`` directly."""

    def __init__(self, initial_time: float = 0.0):
        super().__init__(initial_time)
        self._urgent: deque = deque()  # scheduled for now, urgent (a process starting)
        self._normal: deque = deque()  # scheduled for now, normal

    def schedule(self, event, priority=NORMAL, delay=0) -> None:
        """Schedule ``event`` with ``priority`` after ``delay``: in a line if for now, else in the heap. (SimPy's
        ``step`` reschedules an event interrupted by ``StopSimulation`` before all else, with a priority of its own:
        that goes to the heap, which is looked at first.)"""
        at = self._now + delay
        if at > self._now or priority < URGENT:
            heappush(self._queue, (at, priority, next(self._eid), event))
        elif priority == NORMAL:
            self._normal.append(event)
        else:
            self._urgent.append(event)

    def peek(self) -> float:
        """The time of the next event (infinity if none)."""
        if self._urgent or self._normal:
            return self._now
        return self._queue[0][0] if self._queue else simpy.core.Infinity

    def _next(self):
        """Take the next event, in SimPy's order (see the class's docstring)."""
        queue, now = self._queue, self._now
        if self._urgent and not (queue and queue[0][0] == now and queue[0][1] < NORMAL):
            return self._urgent.popleft()
        if self._normal and not (queue and queue[0][0] == now):
            return self._normal.popleft()
        try:
            self._now, _, _, event = heappop(queue)
        except IndexError:
            raise EmptySchedule from None
        return event

    def step(self) -> None:
        """Handle the next event: SimPy's own ``step``, taking it in the order above (and a :class:`Call` has its
        action called)."""
        event = self._next()
        if type(event) is Call:
            event.action(event.arg)
            return
        callbacks, event.callbacks = event.callbacks, None
        try:
            for callback in callbacks:
                callback(event)
        except StopSimulation:  # the rest of the callbacks run when the simulation resumes, as in SimPy
            event.callbacks = callbacks[callbacks.index(callback) + 1:]
            self.schedule(event, EventPriority(-1))
            raise
        if not event._ok and not hasattr(event, "_defused"):
            exc = type(event._value)(*event._value.args)
            exc.__cause__ = event._value
            raise exc


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
        self.env._normal.append(self)


class _EndOfRun(Exception):
    """Raised by the call at the end of the period to stop :func:`run_events`."""


def _stop(_) -> None:
    raise _EndOfRun


def run_events(env: Environment, until: float, due: list) -> None:
    """SimPy's loop, to time ``until``: what ``env.run(until)`` does, by the steps of ``Environment.step``, with the
    month's list as a source of events beside the environment's heap and lines.

    The environment holds what the model asks for during the current month: in its lines what is for the instant it
    is asked for (processes starting and ending, places and loans handed over), in SimPy's heap waits and calls due
    later in the month (see :class:`Environment`). The month's list (``due``, kept by the model's
    calendar) holds, sorted with the first due last, what had been asked for before the month began: most of a
    run's events, tenants' exits and screenings asked for years ahead among them. The loop takes whichever comes
    first, in SimPy's own order: by time, then urgent before normal, then the first asked for first (and everything
    on the month's list was asked for before anything in the heap or the lines that is due this month, since nothing
    is put there for a later month). So the heap stays small at any stock, and the month's events cost a comparison each
    rather than a push and a pop. The end is an urgent event at its time, as SimPy's own ``until``. Written out
    here, an event costs no call to ``step``, and a timed call (:class:`Call`) has its action called directly.
    Like ``env._now`` and :class:`Due`, this relies on SimPy 4's internals; tests/test_model.py checks the order,
    the times and the count of events. (The benchmark runs SimPy's floor through it too, for comparison.)"""
    queue, urgent, normal = env._queue, env._urgent, env._normal
    if not until > env._now:
        raise ValueError(f"until (={until}) must be later than now (={env._now})")
    heappush(queue, (until, URGENT, next(env._eid), Call(until, _stop, None)))
    try:
        while True:
            if urgent and not (queue[0][0] == env._now and queue[0][1] < NORMAL):
                event = urgent.popleft()
            elif normal and not (queue[0][0] == env._now or (due and due[-1].t == env._now)):
                event = normal.popleft()
            elif due:
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
