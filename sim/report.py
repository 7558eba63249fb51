"""A report a planner can read: one self-contained HTML file (charts embedded) and the same charts as PNGs.

Built from a finished folder of ``lte run`` or ``lte sweep``; the model is not run again.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
import pandas as pd  # noqa: E402

from sim import outputs  # noqa: E402
from sim.budget import COLUMNS as BUDGET_COLUMNS  # noqa: E402
from sim.compare import period_totals  # noqa: E402
from sim.errors import UserError  # noqa: E402

MILL = 1e6
BAND = "the shaded band runs from the 5th to the 95th percentile across replications"
BAND_S = BAND[0].upper() + BAND[1:]  # at the start of a sentence

# Key assumptions shown first, in the planner's words.
KEY_ASSUMPTIONS = (
    ("frame.yearly_nok", "Yearly startlån frame (NOK)"),
    ("frame.rounds", "Allocation rounds (month, share, largest random cut)"),
    ("frame.earmark_lte_share", "Share of the frame earmarked for leie til eie"),
    ("frame.priority", "Who goes first when the frame is short"),
    ("frame.patience_months", "How long approved applicants wait for the frame (mean, months)"),
    ("programme.advisers", "Advisers"),
    ("programme.sell_to_tenants", "Sell municipal dwellings to their tenants"),
    ("programme.replacement_ratio", "Dwellings bought per dwelling sold"),
    ("market.husbanken_rate_pct", "Husbanken's rate (%)"),
    ("market.price_index", "House price index (1.0 at start)"),
    ("tilskudd.budget_nok_year", "Tilskudd budget (NOK per year)"),
    ("stock.initial_units", "Municipal rental dwellings at start"),
)


def _get(tree: dict, path: str):
    node = tree
    for part in path.split("."):
        node = node[part]
    return node


def _fmt(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_fmt(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.0f}".replace(",", " ") if abs(value) >= 1000 else f"{value:g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}".replace(",", " ")
    return str(value)


def _value_used(scenario: dict, key: str, draws: list[dict]) -> str:
    """A key's value as the run used it: the scenario's, or, for a key drawn from the calibration posterior for
    each replication, the range of the draws beside the estimate the scenario holds."""
    value = _fmt(_get(scenario, key))
    drawn = [d[key] for d in draws if key in d]
    if not drawn:
        return value
    return (f"{_fmt(float(min(drawn)))} to {_fmt(float(max(drawn)))}: {len(drawn)} draws from the calibration "
            f"posterior, shared out over the replications (estimate {value})")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _band(ax, table: pd.DataFrame, col: str, label: str, scale: float = 1.0, color=None):
    g = table.groupby("year")[col]
    mean, lo, hi = g.mean() / scale, g.quantile(0.05) / scale, g.quantile(0.95) / scale
    line, = ax.plot(mean.index, mean.values, marker="o", ms=3, label=label, color=color)
    ax.fill_between(mean.index, lo.values, hi.values, alpha=0.2, color=line.get_color())


def _style(ax, title: str, ylabel: str):
    ax.set_title(title, fontsize=11, loc="left")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("year")
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def run_charts(yearly: pd.DataFrame, budget: pd.DataFrame) -> dict[str, tuple[bytes, str]]:
    """Charts of one run: name -> (PNG bytes, caption)."""
    charts = {}
    fig, ax = plt.subplots(figsize=(8, 3.8))
    _band(ax, yearly, "new_owners_municipal", "bought their municipal dwelling")
    _band(ax, yearly, "new_owners_private", "bought on the private market")
    _style(ax, "New owners from leie til eie per year, by route", "households per year")
    ax.legend()
    charts["new_owners"] = (_png(fig), f"Tenants who became owners each year. Lines are means; {BAND}.")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    b = budget.set_index("year")
    width = 0.21
    x = b.index.to_numpy()
    for shift, col, label in ((-1.5 * width, "frame_granted_nok", "granted by Husbanken"),
                              (-0.5 * width, "frame_used_nok", "used for approved loans"),
                              (0.5 * width, "frame_unused_nok", "left unused at year end"),
                              (1.5 * width, "frame_lapsed_nok", "lapsed: used in an earlier year, purchase failed")):
        mean, lo, hi = (b[f"{col}_{k}"].to_numpy() / MILL for k in ("mean", "p5", "p95"))
        ax.bar(x + shift, mean, width, label=label, yerr=[mean - lo, hi - mean], capsize=1.5,
               error_kw={"elinewidth": 0.7, "ecolor": "#444"})
    _style(ax, "The startlån frame: granted, used, unused and lapsed", "NOK million per year")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    charts["frame"] = (_png(fig), "Bars are means across replications; the thin lines on them run from the 5th to "
                                  "the 95th percentile. Unused frame is lost at year end unless the scenario "
                                  "carries it over; so is a commitment whose purchase fails after its year has "
                                  "closed (lapsed, counted in the year it fails).")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    _band(ax1, yearly, "frame_wait_months_mean", "mean wait")
    _style(ax1, "Waiting time for the frame", "months (those who got a loan)")
    _band(ax2, yearly, "frame_gave_up", "gave up", color="tab:red")
    _style(ax2, "Approved applicants who gave up waiting", "applicants per year")
    charts["waiting"] = (_png(fig), f"When the frame is used up, approved applicants wait; some give up. {BAND_S}.")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    _band(ax, yearly, "startlan_nok_lte", "to leie-til-eie tenants", scale=MILL)
    _band(ax, yearly, "startlan_nok_other", "to other borrowers", scale=MILL)
    _style(ax, "Startlån paid out per year", "NOK million per year")
    ax.legend()
    charts["startlan"] = (_png(fig), f"All of the municipality's startlån draw on the same frame. {BAND_S}.")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    ax.plot(b.index, b["portfolio_end_nok_mean"] / MILL, marker="o", ms=3, label="outstanding startlån at year end")
    ax.fill_between(b.index, b["portfolio_end_nok_p5"] / MILL, b["portfolio_end_nok_p95"] / MILL, alpha=0.2)
    _style(ax, "Startlån portfolio (= the municipality's debt to Husbanken)", "NOK million")
    ax.legend()
    charts["portfolio"] = (_png(fig), f"The municipality borrows from Husbanken what it lends on. {BAND_S}.")

    fig, ax = plt.subplots(figsize=(8, 3.8))
    for col, label, sign in (("margin_nok", "interest margin on startlån (in)", 1),
                             ("dwelling_sales_income_nok", "dwellings sold to tenants (in)", 1),
                             ("replacement_purchases_nok", "replacement dwellings bought (out)", -1),
                             ("loss_municipality_nok", "the municipality's 25 % of losses (out)", -1),
                             ("rent_income_change_nok", "change in rent income since the first year", 1)):
        line, = ax.plot(b.index, b[f"{col}_mean"] * sign / MILL, marker="o", ms=3, label=label)
        ax.fill_between(b.index, b[f"{col}_p5"] * sign / MILL, b[f"{col}_p95"] * sign / MILL, alpha=0.15,
                        color=line.get_color())
    _style(ax, "The municipality's own money: income above zero, cost below", "NOK million per year")
    ax.set_ylim(auto=True)
    ax.axhline(0, color="#444", lw=0.8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False, fontsize=8)
    charts["municipal_money"] = (_png(fig), "What leie til eie and startlån mean for the municipality's own budget "
                                            "each year (means; startlån lent on from Husbanken are not income or "
                                            f"cost and are left out). {BAND_S}.")
    return charts


SWEEP_OUTCOMES = (("new_owners", "New owners from leie til eie", "households", 1.0),
                  ("startlan_nok", "Startlån paid out", "NOK million", MILL),
                  ("frame_gave_up", "Approved applicants who gave up waiting for the frame", "applicants", 1.0),
                  ("frame_expired_nok", "Frame left unused and lost", "NOK million", MILL),
                  ("loss_nok", "Losses on startlån", "NOK million", MILL))


def _meaning(key: str) -> str:
    """A scenario key's meaning in plain words (the schema's description and unit), or the key itself."""
    from sim.scenario import field_info

    info = field_info(key)
    if info is None or not info.description:
        return key
    unit = (info.json_schema_extra or {}).get("unit", "")
    return f"{info.description} ({unit})" if unit else info.description


# the sweep report's words on its table of points: the units, and where each point's budget is
_SWEEP_UNITS = ("New owners: households; startlån paid out, frame unused and losses: NOK million; gave up waiting: "
                "approved applicants.")
_SWEEP_BUDGET = "Each point's yearly budget is in budget.csv (column <code>point</code>)."


def _period_totals(yearly: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    totals = []
    for p, g in yearly.groupby("point"):
        t = period_totals(g)
        t["point"] = p
        totals.append(t)
    return pd.concat(totals).merge(points, on="point")


def sweep_charts(yearly: pd.DataFrame, points: pd.DataFrame, levers: list[str]) -> dict[str, tuple[bytes, str]]:
    """Each main outcome over the whole period against the first lever; one panel per value of the second
    lever, one line per combination of the others."""
    levers = [c for c in levers if c in points.columns and points[c].nunique() > 1]
    totals = _period_totals(yearly, points)
    x = levers[0] if levers else "point"
    panel = levers[1] if len(levers) > 1 else None
    lines = levers[2:]
    order = list(dict.fromkeys(points[x].tolist()))
    panels = list(dict.fromkeys(points[panel].tolist())) if panel else [None]
    line_keys = list(dict.fromkeys(points[lines].itertuples(index=False, name=None))) if lines else [()]
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    years = f"{int(yearly['year'].min())}-{int(yearly['year'].max())}"
    charts = {}
    for col, title, unit, scale in SWEEP_OUTCOMES:
        fig, axes = plt.subplots(1, len(panels), figsize=(min(4.2 * len(panels), 12), 3.8), sharey=True,
                                 squeeze=False)
        for ax, pv in zip(axes[0], panels):
            sub = totals if panel is None else totals[totals[panel] == pv]
            for i, lk in enumerate(line_keys):
                g = sub
                for k, v in zip(lines, lk):
                    g = g[g[k] == v]
                stats = g.groupby(x)[col].agg(mean="mean", lo=lambda s: s.quantile(0.05),
                                              hi=lambda s: s.quantile(0.95))
                stats = stats.reindex([o for o in order if o in stats.index])
                pos = [order.index(o) for o in stats.index]
                label = ", ".join(f"{k.split('.')[-1]} = {v}" for k, v in zip(lines, lk)) or None
                color = colors[i % len(colors)]
                if x == "point":  # no lever: the points are unrelated samples, not a path to draw a line along
                    mean = stats["mean"].to_numpy() / scale
                    ax.errorbar(pos, mean, yerr=[mean - stats["lo"].to_numpy() / scale,
                                                 stats["hi"].to_numpy() / scale - mean],
                                fmt="o", ms=3, capsize=2, label=label, color=color)
                else:
                    ax.plot(pos, stats["mean"] / scale, marker="o", ms=3, label=label, color=color)
                    ax.fill_between(pos, stats["lo"] / scale, stats["hi"] / scale, alpha=0.15, color=color)
            ax.set_xticks(range(len(order)), [str(o) for o in order], rotation=30 if len(order) > 4 else 0,
                          fontsize=8)
            ax.grid(alpha=0.3)
            if panel:
                ax.set_title(f"{panel.split('.')[-1]} = {pv}", fontsize=9)
            ax.set_xlabel(x.split(".")[-1])
        axes[0][0].set_ylabel(f"{unit}, {years}")
        fig.suptitle(f"{title}, whole period {years}", fontsize=11, x=0.01, ha="left")
        if lines:
            handles, labels = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, labels, loc="lower center", ncol=min(3, len(labels)), fontsize=8, frameon=False,
                       bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) - 1) // 3)))
            fig.subplots_adjust(bottom=0.3)
        caption = (f"Mean over replications of the whole period's total against {x}"
                   + (f"; one panel per value of {panel}" if panel else "")
                   + (f"; one line per value of {', '.join(lines)}" if lines else "")
                   + (" (the levers are explained above)" if levers else
                      " (each point's sampled values are in the table below)")
                   + ". The shaded band runs from the 5th to the 95th percentile "
                     "across replications (the model's randomness and, if the sweep samples them, the "
                     "uncertainties).")
        charts[f"sweep_{col}"] = (_png(fig), caption)
    return charts


def _table(df: pd.DataFrame, text: bool = False) -> str:
    """An HTML table; ``text`` tables are left-aligned (words), others right-aligned (numbers)."""
    classes = "t txt" if text else "t"
    return '<div class="scroll">' + df.to_html(index=False, border=0, classes=classes, escape=True, na_rep="") + "</div>"


# The budget in the report: two tables a planner can read, (column, heading, with band?)
BUDGET_VIEWS = (
    ("Startlån and the municipality's borrowing from Husbanken (NOK million)", (
        ("startlan_paid_nok", "startlån paid out", True),
        ("startlan_paid_lte_nok", "of which to leie-til-eie tenants", False),
        ("startlan_loans", "loans (count)", False),
        ("frame_granted_nok", "frame granted", False),
        ("frame_unused_nok", "frame unused", False),
        ("frame_lapsed_nok", "frame lapsed", False),
        ("repayments_received_nok", "repaid by borrowers", False),
        ("husbanken_repayments_nok", "repaid to Husbanken (with losses)", False),
        ("interest_received_nok", "interest received", False),
        ("interest_paid_husbanken_nok", "interest paid to Husbanken", False),
        ("margin_nok", "margin", False),
        ("portfolio_end_nok", "outstanding at year end", True),
    )),
    ("Losses, tilskudd, dwellings and rent (NOK million; dwellings counted)", (
        ("loss_nok", "losses", False),
        ("loss_municipality_nok", "municipality's 25 %", True),
        ("tilskudd_paid_nok", "tilskudd paid", False),
        ("tilskudd_written_down_nok", "tilskudd written down", False),
        ("units_sold", "dwellings sold", False),
        ("dwelling_sales_income_nok", "sales income", False),
        ("units_bought", "dwellings bought", False),
        ("replacement_purchases_nok", "purchase cost", False),
        ("rent_income_change_nok", "rent income change", True),
    )),
)


def _budget_views(budget: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Means per year (NOK million, one decimal); chosen columns with their 90 % band below the mean."""
    if "husbanken_repayments_nok_mean" not in budget.columns:
        # a run written before lte had the column: its mean is the sum of two means (its band is not shown)
        budget = budget.assign(
            husbanken_repayments_nok_mean=budget["repayments_received_nok_mean"] + budget["loss_nok_mean"])
    views = []
    for title, cols in BUDGET_VIEWS:
        out = pd.DataFrame({"year": budget["year"].astype(str)})
        for c, heading, band in cols:
            scale = MILL if c.endswith("_nok") else 1.0
            out[heading] = [f"{a:,.1f}".replace(",", " ") for a in budget[f"{c}_mean"] / scale]
            if band:
                lo, hi = budget[f"{c}_p5"] / scale, budget[f"{c}_p95"] / scale
                out[f"{heading}: 90 % band"] = [f"{a:,.1f} – {b:,.1f}".replace(",", " ") for a, b in zip(lo, hi)]
        views.append((title, out))
    return views


