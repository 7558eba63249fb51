"""The frame's rules, by hand: pots, first-fit in priority order, give-up, refunds, year end."""

import pytest

from sim.events import Environment
from sim.frame import EARMARKED, GENERAL, Frame


def frame(earmark=0.0, priority="first_come", carry_over=False):
    env = Environment()
    return env, Frame(env, earmark, priority, carry_over)


def granted(app):
    return app.granted


def test_a_loan_that_fits_is_granted_at_once_from_the_right_pot():
    env, f = frame(earmark=0.5)
    f.add(1_000_000)  # 500k earmarked, 500k general
    lte = f.request(400_000, lte=True, children=False)
    other = f.request(400_000, lte=False, children=False)
    assert granted(lte) and lte.pot == EARMARKED
    assert granted(other) and other.pot == GENERAL
    assert f.level == {EARMARKED: 100_000, GENERAL: 100_000}
    # an lte loan that no longer fits the earmark takes the general pot; never split between pots
    f.add(200_000)  # +100k each: 200k earmarked, 200k general
    big = f.request(300_000, lte=True, children=False)
    assert not granted(big) and f.remaining_nok == 400_000


def test_other_borrowers_never_use_the_earmark():
    env, f = frame(earmark=1.0)
    f.add(1_000_000)
    app = f.request(100_000, lte=False, children=False)
    assert not granted(app) and f.level[EARMARKED] == 1_000_000


def test_first_fit_serves_small_loans_behind_a_large_one_and_keeps_priority_order():
    env, f = frame()
    big = f.request(900_000, lte=True, children=False)
    small1 = f.request(200_000, lte=True, children=False)
    small2 = f.request(200_000, lte=True, children=False)
    f.add(500_000)
    assert not granted(big) and granted(small1) and granted(small2)
    assert f.level[GENERAL] == 100_000
    f.add(800_000)
    assert granted(big) and f.level[GENERAL] == 0
    assert f.waiting == []


@pytest.mark.parametrize("rule, first", [("families_first", "family"), ("lte_first", "lte"),
                                         ("smallest_loan_first", "small"), ("first_come", "early")])
def test_priority_rules_decide_who_gets_scarce_money(rule, first):
    env, f = frame(priority=rule)
    early = f.request(300_000, lte=False, children=False)
    env.run(until=1)
    family = f.request(300_000, lte=False, children=True)
    env.run(until=2)
    lte = f.request(300_000, lte=True, children=False)
    env.run(until=3)
    small = f.request(250_000, lte=False, children=False)
    f.add(300_000)  # room for exactly one
    winners = [name for name, app in (("early", early), ("family", family), ("lte", lte), ("small", small))
               if granted(app)]
    assert winners == [first]


def test_withdraw_leaves_the_line_and_is_a_no_op_once_granted():
    env, f = frame()
    a = f.request(300_000, lte=True, children=False)
    b = f.request(100_000, lte=True, children=False)
    assert f.withdraw(a) is True
    assert f.withdraw(a) is False
    f.add(100_000)
    assert granted(b) and not granted(a)
    assert f.withdraw(b) is False
    f.add(1_000_000)
    assert not granted(a) and f.level[GENERAL] == 1_000_000


def test_refund_returns_money_in_the_same_year_only_and_serves_the_line():
    env, f = frame()
    f.year = 2020
    f.add(300_000)
    a = f.request(300_000, lte=True, children=False)
    waiting = f.request(250_000, lte=True, children=False)
    assert f.refund(a) is True  # no home found: the commitment returns and goes to the next in line
    assert granted(waiting) and f.level[GENERAL] == 50_000
    f.close_year(2021)
    assert f.refund(waiting) is False  # granted last year: nothing comes back (the model counts it as lapsed)
    assert f.level[GENERAL] == 0



def test_with_carry_over_a_refund_from_a_closed_year_returns():
    """The frame carried over is still the municipality's to lend: a commitment granted last year and not used
    comes back (without carry-over it expired with its year, as above)."""
    env, f = frame(carry_over=True)
    f.year = 2020
    f.add(1_000_000)
    a = f.request(600_000, lte=True, children=False)
    assert granted(a) and f.level[GENERAL] == 400_000
    assert f.close_year(2021) == 0
    assert f.refund(a) is True  # returned, not lapsed: the model counts nothing as lapsed
    assert f.level[GENERAL] == 1_000_000


def test_year_end_expires_the_rest_unless_carried_over():
    env, f = frame(earmark=0.3)
    f.add(1_000_000)
    assert f.close_year(2021) == pytest.approx(1_000_000)
    assert f.remaining_nok == 0
    env, g = frame(earmark=0.3, carry_over=True)
    g.add(1_000_000)
    assert g.close_year(2021) == 0 and g.remaining_nok == pytest.approx(1_000_000)


