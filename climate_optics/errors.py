"""Error types the CLI maps to exit status 2 (bad input or usage)."""

from __future__ import annotations

from data_catalog.errors import DataInputError
from optical_backend.errors import OpticalConfigError


class UsageInputError(ValueError):
    """A command-line argument or file that the pipeline cannot use."""


BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (DataInputError, OpticalConfigError, UsageInputError)
