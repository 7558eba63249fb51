"""Output tables: required columns, yearly = sum of monthly, summary percentiles, dialects, formula guard."""

import numpy as np
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


def test_summary_gives_nok_in_whole_kroner(result, tmp_path):
    """summary.csv's NOK rows are rounded to whole kroner like every other table's NOK columns."""
    outputs.write_csv(outputs.run_tables(result)["summary.csv"], tmp_path / "summary.csv")
    s = outputs.read_csv(tmp_path / "summary.csv")
    money = s[s["column"].map(outputs.is_nok)][["mean", "p5", "p50", "p95"]].to_numpy()
    assert len(money) and (money == np.round(money)).all()
    assert (s[~s["column"].map(outputs.is_nok)][["mean"]].to_numpy() % 1 != 0).any()  # others keep decimals


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
    # in the file each formula-like text has its apostrophe; read back, the text is as it was
    assert (tmp_path / "plain.csv").read_text().splitlines()[1].startswith("'=SUM(A1),")
    assert a["name"].tolist() == ["=SUM(A1)", "+1", "-x", "@y", "plain"]
    assert a["value_nok"].tolist() == [1, 3, -3, 1_000_000_000, 0]


def test_a_table_saved_again_by_excel_reads_the_same(tmp_path):
    """Excel saves a table as "CSV (semikolondelt)" (semicolons, decimal commas, Windows-1252, no byte-order mark)
    or as "CSV UTF-8" (commas with a byte-order mark): both read back as the table lte wrote."""
    df = pd.DataFrame({"replication": [0, 1], "year": [2011, 2011], "group": ["lte", "øvrige"],
                       "startlan_nok": [1_500_000.0, 2_250_000.0], "share": [0.125, 0.5]})
    outputs.write_csv(df, tmp_path / "lte.csv", "plain")
    expected = outputs.read_csv(tmp_path / "lte.csv")
    df.to_csv(tmp_path / "semikolon.csv", sep=";", decimal=",", index=False, encoding="cp1252")
    df.to_csv(tmp_path / "utf8.csv", index=False, encoding="utf-8-sig")
    df.to_csv(tmp_path / "nb_no_bom.csv", sep=";", decimal=",", index=False, encoding="utf-8")
    for name in ("semikolon.csv", "utf8.csv", "nb_no_bom.csv"):
        pd.testing.assert_frame_equal(outputs.read_csv(tmp_path / name), expected, check_dtype=False)
    # a column name may hold the other dialect's separator, once or more, quoted or not
    for name, sep, decimal in (("note; kilde", ",", "."), ("kilde; side; note", ",", "."), ("a, b", ";", ",")):
        named = df.rename(columns={"share": name})
        named.to_csv(tmp_path / "named.csv", index=False, sep=sep, decimal=decimal)
        pd.testing.assert_frame_equal(outputs.read_csv(tmp_path / "named.csv"), expected.rename(columns={"share": name}),
                                      check_dtype=False)


BINARY = b"\x7fELF\x02\x01\x01\r\x00garbage\r\x8d\x90" + bytes(range(256)) * 4  # (a carriage return inside a line)


def test_a_file_that_is_not_a_table_is_named_and_old_mac_line_endings_read(tmp_path):
    """A file that is not text (a program, a picture) given where a table is read ends in a ValueError that the
    callers turn into one message naming the file, not csv's own error; a table whose lines end in a carriage
    return alone (saved as "CSV (Macintosh)") reads as any other."""
    from sim.errors import UserError

    (tmp_path / "yearly.csv").write_bytes(BINARY)
    with pytest.raises(ValueError):
        outputs.read_any_csv(tmp_path / "yearly.csv")
    with pytest.raises(UserError, match=r"yearly.csv: not a table written by lte \(it holds binary data"):
        outputs.read_result_table(tmp_path / "yearly.csv", ("replication", "year"))
    df = pd.DataFrame({"replication": [0, 1], "year": [2011, 2012], "share": [0.125, 0.5]})
    (tmp_path / "mac.csv").write_text(df.to_csv(index=False, lineterminator="\r"))
    pd.testing.assert_frame_equal(outputs.read_any_csv(tmp_path / "mac.csv")[0], df)
    (tmp_path / "mac_nb.csv").write_text(df.to_csv(index=False, sep=";", decimal=",", lineterminator="\r"))
    table, dialect = outputs.read_any_csv(tmp_path / "mac_nb.csv")
    assert dialect == "nb"
    pd.testing.assert_frame_equal(table, df)


