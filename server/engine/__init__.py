"""The masterplan planning engine: a pure numpy/scipy library (SPEC §5).

Arrays in, arrays out: :func:`plan` takes the §4 input tables as
struct-of-arrays and returns the plan's output tables. It imports numpy,
scipy, numba and the standard library only, and the shared contract
(``masterplan.contract``); no gRPC, protobuf or SQL.

One module per rule of §5. Each phase is a function of the earlier phases'
results and returns a frozen dataclass whose fields say their shapes and
dtypes; :mod:`.plan` runs them in order and times them.

============================================  =======================================
SPEC §5 section                               module
============================================  =======================================
5.1 Time                                      :mod:`.calendar`
5.2 SKUs and settings                         :mod:`.skus`
5.3 SKU graph, levels and cycles              :mod:`.graph`
5.4 Requirements and receipts                 :mod:`.requirements`
5.5 Netting of one SKU                        :mod:`.netting` (driver), :mod:`.kernels`
                                              (the compiled walk)
5.6 Planned orders                            :mod:`.orders` (the quantity split runs in
                                              :mod:`.kernels`)
5.7 Delays (futures)                          :mod:`.delays`
5.8 Action messages                           :mod:`.actions`
5.9 Plan messages                             :mod:`.validate` (input checks),
                                              :mod:`.messages`; ``BOM_CYCLE`` in
                                              :mod:`.graph`, ``NO_BOM`` in :mod:`.orders`,
                                              ``NO_REFILL_WAREHOUSE`` in :mod:`.skus` and
                                              :mod:`.orders`
The result tables                             :mod:`.output`
2 Scale-out                                   :mod:`.partition` (independent clusters,
                                              balanced partitions), :mod:`.partitioned`
                                              (the partitions on an executor, joined),
                                              :mod:`.levelsplit` (a netting level's
                                              SKUs walked in runs on an executor)
The run: phases, timing, progress             :mod:`.plan`
6 Net change                                  :mod:`.incremental` (the run),
                                              :mod:`.basis` (what a run keeps),
                                              :mod:`.partbasis` (what a run over
                                              partitions keeps),
                                              :mod:`.front` (the phases before the
                                              netting, reused where unchanged),
                                              :mod:`.rowdiff` (changed rows),
                                              :mod:`.stitch` (joining the tables)
============================================  =======================================

Shared helpers: :mod:`.arrays` (vectorised array helpers), :mod:`.columns`
(requirement columns, walk order), :mod:`.kinds` (kind and order-type
codes), :mod:`.refs` and :mod:`.orderrefs` (refs as integer codes until the
output), :mod:`.types` (parameters and result), :mod:`._jit` (optional numba).
"""

from masterplan.server.engine.basis import PlanBasis
from masterplan.server.engine.incremental import NetChange, net_change, regeneration
from masterplan.server.engine.partbasis import PartitionedBasis, RunBasis
from masterplan.server.engine.plan import check, input_checks, plan, regenerate, warm_up
from masterplan.server.engine.types import (
    InvalidPlanInput,
    PlanParams,
    PlanResult,
    PlanTooLarge,
    Table,
    TableMap,
)
from masterplan.server.engine.validate import validate

__all__ = [
    "InvalidPlanInput",
    "NetChange",
    "PartitionedBasis",
    "PlanBasis",
    "PlanParams",
    "PlanResult",
    "PlanTooLarge",
    "RunBasis",
    "Table",
    "TableMap",
    "check",
    "input_checks",
    "net_change",
    "plan",
    "regenerate",
    "regeneration",
    "validate",
    "warm_up",
]