# the tables a report reads, with the columns it cannot do without: those that key its rows, and its values
RUN_TABLES = {"yearly.csv": (("replication", "year"), ("new_owners_municipal", "new_owners_private",
                                                      "frame_wait_months_mean", "frame_gave_up", "startlan_nok_lte",
                                                      "startlan_nok_other")),
              "budget.csv": (("year",), ())}
SWEEP_TABLES = {"yearly.csv": (("point", "replication", "year"), tuple(c for c, *_ in SWEEP_OUTCOMES)),
                "points.csv": (("point", "sample", "baseline"), ()),
                "comparison.csv": (("point", "year", "outcome"), ())}


def _table_keys(manifest: dict, is_sweep: bool) -> dict[str, dict]:
    """Per table, the values its key columns must take (see :func:`sim.outputs.check_rows`): every replication
    (of every point) in every year of the period, as far as the manifest says."""
    keys = outputs.result_keys(manifest, is_sweep)
    if not is_sweep:
        return {"yearly.csv": keys, "budget.csv": {"year": keys["year"]}}
    years = keys["year"]
    return {"yearly.csv": keys, "points.csv": {"point": keys["point"]},
            "comparison.csv": {"point": keys["point"], "year": None if years is None else [0, *years],
                               "outcome": None}}


def render(folder: str | Path) -> Path:
    """Write ``report.html`` and ``charts/*.png`` into a finished run or sweep folder."""
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder")
    if not manifest_path.is_file():
        raise UserError(f"{folder}: not a finished run or sweep folder (manifest.json is missing; "
                        "give the --out folder of lte run or lte sweep)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{manifest_path}: cannot be read as a run manifest ({exc})") from None
    if not isinstance(manifest, dict) or not ("sweep_name" in manifest or "scenario" in manifest):
        raise UserError(f"{manifest_path}: not the manifest of lte run or lte sweep (no 'scenario' or 'sweep_name')")
    is_sweep = "sweep_name" in manifest
    if not is_sweep and not isinstance(manifest["scenario"], dict):
        raise UserError(f"{manifest_path}: scenario: not the scenario of lte run (a table of its keys is expected); "
                        "run it again")
    needed = SWEEP_TABLES if is_sweep else RUN_TABLES
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise UserError(f"{folder}: not a finished {'sweep' if is_sweep else 'run'} folder "
                        f"({', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing)")
    keys = _table_keys(manifest, is_sweep)
    tables = {name: outputs.read_result_table(folder / name, columns, values, keys[name])
              for name, (columns, values) in needed.items()}
    try:
        title, page, charts = _page(manifest, is_sweep, tables)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:  # a file changed by hand
        raise UserError(f"{folder}: its files are damaged or were not written by this version of lte "
                        f"({type(exc).__name__}: {exc}); run it again (LTE_DEBUG=1 shows where)") from exc
    with outputs.locked_dir(folder, allow_existing=True):
        made = not (folder / "charts").exists()
        (folder / "charts").mkdir(exist_ok=True)
        try:
            with outputs.AtomicWriter(folder) as w:  # the page and its charts together, or nothing
                for name, (png, _) in charts.items():
                    w.bytes(f"charts/{name}.png", png)
                w.bytes("report.html", page.encode("utf-8"))
        except BaseException:
            if made:
                outputs.remove_empty_folder(folder / "charts")
            raise
    return folder / "report.html"


