"""The committed fit reproduces Drammen's observed figures.

Every target must lie within the simulated 90 % band (posterior predictive: one replication per posterior
draw), except the documented tolerances below (README, Calibration: "Where the fit is weakest").
"""

import numpy as np
import pytest

from sim import scenario as sc
from sim import targets as tg
from sim.runner import run_replication

from .conftest import DRAMMEN, ROOT

# Targets that sit at the edge of the band (README, Calibration: "Where the fit is weakest"): the model's
# programme starts a little slower than Drammen's did, so the early counts lie in the top 5-8 % of the simulated
# distribution and fall just inside or just outside a band estimated from a finite number of draws. Tolerated:
# at most this far outside (in units of the target's own scale, see sim.targets.scale).
TOLERATED = {
    ("cumulative_sales_municipal_to_tenants", "2012-12"): 1.0,
    ("cumulative_municipal_units_bought", "2012-12"): 1.0,
    ("share_introduction_participants_private_buyers", "2015-06"): 0.3,
}


@pytest.fixture(scope="module")
def predictive():
    loaded = sc.load(DRAMMEN)
    assert loaded.fit is not None, "scenarios/drammen.toml must use the committed fit"
    targets = tg.load_targets(ROOT / "calibration" / "targets" / "drammen.csv", loaded.scenario)
    base = sc.with_overrides(loaded.scenario, {"period.end": tg.last_month(targets)})
    sims = []
    for r, draw in enumerate(loaded.posterior_draws(100, seed=11)):
        s = sc.with_overrides(base, draw)
        sims.append(tg.simulate_all(run_replication(s, 11, r).monthly, s, targets))
    return targets, np.array(sims)


def test_every_target_within_band_or_documented_tolerance(predictive):
    targets, sims = predictive
    misses = []
    for j, t in enumerate(targets):
        col = sims[:, j][np.isfinite(sims[:, j])]
        lo, hi = np.percentile(col, [5, 95])
        ref_lo = t.value if t.value is not None else (t.lower if t.lower is not None else -np.inf)
        ref_hi = t.value if t.value is not None else (t.upper if t.upper is not None else np.inf)
        inside = hi >= ref_lo and lo <= ref_hi
        tol = TOLERATED.get((t.quantity, t.month))
        if not inside:
            off = min(abs(t.miss(lo)), abs(t.miss(hi)))
            if tol is None or off > tol:
                misses.append(f"{t.label()}: observed {t.reference:g}, band {lo:g}-{hi:g}")
    assert not misses, misses


def test_fit_applied_to_the_baseline():
    fit = sc.read_fit(ROOT / "calibration" / "fitted" / "drammen.toml")
    s = sc.load(DRAMMEN).scenario
    data = s.model_dump(mode="json")
    for key, value in fit["estimate"].items():
        assert sc.get_value(data, key) == pytest.approx(value)
