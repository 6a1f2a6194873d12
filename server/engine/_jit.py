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
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

try:  # pragma: no cover - exercised by whichever environment runs the tests
    from numba import njit as _njit
except ImportError:  # pragma: no cover
    HAVE_NUMBA = False
else:
    HAVE_NUMBA = True


def kernel(func: F) -> F:
    """Compile ``func`` with numba (cached on disk) when available.

    The compiled dispatcher is called exactly like ``func``, so it keeps
    ``func``'s signature for the type checker.
    """
    if not HAVE_NUMBA:
        return func
    return cast(F, _njit(cache=True, nogil=True)(func))
