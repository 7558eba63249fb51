"""The README's generated tables match the schema and the model's columns."""

from pathlib import Path

from sim import docs
from sim.runner import MONTHLY_COLUMNS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_tables_are_current():
    text = README.read_text(encoding="utf-8")
    assert docs.render_readme(text) == text, "README tables are stale: run `python -m sim.docs --write`"


def test_every_output_column_is_documented():
    missing = [c for c in MONTHLY_COLUMNS if c not in docs.COLUMNS]
    assert not missing, f"columns without documentation in sim/docs.py: {missing}"
