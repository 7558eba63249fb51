"""Output tables: required columns, yearly = sum of monthly, summary percentiles, dialects, formula guard."""

import pandas as pd
import pytest

from sim import outputs
from sim.runner import RunResult, run_replication, summary, yearly

REQUIRED = ["replication", "month", "tenants", "municipal_units", "in_advice", "waiting_for_frame",
            "new_owners_municipal", "new_owners_private", "startlan_loans", "startlan_nok", "tilskudd_grants",
            "tilskudd_nok", "frame_remaining_nok", "startlan_loans_lte", "startlan_loans_other"]


@pytest.fixture(scope="module")
def result(short):
    return RunResult(short, 3, [run_replication(short, 3, r) for r in range(3)])


def test_monthly_has_required_columns(result):
    assert list(result.monthly.columns[:2]) == ["replication", "month"]
    assert set(REQUIRED) <= set(result.monthly.columns)


def test_yearly_sums_flows_and_takes_december_levels(result):
    m = result.monthly
    y = yearly(m)
    m = m.assign(year=m["month"].str[:4].astype(int))
    for col in ("startlan_nok", "new_owners_private", "units_sold", "frame_granted_nok"):
        assert y.set_index(["replication", "year"])[col].to_dict() == pytest.approx(
            m.groupby(["replication", "year"])[col].sum().to_dict())
    dec = m[m["month"].str.endswith("-12")].set_index(["replication", "year"])["municipal_units"]
    assert (y.set_index(["replication", "year"])["municipal_units"] == dec).all()


def test_summary_percentiles_ordered(result):
    s = summary(yearly(result.monthly))
    assert list(s.columns) == ["year", "column", "mean", "p5", "p50", "p95"]
    assert (s["p5"] <= s["p50"] + 1e-9).all() and (s["p50"] <= s["p95"] + 1e-9).all()
    assert ((s["mean"] >= s["p5"] - 1e-6) & (s["mean"] <= s["p95"] + 1e-6)).all()


def test_dialects_round_trip_and_formula_guard(tmp_path):
    df = pd.DataFrame({"name": ["=SUM(A1)", "+1", "-x", "@y", "plain"], "value_nok": [1.4, 2.6, -3.0, 1e9, 0.0],
                       "share": [0.123456789, 1.5, 2.0, 0.0, -0.25]})
    outputs.write_csv(df, tmp_path / "plain.csv", "plain")
    outputs.write_csv(df, tmp_path / "nb.csv", "nb")
    raw = (tmp_path / "nb.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";" in raw and b"0,123457" in raw
    a, b = outputs.read_csv(tmp_path / "plain.csv"), outputs.read_csv(tmp_path / "nb.csv")
    pd.testing.assert_frame_equal(a, b)
    assert a["name"].tolist() == ["'=SUM(A1)", "'+1", "'-x", "'@y", "plain"]
    assert a["value_nok"].tolist() == [1, 3, -3, 1_000_000_000, 0]


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with outputs.AtomicWriter(tmp_path) as w:
            w.table("a.csv", pd.DataFrame({"x": [1]}))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
