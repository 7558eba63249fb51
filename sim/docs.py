"""Reference tables for the README, generated from the schema and the model's columns.

``python -m sim.docs`` prints the scenario-key and output-column tables; a test checks that README.md holds
the current version, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from pydantic import BaseModel

from sim.scenario import Scenario, Section

# Meaning and unit of every column of monthly.csv (and yearly.csv, where flows are summed per year and levels
# are the value of the year's last month in the run: December, unless the run ends earlier).
COLUMNS: dict[str, tuple[str, str]] = {
    "replication": ("number", "replication (0, 1, ...); the same number means the same random draws in every scenario"),
    "month": ("YYYY-MM", "calendar month"),
    "year": ("YYYY", "calendar year (yearly tables)"),
    # levels
    "tenants": ("households", "households living in municipal dwellings at month end"),
    "municipal_units": ("dwellings", "municipal rental dwellings at month end"),
    "vacant_units": ("dwellings", "dwellings without a tenant at month end (being re-let, or no one waiting)"),
    "waiting_list": ("households", "households waiting for a municipal dwelling at month end"),
    "in_advice": ("households", "tenants being advised (råd og veiledning) at month end"),
    "advice_queue": ("households", "tenants referred (or referred again) waiting for an adviser at month end"),
    "waiting_for_frame": ("households", "approved applicants waiting because the frame is used up, at month end"),
    "frame_remaining_nok": ("NOK", "frame not yet used at month end (earmarked + general)"),
    "tilskudd_remaining_nok": ("NOK", "grant budget not yet committed at month end"),
    "rent_roll_nok_month": ("NOK/month", "monthly rent of all let municipal dwellings at month end"),
    "active_loans": ("loans", "startlån outstanding at month end (all borrowers; those in default included until settled)"),
    "loans_in_default": ("loans", "startlån in default, loss not yet settled, at month end"),
    # flows
    "arrivals": ("households", "households joining the waiting list"),
    "moved_in": ("households", "households moving into a municipal dwelling"),
    "gave_up_waiting": ("households", "households leaving the waiting list without a dwelling"),
    "exits_other_routes": ("households", "tenants leaving by other routes (private rental, moving away)"),
    "screened": ("households", "tenants assessed for ownership potential"),
    "referred": ("households", "assessed tenants found to have potential and referred to advice"),
    "referred_again": ("households", "tenants referred to advice again for another attempt, "
                                     "reapply_after_months after a refusal, a failed search or giving up on "
                                     "the frame (with referred: what joins the advice queue)"),
    "left_advice_queue": ("households", "tenants who moved away (their time to leave came) while waiting for an "
                                        "adviser: they leave the queue and the dwelling (counted in "
                                        "exits_other_routes too)"),
    "advice_started": ("households", "tenants starting advice with an adviser"),
    "advice_completed": ("households", "tenants completing advice"),
    "advice_dropped": ("households", "tenants dropping out of advice"),
    "applications": ("applications", "startlån applications (tenants and other borrowers)"),
    "refused_debt": ("applications", "refused because of unresolved debt problems"),
    "refused_ability_to_pay": ("applications", "refused: the loan and any grant cannot cover price and costs"),
    "refused_grant_budget": ("applications", "refused: the year's grant budget cannot hold the grant needed"),
    "frame_approved": ("applications", "loans granted from the frame"),
    "frame_gave_up": ("applications", "approved applicants who gave up waiting for the frame"),
    "frame_wait_months_sum": ("months", "total months waited for the frame by those granted this month"),
    "search_failed": ("applications", "approved private buyers who found no home (the frame commitment returns)"),
    "new_owners_municipal": ("households", "tenants who bought the municipal dwelling they rent"),
    "new_owners_private": ("households", "tenants who bought a dwelling on the private market"),
    "new_owners_municipal_immigrant": ("households", "of new_owners_municipal: with immigrant background"),
    "new_owners_private_immigrant": ("households", "of new_owners_private: with immigrant background"),
    "new_owners_municipal_introduction": ("households", "of new_owners_municipal: in the introduction programme"),
    "new_owners_private_introduction": ("households", "of new_owners_private: in the introduction programme"),
    "new_owners_municipal_introduction_ever": ("households", "of new_owners_municipal: came through the introduction programme (in it now, or earlier)"),
    "new_owners_private_introduction_ever": ("households", "of new_owners_private: came through the introduction programme (in it now, or earlier)"),
    "startlan_loans": ("loans", "startlån paid out (leie til eie and other borrowers)"),
    "startlan_nok": ("NOK", "startlån paid out (leie til eie and other borrowers)"),
    "startlan_loans_lte": ("loans", "of startlan_loans: to leie-til-eie tenants"),
    "startlan_nok_lte": ("NOK", "of startlan_nok: to leie-til-eie tenants"),
    "startlan_loans_other": ("loans", "of startlan_loans: to other borrowers"),
    "startlan_nok_other": ("NOK", "of startlan_nok: to other borrowers"),
    "bank_loan_nok": ("NOK", "ordinary bank loans beside the startlån (top-up cases)"),
    "tilskudd_grants": ("grants", "tilskudd til etablering paid out"),
    "tilskudd_nok": ("NOK", "tilskudd til etablering paid out"),
    "frame_granted_nok": ("NOK", "frame arriving from Husbanken (after any cut of an uncertain round)"),
    "frame_expired_nok": ("NOK", "frame left unused at year end and lost (no carry-over), counted in December; the "
                          "last year's too when the run ends in December"),
    "frame_lapsed_nok": ("NOK", "frame committed in a year now closed to a loan whose purchase then failed (no home "
                         "found), counted when it failed: used in its year, never lent, and not returned (no "
                         "carry-over)"),
    "units_sold": ("dwellings", "municipal dwellings sold to their tenants"),
    "units_sold_value_nok": ("NOK", "sale price of municipal dwellings sold to tenants"),
    "units_bought": ("dwellings", "replacement dwellings bought by the municipality"),
    "units_bought_cost_nok": ("NOK", "cost of replacement dwellings bought"),
    "other_applicants": ("households", "other startlån applicants (from outside the municipal stock)"),
    "other_refused": ("households", "other applicants who did not buy (refused, gave up or found no home)"),
    "defaults": ("loans", "startlån going into default"),
    "loss_nok": ("NOK", "losses on startlån settled (all borrowers)"),
    "loss_municipality_nok": ("NOK", "the municipality's share of losses (25 %)"),
    "loss_state_nok": ("NOK", "the state's share of losses (75 %)"),
    "rent_income_nok": ("NOK", "rent from let municipal dwellings (the month-end rent roll, per month)"),
    # yearly only
    "new_owners": ("households", "new_owners_municipal + new_owners_private (yearly tables)"),
    "frame_wait_months_mean": ("months", "mean wait for the frame of those granted in the year (yearly tables; empty in a year no loan was granted)"),
}


def keys_markdown() -> str:
    """The scenario keys as a markdown table: key, unit, kind, meaning, default."""
    lines = ["| key | unit | kind | meaning | default |", "|---|---|---|---|---|"]

    def walk(model: type[BaseModel], prefix: str) -> None:
        for name, field in model.model_fields.items():
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, Section):
                walk(ann, f"{prefix}{name}.")
                continue
            extra = field.json_schema_extra or {}
            default = "required" if field.is_required() else ("" if field.default_factory else repr(field.default))
            doc = (field.description or "").replace("|", "/")
            lines.append(f"| `{prefix}{name}` | {extra.get('unit', '')} | {extra.get('kind', '')} | {doc} | {default} |")

    walk(Scenario, "")
    from sim.scenario import Round

    for name, field in Round.model_fields.items():
        extra = field.json_schema_extra or {}
        default = "required" if field.is_required() else repr(field.default)
        lines.append(f"| `frame.rounds[].{name}` | {extra.get('unit', '')} | fact | {field.description} | {default} |")
    return "\n".join(lines)


def columns_markdown(columns: list[str] | None = None) -> str:
    lines = ["| column | unit | meaning |", "|---|---|---|"]
    for col in columns or list(COLUMNS):
        unit, meaning = COLUMNS[col]
        lines.append(f"| `{col}` | {unit} | {meaning} |")
    return "\n".join(lines)


_BLOCKS = {"keys": keys_markdown, "columns": columns_markdown}


def render_readme(text: str) -> str:
    """README text with the generated blocks (between ``<!-- NAME:begin -->`` and ``end``) brought up to date."""
    import re

    for name, make in _BLOCKS.items():
        pattern = re.compile(rf"<!-- {name}:begin -->.*?<!-- {name}:end -->", re.S)
        text = pattern.sub(lambda _m: f"<!-- {name}:begin -->\n{make()}\n<!-- {name}:end -->", text)
    return text


if __name__ == "__main__":
    import sys
    from pathlib import Path

    if sys.argv[1:] == ["--write"]:
        readme = Path(__file__).resolve().parent.parent / "README.md"
        readme.write_text(render_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        for name, make in _BLOCKS.items():
            print(f"<!-- {name}:begin -->\n{make()}\n<!-- {name}:end -->\n")