def _page(manifest: dict, is_sweep: bool, tables: dict[str, pd.DataFrame]) -> tuple[str, str, dict]:
    """The report's title, its HTML page and its charts (name -> (PNG bytes, caption))."""
    yearly = tables["yearly.csv"]
    parts = [_STYLE]
    if is_sweep:
        points = tables["points.csv"]
        title = f"{'Policy' if manifest.get('levers') else 'Uncertainty'} sweep: {manifest['sweep_name']}"
        parts.append(f"<h1>{html.escape(title)}</h1>")
        levers = [k for k in manifest.get("levers", []) if k in points.columns]
        uncertainties = [k for k in manifest.get("uncertainties", []) if k in points.columns]
        what = "policy points" if levers else (f"points, each a sample ({manifest.get('design', '')}) of the "
                                               "uncertainties below under the base scenario's policy")
        parts.append(f"<p>{len(points)} {what}, each run with the same {manifest['replications']} "
                     f"replications (seed {manifest['seed']}), so differences between points are paired. "
                     f"Base scenario: <code>{html.escape(manifest['base_file'])}</code>.</p>")
        if levers:
            lever_rows = [(k, _meaning(k), "; ".join(str(v) for v in dict.fromkeys(points[k])))
                          for k in levers]
            base = points[points["baseline"].astype(bool)]
            base_words = ", ".join(f"{k} = {base[k].iloc[0]}" for k in levers) if len(base) else ""
            parts.append("<h2>The levers</h2><p>Every combination of the values below is a policy point; the "
                         f"baseline point is {html.escape(base_words)}"
                         + (", under each sample of the uncertainties" if uncertainties else "")
                         + ". The full list is points.csv.</p>"
                         + _table(pd.DataFrame(lever_rows, columns=["lever", "meaning", "values"]), text=True))
        if uncertainties:
            rows = [(k, _meaning(k), f"{points[k].min():.4g} to {points[k].max():.4g}")
                    for k in uncertainties]
            parts.append("<h2>The uncertainties</h2><p>Sampled values (a level, a factor on a path or a shift in "
                         "points, as the sweep file says for each; the sweep file gives the ranges). Each "
                         "sample's values are in points.csv"
                         + ("" if levers else " and in the table below") + ".</p>"
                         + _table(pd.DataFrame(rows, columns=["uncertainty", "meaning", "sampled"]), text=True))
        charts = sweep_charts(yearly, points, manifest.get("levers", []))
        totals = _sweep_differences(tables["comparison.csv"], points, levers,
                                    sampled=[] if levers else uncertainties)
        if levers:
            parts.append("<h2>Compared with the baseline point, whole period</h2><p>Mean over replications and the "
                         "paired difference from the baseline point with a 90 % interval for its mean over the "
                         "replications (at the fit's estimates). Where a policy changes nothing, about one interval in "
                         "ten still leaves out 0: read the rows together, not one at a time. "
                         f"{_SWEEP_UNITS} Totals over the "
                         f"whole period. {_SWEEP_BUDGET}</p>" + _table(totals))
        else:
            parts.append("<h2>Each sample, whole period</h2><p>Mean over replications at each sample of the "
                         "uncertainties (no policy is compared: every point is the base scenario's policy). "
                         f"{_SWEEP_UNITS} {_SWEEP_BUDGET}</p>"
                         + _table(totals.drop(columns=[c for c in totals.columns
                                                       if c == "baseline" or c.endswith("difference [90 %]")])))
    else:
        s = manifest["scenario"]
        budget = tables["budget.csv"]
        title = f"Scenario: {s['name']}"
        parts.append(f"<h1>{html.escape(title)}</h1><p>{html.escape(s.get('description', ''))}</p>")
        parts.append(f"<p>{s['period']['start']} to {s['period']['end']}, leie til eie from "
                     f"{s['period']['programme_start']}; {manifest['replications']} replications, seed "
                     f"{manifest['seed']}, model version {manifest['package_version']}.</p>")
        rows = [(label, _value_used(s, key, manifest.get("parameter_draws") or []), s.get("sources", {}).get(key, ""))
                for key, label in KEY_ASSUMPTIONS]
        parts.append("<h2>Key assumptions</h2>" + _table(pd.DataFrame(rows, columns=["assumption", "value", "source"]),
                                                          text=True))
        charts = run_charts(yearly, budget)
        parts.append("<h2>Budget</h2><p>Means across replications, NOK million in nominal kroner (the year's "
                     "prices). For the main figures the 90 % band is shown beside the mean: in nine replications "
                     "out of ten the year's figure fell inside it. The file budget.csv has every column with its "
                     "band (<code>_p5</code>, <code>_p95</code>), in whole kroner. Startlån are lent on: the "
                     "municipality borrows from Husbanken exactly what it pays out, pays Husbanken's rate and "
                     "keeps the margin. The portfolio closes every year: outstanding at year end = outstanding at "
                     "the start + paid out − repaid − losses.</p>")
        for sub, view in _budget_views(budget):
            parts.append(f"<h3>{html.escape(sub)}</h3>" + _table(view))
        parts.append("<h3>What the columns of budget.csv mean</h3>"
                     + _table(pd.DataFrame(BUDGET_COLUMNS, columns=["column", "meaning"]), text=True))
    chart_html = []
    for name, (png, caption) in charts.items():
        b64 = base64.b64encode(png).decode()
        chart_html.append(f'<figure><img alt="{name}" src="data:image/png;base64,{b64}"><figcaption>'
                          f'{html.escape(caption)}</figcaption></figure>')
    # results come after the scenario and its assumptions (run) or the list of points (sweep)
    parts[4:4] = ["<h2>Results</h2>"] + chart_html
    parts.append(f"<h2>How sure are these figures?</h2><p>Each figure is a mean over replications: runs with the "
                 f"same policy and different luck (who arrives, how long advice and searches take, who defaults). "
                 f"{BAND.capitalize()}: the range in which a single year's outcome falls nine times out of ten, given "
                 "the model and its parameters. When the run draws parameters from the calibration's posterior, the "
                 "band also shows what the observed history cannot pin down. The band does not cover what the "
                 "model leaves out; the scenario's assumptions (above and in its [sources]) matter as much.</p>")
    page = "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>" + html.escape(title) + \
        "</title></head><body>" + "\n".join(parts) + "</body></html>"
    return title, page, charts


