"""Errors a user can cause and fix. The CLI turns each into one message and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input: a file, a key, a flag or an output folder.

    ``str(error)`` is the whole message the user sees; no traceback is shown.
    """


class ScenarioError(UserError):
    """A scenario, sweep or targets file breaks a rule. Holds one line per problem."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems  # (key path, rule broken)
        lines = [f"{file}: {key}: {rule}" if key else f"{file}: {rule}" for key, rule in problems]
        super().__init__("\n".join(lines))


class OutputError(UserError):
    """The output folder cannot be used (not empty, in use by another run, not writable)."""