def test_pots_never_go_below_zero_under_many_random_operations():
    import random

    rnd = random.Random(7)
    env, f = frame(earmark=0.4, priority="smallest_loan_first")
    apps, refunded = [], set()
    for step in range(3000):
        r = rnd.random()
        if r < 0.5:
            apps.append(f.request(rnd.uniform(1e5, 2e6), lte=rnd.random() < 0.6, children=rnd.random() < 0.5))
        elif r < 0.7:
            f.add(rnd.uniform(0, 3e6))
        elif r < 0.85 and apps:
            f.withdraw(rnd.choice(apps))
        elif apps:
            app = rnd.choice(apps)
            if granted(app) and id(app) not in refunded:  # a loan is refunded at most once, as in the model
                refunded.add(id(app))
                f.refund(app)
        assert min(f.level.values()) >= 0
        # nothing waiting could have been served: first-fit leaves no loan that fits its pots
        assert not any(f._pot_for(a) for a in f.waiting)
        # every loan waiting is in the line's heaps once: the leie-til-eie ones in both
        waiting = f.waiting
        assert f.queued == len(waiting) == len({id(a) for a in waiting})
        assert {id(a) for a in waiting if a.lte} == {id(e[2]) for e in f._amounts_lte if e[2].in_line}


class ReferenceFrame:
    """The frame's rules as plainly as they can be written: the line is a list in priority order, and serving
    walks all of it, first fit. The frame must decide exactly as this does, however it keeps its line."""

    def __init__(self, earmark):
        self.earmark = earmark
        self.level = {EARMARKED: 0.0, GENERAL: 0.0}
        self.line = []  # [key, amount, lte, name], sorted by key
        self.granted = {}  # name -> pot

    def pot_for(self, amount, lte):
        if lte and self.level[EARMARKED] >= amount:
            return EARMARKED
        return GENERAL if self.level[GENERAL] >= amount else None

    def request(self, key, amount, lte, name):
        pot = self.pot_for(amount, lte)
        if pot:
            self.level[pot] -= amount
            self.granted[name] = pot
        else:
            self.line.append((key, amount, lte, name))
            self.line.sort()

    def withdraw(self, name):
        self.line = [e for e in self.line if e[3] != name]

    def refund(self, name, amount):
        self.level[self.granted[name]] += amount
        self.serve()

    def add(self, amount):
        self.level[EARMARKED] += amount * self.earmark
        self.level[GENERAL] += amount - amount * self.earmark
        self.serve()

    def serve(self):
        for entry in list(self.line):
            pot = self.pot_for(entry[1], entry[2])
            if pot:
                self.level[pot] -= entry[1]
                self.granted[entry[3]] = pot
                self.line.remove(entry)


@pytest.mark.parametrize("priority", ["first_come", "families_first", "lte_first", "smallest_loan_first"])
def test_the_line_decides_as_the_plain_rule_does(priority):
    """Long random sequences of requests, give-ups, refunds and rounds, with a line of hundreds: the same loans
    granted from the same pots, and the same line, as the plain rule (the frame keeps the smallest amounts at hand
    to stop serving early, and marks loans out of line rather than taking them out)."""
    import random

    rnd = random.Random(11)
    env, f = frame(earmark=0.3, priority=priority)
    ref = ReferenceFrame(0.3)
    apps, refunded = {}, set()
    longest = 0
    for step in range(3000):
        r = rnd.random()
        if r < 0.55:
            amount, lte, children = round(rnd.uniform(1e5, 2e6)), rnd.random() < 0.6, rnd.random() < 0.5
            app = f.request(amount, lte, children)
            apps[step] = app
            ref.request(app.key, amount, lte, step)
        elif r < 0.75 and apps:
            name = rnd.choice(list(apps))
            assert f.withdraw(apps[name]) == any(e[3] == name for e in ref.line)  # False if granted or gone
            ref.withdraw(name)
        elif r < 0.8 and apps:
            name = rnd.choice(list(apps))
            if apps[name].granted and name not in refunded:  # no home found: the commitment returns (same year)
                refunded.add(name)
                f.refund(apps[name])
                ref.refund(name, apps[name].amount_nok)
        else:
            amount = rnd.uniform(0, 2.4e6)
            f.add(amount)
            ref.add(amount)
        assert {n: a.pot for n, a in apps.items() if a.granted} == ref.granted
        assert [a.key for a in f.waiting] == [e[0] for e in ref.line]
        assert f.level == pytest.approx(ref.level, abs=1e-3)
        longest = max(longest, len(f.waiting))
        # loans out of line are dropped from it before they outnumber those in it (the line's memory is bounded)
        assert len(f._line) <= 2 * f.queued + 32 and len(f._amounts) <= 2 * f.queued + 32
        if rnd.random() < 0.01:
            env.run(until=env.now + 1)  # time passes: the first-come keys are times
    assert len(ref.granted) > 800 and len(refunded) > 50 and longest > 200


def test_a_loan_must_be_positive():
    env, f = frame()
    with pytest.raises(ValueError):
        f.request(0.0, lte=True, children=False)
