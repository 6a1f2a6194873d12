"""A plan result packed for a trip across a process boundary.

A partition planned in another process (a process pool's, a Dask worker's)
sends its result back pickled. Pickled as they are, the result's
``StringDType`` arrays (planned-order ids, supply and demand refs) cost about
0.2 us a string each way, and made pickling a 50k-SKU partition's result
0.34 s, half its engine time (docs/scaling.md). Packed, the same result
pickles in 0.05 s:

- a ``StringDType`` array of ASCII text travels as fixed-width bytes, one
  buffer, and is cast back once the partitions' text is joined
  (:func:`join_arrays`);
- a coded column's codes travel in the narrowest integer type that holds
  its dictionary (a warehouse or kind column in one byte a row) and are
  widened back to :data:`~masterplan.contract.coded.CODE_DTYPE`.

Arrays shared by several columns (a run's demand refs, in pegging and delay
messages) stay shared, which the join relies on.

A process on the same machine (a process pool's worker) goes further: it
:func:`spill`-s the packed result's arrays into one file in shared memory
(``/dev/shm``) and sends only the file's name and layout; the coordinator
reads the file in one call and views the arrays in it (:func:`load`). Through
the pool's pipe, a 500k-SKU partition's result took 3.4 s from the worker's
return to the coordinator's hands, most of it copies and pipe writes of
about 500 MB.

A partition's input goes the other way, to the worker, with its task. Its
text columns are object arrays of ``str`` (and ``None`` for NULL), which
pickle at about 0.26 us a value, one value after another, in the
coordinator: at 10M SKUs over 16 processes that was about 40 s before the
last partition could start. :func:`pack_tables` joins each such column into
one string instead, which pickles at the speed of a copy; the worker splits
it again (:func:`unpack_tables`).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.dtypes import StringDType

from masterplan.contract.coded import CODE_DTYPE, Coded
from masterplan.server.engine.types import PlanResult, TableMap

__all__ = [
    "PackedColumn",
    "Spilled",
    "discard",
    "is_packed",
    "join_arrays",
    "load",
    "pack",
    "pack_tables",
    "spill",
    "spill_directory",
    "unpack",
    "unpack_codes",
    "unpack_tables",
]

_STR = StringDType()


@dataclass(frozen=True, slots=True)
class _Ascii:
    """A ``StringDType`` array of ASCII text held as fixed-width bytes."""

    data: np.ndarray

    def __len__(self) -> int:
        return len(self.data)


def pack(result: PlanResult) -> PlanResult:
    """``result`` with its text arrays and codes packed, for :func:`unpack`
    on the other side of a pickle."""
    memo: dict[int, object] = {}

    def text(values: np.ndarray) -> object:
        key = id(values)
        if key not in memo:
            memo[key] = _to_ascii(values)
        return memo[key]

    return _map(result, text, _narrow)


def unpack(result: PlanResult) -> PlanResult:
    """The inverse of :func:`pack`; a result that was never packed comes back equal."""
    memo: dict[int, object] = {}

    def text(values: object) -> object:
        if not isinstance(values, _Ascii):
            return values
        key = id(values)
        if key not in memo:
            memo[key] = values.data.astype(_STR)
        return memo[key]

    return _map(result, text, _widen)


def unpack_codes(result: PlanResult) -> PlanResult:
    """:func:`unpack` but for the text, which stays packed for :func:`join_arrays`."""
    return _map(result, lambda values: values, _widen)


def is_packed(values: object) -> bool:
    """Whether ``values`` is text :func:`pack` left packed."""
    return isinstance(values, _Ascii)


def join_arrays(parts: Sequence[object]) -> np.ndarray:
    """The arrays ``parts`` end to end, packed text among them; arrays of
    several dtypes are joined as objects.

    Packed parts are joined as bytes and cast once: joining ``StringDType``
    arrays costs about 80 ns a string, which made it most of a 16-partition
    join; bytes join at the speed of a copy.
    """
    if all(isinstance(p, _Ascii) for p in parts):
        return np.concatenate([p.data for p in parts if isinstance(p, _Ascii)]).astype(_STR)
    arrays = [p.data.astype(_STR) if isinstance(p, _Ascii) else np.asarray(p) for p in parts]
    if len({a.dtype for a in arrays}) > 1:
        arrays = [a.astype(object) for a in arrays]
    return np.concatenate(arrays)


def _widen(codes: np.ndarray) -> np.ndarray:
    """Codes back in the type of every coded column (a narrow code plus an
    offset would overflow)."""
    return codes.astype(CODE_DTYPE, copy=False)


def _to_ascii(values: np.ndarray) -> object:
    """``values`` as :class:`_Ascii` where that keeps every string, else as is."""
    if values.dtype != _STR or len(values) == 0:
        return values
    width = max(int(np.strings.str_len(values).max()), 1)
    try:
        data = values.astype(f"S{width}")
    except UnicodeEncodeError:
        return values
    # Fixed-width bytes drop trailing NUL characters (which ``str_len`` does
    # not count either): such an array stays as it is.
    return _Ascii(data) if (data.astype(_STR) == values).all() else values


def _narrow(codes: np.ndarray) -> np.ndarray:
    """``codes`` (-1 for NULL) in the narrowest signed type that holds them."""
    if len(codes) == 0 or codes.dtype.kind != "i":
        return codes
    top = int(codes.max())
    for dtype in (np.int8, np.int16, np.int32):
        if top <= np.iinfo(dtype).max:
            return codes.astype(dtype)
    return codes


def _map(
    result: PlanResult,
    text: Callable[[np.ndarray], object],
    codes: Callable[[np.ndarray], np.ndarray],
) -> PlanResult:
    """``result`` with ``text`` applied to each plain column and coded
    column's values, and ``codes`` to each coded column's codes."""
    tables = {
        name: {
            col: (
                Coded(codes(c.codes), text(c.values))  # type: ignore[arg-type]
                if isinstance(c, Coded)
                else text(c)
            )
            for col, c in table.items()
        }
        for name, table in result.tables.items()
    }
    return replace(result, tables=tables)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Joined:
    """An object array of ``str`` and ``None`` as one string: its values
    joined by NUL characters, which none of them holds, and where the
    ``None``-s were."""

    text: str
    nulls: np.ndarray
    length: int


_NONE = np.array(None, dtype=object)

#: What a packed input table's column is: as it was, or joined.
PackedColumn = np.ndarray | _Joined


def pack_tables(data: TableMap) -> dict[str, dict[str, PackedColumn]]:
    """``data`` with each text column joined into one string, for
    :func:`unpack_tables` on the other side of a pickle. A column that
    holds anything but ``str`` and ``None``, or text with a NUL
    character, stays as it is."""
    return {name: {col: _join_text(v) for col, v in table.items()} for name, table in data.items()}


def unpack_tables(data: TableMap | dict[str, dict[str, PackedColumn]]) -> TableMap:
    """The inverse of :func:`pack_tables`; tables never packed come back as they are."""
    return {
        name: {col: _split_text(v) if isinstance(v, _Joined) else v for col, v in table.items()}
        for name, table in data.items()
    }


def _join_text(values: np.ndarray) -> PackedColumn:
    if values.dtype != object or len(values) == 0:
        return values
    nulls = np.flatnonzero(np.equal(values, _NONE))
    filled = values
    if len(nulls):
        filled = values.copy()
        filled[nulls] = ""
    try:
        text = "\0".join(filled.tolist())
    except TypeError:  # a value that is not text: pickled as it is
        return values
    # One separator fewer than values: no value holds one, so the split is exact.
    if text.count("\0") != len(values) - 1:
        return values
    return _Joined(text, nulls, len(values))


def _split_text(joined: _Joined) -> np.ndarray:
    out = np.empty(joined.length, dtype=object)
    out[:] = joined.text.split("\0")
    out[joined.nulls] = None
    return out


#: Arrays smaller than this travel inside the pickle; a file read per
#: kilobyte array would cost more than it saves.
_SPILL_BYTES = 1 << 16


@dataclass(frozen=True, slots=True)
class _Slot:
    """An array held in a spill file: where it starts, its dtype and length."""

    offset: int
    dtype: str
    length: int


@dataclass(frozen=True, slots=True)
class Spilled:
    """A packed result whose large arrays are :class:`_Slot`-s of the file at ``path``."""

    result: PlanResult
    path: str


def spill_directory() -> str:
    """Where spill files go: ``/dev/shm`` (memory, not disk) where the
    machine has it, else the temporary directory."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return str(shm)
    return tempfile.gettempdir()


