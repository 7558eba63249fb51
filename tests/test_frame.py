"""The frame's rules, by hand: pots, first-fit in priority order, give-up, refunds, year end."""

import pytest
import simpy

from sim.frame import EARMARKED, GENERAL, Frame


def frame(earmark=0.0, priority="first_come", carry_over=False):
    env = simpy.Environment()
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
    f.refund(a)  # no home found: the commitment returns and goes to the next in line
    assert granted(waiting) and f.level[GENERAL] == 50_000
    f.close_year(2021)
    f.refund(waiting)  # granted last year: nothing comes back
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
    f.refund(a)
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
        assert sorted(a.amount_nok for a in f.waiting) == f._amounts


def test_a_loan_must_be_positive():
    env, f = frame()
    with pytest.raises(ValueError):
        f.request(0.0, lte=True, children=False)
