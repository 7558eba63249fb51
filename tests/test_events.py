"""The model's own events and environment behave as SimPy's do where the model uses them (the loop's order across the
month's list and its counts are checked in tests/test_model.py)."""

import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from sim.events import URGENT, Environment, Signal, run_events


def test_a_signal_wakes_its_process_with_its_value_in_simpys_order():
    """Decided at one instant beside SimPy's own events, a Signal fires in the order it was decided, as a
    ``simpy.Event`` would, and the waiting process gets its value."""
    env = Environment()
    signal, event, later = Signal(env), env.event(), Signal(env)
    woke = []

    def waiter(name, what):
        value = yield what
        woke.append((name, env.now, value))

    for name, what in (("signal", signal), ("event", event), ("later", later)):
        env.process(waiter(name, what))

    def decider():
        yield env.timeout(2.5)
        event.succeed("e")
        signal.succeed(True)
        later.succeed(False)

    env.process(decider())
    assert not signal.triggered
    env.run()
    assert woke == [("event", 2.5, "e"), ("signal", 2.5, True), ("later", 2.5, False)]
    assert signal.triggered and signal.callbacks is None


def test_a_signal_is_decided_once():
    env = Environment()
    signal = Signal(env)
    signal.succeed(True)
    with pytest.raises(RuntimeError):
        signal.succeed(False)


# A process's steps: wait (0 is "now"), schedule an urgent or a normal event with a callback, start a child, decide
# or wait for one of three shared events.
STEP = st.one_of(
    st.tuples(st.just("wait"), st.sampled_from([0, 0, 0.5, 1])),
    st.tuples(st.sampled_from(["urgent", "normal"]), st.sampled_from([0, 0, 0.5])),
    st.tuples(st.just("start"), st.integers(0, 2)),
    st.tuples(st.sampled_from(["decide", "await"]), st.integers(0, 2)),
)
PROGRAMME = st.lists(STEP, max_size=6)


def _trace(make_env, loop, top, children, signals):
    """Run the processes and return what happened, in order: (who, step, time)."""
    env = make_env()
    trace = []
    shared = [Signal(env) if signals else env.event() for _ in range(3)]

    def proc(name, steps, depth):
        for i, (kind, arg) in enumerate(steps):
            trace.append((name, i, env.now))
            if kind == "wait":
                yield env.timeout(arg)
            elif kind in ("urgent", "normal"):  # fired, it starts a child (if not too deep)
                event = env.event()
                event._ok, event._value = True, None
                event.callbacks.append(lambda _, who=f"{name}:{i}", depth=depth: fired(who, depth))
                env.schedule(event, URGENT if kind == "urgent" else simpy.events.NORMAL, arg)
            elif kind == "start" and depth < 2:
                env.process(proc(f"{name}/{i}", children[arg], depth + 1))
            elif kind == "decide" and not shared[arg].triggered:
                shared[arg].succeed(name)
            elif kind == "await":
                trace.append((name, i, "woke", (yield shared[arg]), env.now))

    def fired(who, depth):
        trace.append((who, "fired", env.now))
        if depth < 2:
            env.process(proc(who, children[len(trace) % 3], depth + 1))

    for k, steps in enumerate(top):
        env.process(proc(str(k), steps, 0))
    loop(env)
    return trace


def _simpy_run(env):
    env.run(until=10)


def _model_loop(env):
    run_events(env, 10.0, [])


@settings(max_examples=300, deadline=None)
@given(top=st.lists(PROGRAMME, min_size=1, max_size=4), children=st.lists(PROGRAMME, min_size=3, max_size=3))
def test_the_environment_keeps_simpys_order(top, children):
    """What is scheduled for now waits in the environment's two lines rather than SimPy's heap; the order of events
    must be SimPy's own, to the last event, whether run by SimPy's ``run`` (through the environment's ``step``) or by
    the model's loop, with SimPy's events or with Signals."""
    expected = _trace(simpy.Environment, _simpy_run, top, children, signals=False)
    assert _trace(Environment, _simpy_run, top, children, signals=False) == expected
    assert _trace(Environment, _model_loop, top, children, signals=False) == expected
    assert _trace(Environment, _model_loop, top, children, signals=True) == expected


def test_the_environment_steps_to_the_end_and_then_stops():
    def nothing():
        return
        yield

    env = Environment()
    env.process(nothing())  # a process that ends at once: its start and its end, both now
    assert env.peek() == 0
    env.step()
    env.step()
    assert env.peek() == float("inf")
    with pytest.raises(simpy.core.EmptySchedule):
        env.step()
    with pytest.raises(ValueError, match="later than now"):
        run_events(env, 0.0, [])
