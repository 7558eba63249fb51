"""The report renders for a run and a sweep, self-contained, with every chart; bad folders are user errors."""

import json
import re

import pandas as pd
import pytest
from click.testing import CliRunner

from sim import report
from sim.cli import cli

from .conftest import DRAMMEN, write_variant


def _check(folder, expected_charts):
    page = (folder / "report.html").read_text(encoding="utf-8")
    images = re.findall(r'<img alt="([a-z_]+)" src="data:image/png;base64,([A-Za-z0-9+/=]{1000,})"', page)
    assert sorted(name for name, _ in images) == sorted(expected_charts)
    assert "http://" not in page and "https://" not in page and "<script" not in page  # no network, no JS
    assert sorted(p.stem for p in (folder / "charts").glob("*.png")) == sorted(expected_charts)
    for p in (folder / "charts").glob("*.png"):
        assert p.read_bytes().startswith(b"\x89PNG")
    return page


def test_run_report(tmp_path):
    short = write_variant(tmp_path, '[period]\nend = "2014-12"\n', "short.toml")
    out = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", str(short), "-n", "3", "--out", str(out)]).exit_code == 0
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    page = _check(out, ["new_owners", "frame", "waiting", "startlan", "portfolio", "municipal_money"])
    for words in ("Key assumptions", "Yearly startlån frame", "Budget", "How sure", "portfolio_end_nok",
                  "outstanding at year end: 90 % band", "25 %: 90 % band"):
        assert words in page, words
    # the NOK paid to leie-til-eie tenants follows the NOK paid out, not the count of loans
    assert page.index("startlån paid out: 90 % band") < page.index("of which to leie-til-eie tenants") \
        < page.index("loans (count)")
    # the fitted patience was drawn from the posterior for each replication: the report shows the draws' range
    draws = json.loads((out / "manifest.json").read_text())["parameter_draws"]
    assert len(draws) == 3 and "3 draws from the calibration posterior" in page
    assert f"{min(d['frame.patience_months'] for d in draws):g} to" in page
    # a run written before budget.csv had husbanken_repayments_nok is still reported: its mean is the sum of
    # what borrowers repaid and the losses
    budget = pd.read_csv(out / "budget.csv")
    assert "repaid to Husbanken (with losses)" in page
    budget.drop(columns=[c for c in budget.columns if c.startswith("husbanken_repayments")]).to_csv(
        out / "budget.csv", index=False)
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert "repaid to Husbanken (with losses)" in (out / "report.html").read_text()
    # a run folder without its budget is named with what is missing
    (out / "budget.csv").unlink()
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 2 and "budget.csv is missing" in r.output and str(out) in r.output


def _sweep_with_report(tmp_path, replications: int, end: str, body: str):
    """Run a sweep of the Drammen scenario (its levers or uncertainties in ``body``) and report it: the folder."""
    sweep = tmp_path / "s.toml"
    sweep.write_text(f'base = "{DRAMMEN.as_posix()}"\nreplications = {replications}\n'
                     f'[overrides]\n"period.end" = "{end}"\n{body}')
    out = tmp_path / "sweep"
    assert CliRunner().invoke(cli, ["sweep", str(sweep), "--workers", "1", "--out", str(out)]).exit_code == 0
    assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
    return out


def test_a_report_that_cannot_be_written_writes_no_chart_either(tmp_path):
    """The page and its charts are written together or not at all: a folder where report.html goes leaves no
    chart and no temporary file behind."""
    short = write_variant(tmp_path, '[period]\nend = "2012-12"\n', "short.toml")
    out = tmp_path / "run"
    assert CliRunner().invoke(cli, ["run", str(short), "-n", "2", "--out", str(out)]).exit_code == 0
    before = sorted(p.name for p in out.iterdir())
    (out / "report.html").mkdir()
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 2 and "report.html: a folder is where lte writes its report.html" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == sorted(before + ["report.html"])
    assert not list((out / "report.html").iterdir())


def test_sweep_report(tmp_path):
    out = _sweep_with_report(tmp_path, 2, "2012-12", '[levers]\n"frame.yearly_nok" = [20_000_000, 100_000_000]\n'
                                                     '"frame.earmark_lte_share" = [0.0, 0.5]\n')
    page = _check(out, [f"sweep_{c}" for c in ("new_owners", "startlan_nok", "frame_gave_up", "frame_expired_nok", "loss_nok")])
    assert "Compared with the baseline" in page
    # the comparison names each point by its lever values; the baseline point has no difference to itself
    assert "earmark_lte_share" in page and "<td>baseline</td>" in page and "The levers" in page
    # the comparison is read from comparison.csv: a sweep folder without it is named with what is missing
    (out / "comparison.csv").unlink()
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 2 and "comparison.csv is missing" in r.output and str(out) in r.output


def test_an_uncertainty_sweep_report_says_what_each_point_is(tmp_path):
    """A sweep without levers compares no policy: its points are samples of the uncertainties, and the report
    must show each sample's values (not an empty list of levers and a blank baseline)."""
    out = _sweep_with_report(tmp_path, 1, "2011-12", '[uncertainties]\n"market.price_index" = { scale = [0.8, 1.25] }\n'
                                                     '[design]\nkind = "lhs"\nsamples = 2\n')
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Uncertainty sweep" in page and "The uncertainties" in page and "The levers" not in page
    assert "baseline point is" not in page and "Each sample, whole period" in page
    import pandas as pd

    for value in pd.read_csv(out / "points.csv")["market.price_index"]:  # each sample's factor, in the table
        assert f"<td>{value:.4g}</td>" in page


