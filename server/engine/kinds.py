"""Integer codes of requirement kinds, receipt kinds and order types.

The phases carry kinds and types as small integers (sorting and comparing
them is cheap) and spell them only in the output tables, through the
``*_NAMES`` arrays indexed by code.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "K_FC",
    "K_OH",
    "K_PL",
    "K_PRDL",
    "K_SO",
    "K_SS",
    "K_TRI",
    "ORDER_PRODUCTION",
    "ORDER_PURCHASE",
    "ORDER_TRANSFER",
    "ORDER_TYPES",
    "ORDER_TYPE_NAMES",
    "REC_CLASS",
    "REC_KIND_NAMES",
    "REQ_KIND_NAMES",
    "R_FIRM",
    "R_OH",
    "R_PO",
    "R_PRD",
    "R_TRR",
]

# Requirement kinds, numbered in walk order (§5.5): the code is the sort key.
K_OH, K_SS, K_SO, K_PRDL, K_TRI, K_PL, K_FC = range(7)
REQ_KIND_NAMES = np.array(["oh", "ss", "so", "prdl", "tri", "pl", "fc"], dtype=object)
# Receipt kinds; the receipt class (§5.5) is on-hand 0, po/prd/trr 1, firmed 2.
R_OH, R_PO, R_PRD, R_TRR, R_FIRM = range(5)
REC_KIND_NAMES = np.array(["oh", "po", "prd", "trr", "pl"], dtype=object)
REC_CLASS = np.array([0, 1, 1, 1, 2], dtype=np.int64)

# Order types (§5.2 settings, §5.6 orders).
ORDER_PURCHASE, ORDER_PRODUCTION, ORDER_TRANSFER = range(3)
ORDER_TYPE_NAMES = np.array(["purchase", "production", "transfer"], dtype=object)
ORDER_TYPES = {
    "purchase": ORDER_PURCHASE,
    "production": ORDER_PRODUCTION,
    "transfer": ORDER_TRANSFER,
}
