"""Codes of requirement and receipt kinds (SPEC §4 refs, §5.5 orders)."""

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
    "REC_CLASS",
    "REC_KIND_NAMES",
    "REQ_KIND_NAMES",
    "R_FIRM",
    "R_OH",
    "R_PO",
    "R_PRD",
    "R_TRR",
]

# Requirement kinds in walk order (§5.5).
K_OH, K_SS, K_SO, K_PRDL, K_TRI, K_PL, K_FC = range(7)
REQ_KIND_NAMES = np.array(["oh", "ss", "so", "prdl", "tri", "pl", "fc"], dtype=object)
# Receipt kinds; the receipt class (§5.5) is on-hand 0, po/prd/trr 1, firmed 2.
R_OH, R_PO, R_PRD, R_TRR, R_FIRM = range(5)
REC_KIND_NAMES = np.array(["oh", "po", "prd", "trr", "pl"], dtype=object)
REC_CLASS = np.array([0, 1, 1, 1, 2], dtype=np.int64)
