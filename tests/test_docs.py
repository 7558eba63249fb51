"""The README: its generated tables match the schema and the model's columns, and every command-line flag has a row."""

import re
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


def test_every_command_line_flag_is_in_a_readme_table():
    """Each long option of every command has a row in one of the README's flag tables."""
    from sim.cli import cli

    # the first cell of a flag table's row: `--seed S`, `-n, --replications N`, `--csv-dialect plain\|nb`
    rows = {flag for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| `-")
            for flag in re.findall(r"--[a-z][a-z-]*", line.split("`")[1])}
    missing = [f"lte {name} {opt}" for name, command in cli.commands.items() for p in command.params
               for opt in getattr(p, "opts", []) if opt.startswith("--") and opt != "--help" and opt not in rows]
    assert not missing, f"flags without a README row: {missing}"
