"""Shared pytest configuration: Hypothesis profiles, and the compiled kernels.

- ``ci``: derandomized, 500 examples, no deadline; loaded when ``CI`` is set.
- ``dev``: 200 examples, no deadline; the default.
- ``hunt``: 5000 examples, for bug hunting (``HYPOTHESIS_PROFILE=hunt``).
- ``floors``: derandomized, 50 examples; CI's second job, which runs the
  suite again on the lowest versions pyproject.toml allows. That job checks
  that the code works on those versions, every path of it; the search for
  counterexamples to the planning rules is the first job's, with ``ci``.

``HYPOTHESIS_PROFILE`` names a profile explicitly and wins over ``CI``.

The netting kernels are compiled (or loaded from numba's on-disk cache) once,
before the first test: in a fresh clone the compile takes seconds, and it
would otherwise land in whichever test first starts a server or plans,
holding the interpreter lock while that test's deadlines run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, max_examples=500, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("hunt", max_examples=5000, deadline=None)
settings.register_profile(
    "floors", derandomize=True, max_examples=50, deadline=None, print_blob=True
)

settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels() -> None:
    """Compile the kernels once; server processes started later load them from the cache."""
    from masterplan.server.engine import warm_up

    warm_up()
