"""Errors raised for invalid projector or OPU configuration and for bad training signals."""

from __future__ import annotations


class OpticalConfigError(ValueError):
    """A projector or OPU configuration that cannot be honoured (size limits, unknown kind, ...)."""


class NonFiniteError(FloatingPointError):
    """A non-finite error signal that must not reach the weights."""
