"""The model's own events behave as SimPy's do where the model uses them (the loop's order and counts are checked in
tests/test_model.py)."""

import pytest
import simpy

from sim.events import Signal


def test_a_signal_wakes_its_process_with_its_value_in_simpys_order():
    """Decided at one instant beside SimPy's own events, a Signal fires in the order it was decided, as a
    ``simpy.Event`` would, and the waiting process gets its value."""
    env = simpy.Environment()
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
    env = simpy.Environment()
    signal = Signal(env)
    signal.succeed(True)
    with pytest.raises(RuntimeError):
        signal.succeed(False)
