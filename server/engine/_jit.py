"""Optional compilation of the engine's sequential kernels with numba.

The netting walk of SPEC §5.5 is a sequential scan per SKU (each take
depends on what earlier requirements took), which numpy cannot express as
whole-array operations. The kernels are written in the subset of Python that
numba compiles, so they run as machine code when numba is installed (it is a
declared dependency; see ``docs/performance.md`` for the measurement) and as
plain Python otherwise, with identical results.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover
    _njit = None
    HAVE_NUMBA = False


def kernel(func: F) -> F:
    """Compile ``func`` with numba (cached on disk) when available."""
    if _njit is None:
        return func
    return _njit(cache=True, nogil=True)(func)  # type: ignore[no-any-return]