def spill(result: PlanResult, directory: str) -> Spilled:
    """``result`` (packed or not) with its large arrays written to a new file
    in ``directory``; the file is removed again if writing fails."""
    fd, path = tempfile.mkstemp(prefix="masterplan-partition-", dir=directory)
    memo: dict[int, object] = {}
    try:
        with os.fdopen(fd, "wb") as out:
            offset = 0

            def one(values: np.ndarray) -> object:
                nonlocal offset
                if values.dtype.hasobject or values.dtype.kind == "T":
                    return values
                if values.nbytes < _SPILL_BYTES:
                    return values
                key = id(values)
                if key not in memo:
                    pad = -offset % 64
                    out.write(b"\0" * pad)
                    offset += pad
                    out.write(np.ascontiguousarray(values).view(np.uint8).data)
                    memo[key] = _Slot(offset, values.dtype.str, len(values))
                    offset += values.nbytes
                return memo[key]

            moved = _each_array(result, one)
    except BaseException:
        os.unlink(path)
        raise
    return Spilled(moved, path)


def load(spilled: Spilled) -> PlanResult:
    """The result of :func:`spill`, its arrays views of the file's bytes read
    in one call; the file is removed."""
    try:
        buffer = np.fromfile(spilled.path, dtype=np.uint8)
    finally:
        os.unlink(spilled.path)
    memo: dict[int, np.ndarray] = {}

    def one(values: object) -> object:
        if not isinstance(values, _Slot):
            return values
        key = id(values)
        if key not in memo:
            memo[key] = np.frombuffer(
                buffer, np.dtype(values.dtype), count=values.length, offset=values.offset
            )
        return memo[key]

    return _each_array(spilled.result, one)


def discard(spilled: object) -> None:
    """Remove the file of a :class:`Spilled` result that will not be loaded
    (a failed or cancelled run's); anything else is left alone."""
    if isinstance(spilled, Spilled):
        Path(spilled.path).unlink(missing_ok=True)


def _each_array(result: PlanResult, one: Callable[[np.ndarray], object]) -> PlanResult:
    """``result`` with ``one`` applied to every array in it: columns, coded
    columns' codes and values, packed text's bytes."""

    wrapped: dict[int, _Ascii] = {}

    def any_array(values: object) -> object:
        if isinstance(values, _Ascii):
            # One wrapper for one wrapped array: unpacking keeps sharing by it.
            key = id(values)
            if key not in wrapped:
                wrapped[key] = _Ascii(any_array(values.data))  # type: ignore[arg-type]
            return wrapped[key]
        if isinstance(values, (np.ndarray, _Slot)):
            return one(values)  # type: ignore[arg-type]
        return values

    return _map(result, any_array, any_array)  # type: ignore[arg-type]