@pytest.mark.parametrize("make", [lambda p: p / "missing", lambda p: p])
def test_not_a_run_folder(tmp_path, make):
    r = CliRunner().invoke(cli, ["report", str(make(tmp_path))])
    assert r.exit_code == 2 and "Traceback" not in r.output and str(make(tmp_path)) in r.output
    assert not (tmp_path / "report.html").exists()


def test_a_sweep_without_levers_draws_its_points_unjoined(monkeypatch):
    """With no lever the points are unrelated uncertainty samples: each is a mark with its band, never joined by
    a line as if they were a path."""
    import matplotlib.axes
    import pandas as pd

    from sim import report

    points = pd.DataFrame({"point": [0, 1, 2], "sample": [0, 1, 2], "baseline": [True, True, True],
                           "market.price_index": [0.9, 1.1, 1.0]})
    yearly = pd.DataFrame([{"point": p, "replication": r, "year": 2011, "new_owners_municipal": 10 * p + r,
                            "new_owners_private": r, "new_owners": 10 * p + 2 * r, "startlan_nok": 1e6 * (p + 1),
                            "frame_gave_up": r, "frame_expired_nok": 0.0, "loss_nok": 0.0}
                           for p in range(3) for r in range(2)])
    lines = []
    real_plot = matplotlib.axes.Axes.plot
    monkeypatch.setattr(matplotlib.axes.Axes, "plot", lambda self, *a, **k: lines.append(a) or real_plot(self, *a, **k))
    charts = report.sweep_charts(yearly, points, [])
    assert charts and all(png.startswith(b"\x89PNG") for png, _ in charts.values())
    assert not [a for a in lines if len(a) >= 2 and len(a[0]) > 1]  # no line through several points


@pytest.fixture(scope="module")
def one_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("one")
    short = write_variant(tmp, '[period]\nend = "2011-12"\n', "short.toml")
    assert CliRunner().invoke(cli, ["run", str(short), "-n", "1", "--out", str(tmp / "run")]).exit_code == 0
    return tmp / "run"


def _manifest(folder, **changes):
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest.update(changes)
    (folder / "manifest.json").write_text(json.dumps(manifest))


def _column(path, column, value):
    import pandas as pd

    pd.read_csv(path).assign(**{column: value}).to_csv(path, index=False)


def _cut(path, columns):
    path.write_text("".join(",".join(line.split(",")[:columns]) + "\n" for line in path.read_text().splitlines()))


def _drop_last(path):
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:-1]))


@pytest.mark.parametrize("damage, fragment", [
    (lambda f: (f / "yearly.csv").write_text("garbage\n"), "yearly.csv: not a table written by lte (no replication or "
                                                            "year column)"),
    # bytes that are not UTF-8 read as Windows-1252 (Excel's own CSV): a table of garbage, not lte's
    (lambda f: (f / "budget.csv").write_bytes(b"\xff\xfe\x00garbage"), "budget.csv: not a table written by lte"),
    (lambda f: (f / "budget.csv").write_text('year,"unclosed\n1,2\n'), "budget.csv: cannot be read as a table"),
    (lambda f: _manifest(f, scenario="x"), "manifest.json: scenario: not the scenario of lte run"),
    (lambda f: (f / "manifest.json").write_text("[]"), "manifest.json: not the manifest of lte run or lte sweep"),
    (lambda f: _manifest(f, scenario={"name": "x"}), "its files are damaged or were not written by this version"),
    (lambda f: _column(f / "yearly.csv", "new_owners_municipal", "many"), "its files are damaged"),
    # binary data that Python's csv module cannot split into lines, with and without NUL bytes
    (lambda f: (f / "budget.csv").write_bytes(b"year,a\n20\r10,1\n"),
     "budget.csv: damaged or incomplete (line 2 has 1 fields"),
    (lambda f: (f / "budget.csv").write_bytes(bytes(range(256)) * 8), "budget.csv: not a table written by lte (it "
                                                                      "holds binary data"),
    (lambda f: _cut(f / "yearly.csv", 2), "yearly.csv: not a table written by lte (it lacks the columns "),
    # cut off mid-row, or a year's row deleted: refused, not drawn from what is left
    (lambda f: (f / "yearly.csv").write_bytes((f / "yearly.csv").read_bytes()[:-20]),
     "yearly.csv: damaged or incomplete (its last line is cut short"),
    (lambda f: _drop_last(f / "yearly.csv"), "yearly.csv: damaged or incomplete (no row for replication 0, year 2011"),
    (lambda f: _drop_last(f / "budget.csv"), "budget.csv: damaged or incomplete (no row for year 2011"),
])
def test_a_damaged_run_folder_is_one_line(tmp_path, one_run, damage, fragment):
    """A file of the run changed by hand or by another program: one line naming it, exit 2, no report."""
    import shutil

    folder = tmp_path / "run"
    shutil.copytree(one_run, folder)
    damage(folder)
    r = CliRunner().invoke(cli, ["report", str(folder)])
    assert r.exit_code == 2 and "Traceback" not in r.output and str(folder) in r.output, r.output
    assert fragment in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (folder / "report.html").exists() and not (folder / "charts").exists()


def test_an_unforeseen_error_while_building_the_page_shows_its_traceback_with_lte_debug(one_run, monkeypatch):
    """The one line for a damaged folder may hide a fault of lte's own: LTE_DEBUG=1 shows where it arose."""
    def broken(*args):
        raise KeyError("mean")

    monkeypatch.setattr(report, "run_charts", broken)
    r = CliRunner().invoke(cli, ["report", str(one_run)])
    assert r.exit_code == 2 and "LTE_DEBUG=1 shows where" in r.output, r.output
    monkeypatch.setenv("LTE_DEBUG", "1")
    r = CliRunner().invoke(cli, ["report", str(one_run)])
    assert r.exit_code != 2 and isinstance(r.exception.__cause__, KeyError)
