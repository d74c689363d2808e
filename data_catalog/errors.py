"""Errors raised for bad input data.

Every message names the file (or catalog entry), the variable where there is one, and
what was expected, so the CLI can print it as one line and exit with status 2.
"""

from __future__ import annotations


class DataInputError(ValueError):
    """Input data or a catalog entry that cannot be turned into the canonical schema."""

    def __init__(self, message: str, *, source: object | None = None, variable: str | None = None):
        self.source = None if source is None else str(source)
        self.variable = variable
        where = []
        if self.source is not None:
            where.append(self.source)
        if variable is not None:
            where.append(f"variable {variable!r}")
        prefix = ": ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
