"""Slow, literal reference implementation of SPEC §5 — the oracle of the
differential tests of the fast planning engine."""

from .planner import reference_plan

__all__ = ["reference_plan"]
