"""The vocabulary every masterplan package speaks (numpy and the standard library only).

- :mod:`~masterplan.contract.tables` — the SPEC §4 input and result tables,
  their columns and types;
- :mod:`~masterplan.contract.columns` — tables as struct-of-arrays and their
  dtypes;
- :mod:`~masterplan.contract.coded` — dictionary-coded text columns;
- :mod:`~masterplan.contract.rows` — tables to and from rows of Python values;
- :mod:`~masterplan.contract.names` — resource names, run modes and states;
- :mod:`~masterplan.contract.dates` — the plan dates a run accepts.
"""