def test_a_whole_column_with_empty_cells_is_written_without_decimals(tmp_path):
    """loans.csv's loss is empty for a default not yet settled: the other losses stay whole kroner, no ".0"."""
    df = pd.DataFrame({"loss_nok": [0.0, float("nan"), 79709.2], "share": [0.5, float("nan"), 1.0]})
    outputs.write_csv(df, tmp_path / "t.csv")
    assert (tmp_path / "t.csv").read_text().splitlines() == ["loss_nok,share", "0,0.5", ",", "79709,1.0"]


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    with pytest.raises(RuntimeError):
        with outputs.AtomicWriter(tmp_path) as w:
            w.table("a.csv", pd.DataFrame({"x": [1]}))
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_is_named_by_the_file_it_stopped(tmp_path, monkeypatch):
    """The system's message for a full disk names no file: the error names the result being written, and nothing
    is left, the files already written under temporary names neither."""
    import errno

    def full(df, path, dialect):
        path.write_bytes(b"replication,")
        raise OSError(errno.ENOSPC, "No space left on device")

    with outputs.AtomicWriter(tmp_path) as w:
        w.json("manifest.json", {"a": 1})
    monkeypatch.setattr(outputs, "write_csv", full)
    with pytest.raises(outputs.OutputError, match=r"yearly\.csv: cannot write the file \(No space left on device\)"):
        with outputs.AtomicWriter(tmp_path) as w:
            w.json("points.json", {"a": 1})
            w.table("yearly.csv", pd.DataFrame({"x": [1]}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


def test_a_folder_in_the_way_stops_every_file_before_the_first(tmp_path):
    """A folder where one result goes (yearly.csv) stops the commit before any file is renamed into place: the
    earlier results stay whole and consistent, no temporary file is left, and the message names the result."""
    for name in ("monthly.csv", "manifest.json"):
        (tmp_path / name).write_text("old")
    (tmp_path / "yearly.csv").mkdir()
    with pytest.raises(outputs.OutputError, match=r"yearly\.csv: a folder is where lte writes its yearly\.csv"):
        with outputs.AtomicWriter(tmp_path, clear_results=True) as w:
            for name in ("monthly.csv", "yearly.csv", "manifest.json"):
                w.bytes(name, b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "monthly.csv", "yearly.csv"]
    assert (tmp_path / "monthly.csv").read_text() == "old"


def test_tidy_numbers_by_hand():
    """NOK to whole kroner, other decimals to six places, whole columns as integers, no "-0", text untouched."""
    df = pd.DataFrame({
        "price_nok": [1_000_000.4, -0.4, 2.6],        # whole kroner, then integers
        "share": [0.12345678, -0.0000001, 0.5],       # six places; -0.0000001 rounds to -0.0, written 0
        "count": [1.0, 2.0, 3.0],                     # whole: integers
        "wait": [1.5, np.nan, 2.0],                   # a gap: stays decimal
        "huge": [2.0**60, 1.0, 0.0],                  # beyond exact integers in a double: stays decimal
        "label": ["a", "b", "c"],
        "n": [1, 2, 3],
    }, index=[5, 6, 7])
    out = outputs.tidy_numbers(df)
    assert list(out.columns) == list(df.columns) and list(out.index) == [5, 6, 7]
    assert out["price_nok"].tolist() == [1_000_000, 0, 3] and out["price_nok"].dtype == "int64"
    assert out["share"].tolist() == [0.123457, 0.0, 0.5] and str(out["share"].iloc[1]) == "0.0"
    assert out["count"].dtype == "int64" and out["count"].tolist() == [1, 2, 3]
    assert out["wait"].iloc[0] == 1.5 and np.isnan(out["wait"].iloc[1])
    assert out["huge"].dtype == "float64"
    assert out["label"].tolist() == ["a", "b", "c"] and out["n"].tolist() == [1, 2, 3]
    assert df["price_nok"].iloc[0] == 1_000_000.4  # the input is not changed


def test_remove_results_removes_what_lte_wrote_and_nothing_else(tmp_path):
    folder, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    files = ("monthly.csv", "yearly.csv", ".events.csv.tmp-999999999", ".lte.lock", "notes.txt", "runs/0a1b.yearly.csv",
             "runs/.0a1b.loans.csv.tmp-999999998", "runs/mine.txt", "old/report.html")
    for path in files:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("x")
    elsewhere.mkdir()
    (elsewhere / "frame.png").write_text("not in the output folder")
    (folder / "charts").symlink_to(elsewhere)  # a link is not followed
    # without a manifest.json or sweep.json lte wrote no results here: nothing is removed, whatever the names
    outputs.remove_results(folder)
    assert all((folder / path).exists() for path in files)
    (folder / "manifest.json").write_text("{}")
    outputs.remove_results(folder, keep={"monthly.csv"})
    left = sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
    assert left == [".lte.lock", "charts", "monthly.csv", "notes.txt", "old", "old/report.html", "runs", "runs/mine.txt"]
    (folder / "sweep.json").write_text("{}")  # (the folder is still lte's)
    assert (elsewhere / "frame.png").exists()
    (folder / "runs" / "mine.txt").unlink()
    outputs.remove_results(folder)
    assert not (folder / "runs").exists() and not (folder / "monthly.csv").exists()


def test_is_result_file(tmp_path):
    run, sweep, other = tmp_path / "run", tmp_path / "sweep", tmp_path / "other"
    for folder, marker in ((run, "manifest.json"), (sweep, "sweep.json"), (other, "notes.txt")):
        (folder / "runs").mkdir(parents=True)
        (folder / marker).write_text("{}")
    assert outputs.is_result_file(run / "yearly.csv") and outputs.is_result_file(run / "report.html")
    assert outputs.is_result_file(sweep / "comparison.csv") and outputs.is_result_file(sweep / "runs" / "0a.loans.csv")
    assert not outputs.is_result_file(run / "compare.csv") and not outputs.is_result_file(sweep / "runs" / "x.csv")
    assert not outputs.is_result_file(other / "yearly.csv")
    assert not outputs.is_result_file(other / "runs" / "0a.loans.csv")