def _sweep_differences(comparison: pd.DataFrame, points: pd.DataFrame, levers: list[str],
                       sampled: list[str] = ()) -> pd.DataFrame:
    """Per point: the lever values (and the ``sampled`` uncertainties' values, to four digits), and each outcome's
    mean and its paired difference from the baseline point over the whole period, as the sweep's comparison.csv
    gives them (its ``year`` 0 rows)."""
    levers = [c for c in levers if c in points.columns]
    sampled = [c for c in sampled if c in points.columns]
    whole = comparison[comparison["year"] == 0].set_index(["point", "outcome"])
    rows = []
    outcomes = [c for c, *_ in SWEEP_OUTCOMES]
    words = {"new_owners": "new owners", "startlan_nok": "startlån", "frame_gave_up": "gave up waiting",
             "frame_expired_nok": "frame unused", "loss_nok": "losses"}
    for rec_in in points.to_dict("records"):
        row = pd.Series(rec_in)
        d = whole.loc[row.point].loc[outcomes].reset_index()
        rec = {"point": row.point}
        rec.update({k.split(".")[-1]: rec_in[k] for k in levers})
        rec.update({k.split(".")[-1]: f"{rec_in[k]:.4g}" for k in sampled})
        rec["baseline"] = "baseline" if row.baseline else ""
        for r in d.itertuples():
            scale, unit = (MILL, " (NOK mill.)") if r.outcome.endswith("_nok") else (1.0, "")
            name = words[r.outcome]
            rec[f"{name}{unit}"] = f"{r.mean / scale:,.1f}".replace(",", " ")
            lo, hi = r.difference_low90 / scale, r.difference_high90 / scale
            rec[f"{name}: difference [90 %]"] = "" if row.baseline else (
                f"{r.difference / scale:+.1f} [{lo:+.1f}, {hi:+.1f}]" if r.replications > 1
                else f"{r.difference / scale:+.1f}")
        rows.append(rec)
    return pd.DataFrame(rows)


_STYLE = """<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table.t { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
table.t th, table.t td { padding: 3px 6px; border-bottom: 1px solid #eee; text-align: right; }
table.t td:first-child, table.t th:first-child { text-align: left; }
table.t td { white-space: nowrap; }
table.txt th, table.txt td { text-align: left; vertical-align: top; white-space: normal; }
.scroll { overflow-x: auto; } figure { margin: 1em 0; } img { max-width: 100%; } figcaption { font-size: 0.85em; color: #555; }
</style>"""
