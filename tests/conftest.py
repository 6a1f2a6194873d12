"""Shared pytest configuration: Hypothesis profiles.

- ``ci``: derandomized, 500 examples, no deadline; loaded when ``CI`` is set.
- ``dev``: 200 examples, no deadline; the default.
- ``hunt``: 5000 examples, for bug hunting (``HYPOTHESIS_PROFILE=hunt``).

``HYPOTHESIS_PROFILE`` names a profile explicitly and wins over ``CI``.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, max_examples=500, deadline=None, print_blob=True)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.register_profile("hunt", max_examples=5000, deadline=None)

settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
