"""The masterplan planning engine: a pure numpy/scipy library (SPEC §5).

Arrays in, arrays out: :func:`plan` takes the §4 input tables as
struct-of-arrays and returns the plan's output tables. It imports numpy,
scipy and the standard library only (numba when installed); no gRPC,
protobuf or SQL.
"""

from masterplan.server.engine.plan import InvalidPlanInput, check, plan, warm_up
from masterplan.server.engine.types import PlanParams, PlanResult, Table, TableMap
from masterplan.server.engine.validate import validate

__all__ = [
    "InvalidPlanInput",
    "PlanParams",
    "PlanResult",
    "Table",
    "TableMap",
    "check",
    "plan",
    "validate",
    "warm_up",
]
