"""Log lines that name the call: tenant, plan, run id, data-set version, request id.

An operator who reads ``run failed`` needs to know whose run, of which plan,
over which data set, without correlating thread names by hand. The servicers
therefore record who and what a call is about in a context variable
(:func:`bind`, :func:`log_context`), and :class:`ContextFilter` copies it onto
every record that reaches the server's handler, whichever logger wrote it
(the error funnel's tracebacks included). Two formatters render it: plain
``key=value`` text for people (the default) and one JSON object per line for
log collectors (``masterplan serve --log-format json``).

Only identifiers, counts and timings go into the context and the fields of a
line: never an API key, never the content of a data row.

A line of each format (wrapped here)::

    2026-12-02T10:00:00.125Z INFO masterplan.server.servicers.planning
        run started tenant=acme plan=main run=r1 version=3 mode=regeneration

    {"time": "2026-12-02T10:00:00.125Z", "level": "INFO",
     "logger": "masterplan.server.servicers.planning", "message": "run started",
     "tenant": "acme", "plan": "main", "run": "r1", "version": 3, "mode": "regeneration"}
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import inspect
import json
import logging
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from types import MappingProxyType
from typing import Any, Literal, TextIO, TypeVar, cast

__all__ = [
    "CONTEXT_FIELDS",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "bind",
    "configure",
    "current_context",
    "error_fields",
    "fields",
    "log_context",
    "scoped",
]

#: The formats ``masterplan serve --log-format`` accepts.
LogFormat = Literal["text", "json"]

#: Context keys, in the order the text format prints them.
CONTEXT_FIELDS = ("tenant", "plan", "run", "version", "request")

#: Record attribute that carries a line's own fields (see :func:`fields`).
FIELDS_ATTR = "masterplan_fields"

F = TypeVar("F", bound=Callable[..., Any])

_EMPTY: Mapping[str, object] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "masterplan_log_context", default=_EMPTY
)


def _clean(values: Mapping[str, object]) -> dict[str, object]:
    """Drop unset values: an empty request id says nothing worth a column."""
    return {k: v for k, v in values.items() if v is not None and v != ""}


def current_context() -> Mapping[str, object]:
    """The context of the current call (read-only), for handing to another thread."""
    return _context.get()


@contextmanager
def _scope(base: Mapping[str, object], values: Mapping[str, object]) -> Iterator[None]:
    token = _context.set(MappingProxyType({**base, **_clean(values)}))
    try:
        yield
    finally:
        # A generator closed from another thread (gRPC ending a stream)
        # unwinds in that thread's context, where this token is foreign and
        # nothing of ours was set: there is nothing to undo.
        with suppress(ValueError):
            _context.reset(token)


@contextmanager
def log_context(**values: object) -> Iterator[None]:
    """Extend the context for the ``with`` block; the previous one returns after it.

    Also restores a :func:`current_context` snapshot in another thread
    (``with log_context(**snapshot):``).

    Args:
        **values: Context fields (see :data:`CONTEXT_FIELDS`); ``None`` and
            empty strings are left out.
    """
    with _scope(_context.get(), values):
        yield


def bind(**values: object) -> None:
    """Add fields to the current context until its enclosing scope ends.

    Servicers learn the plan, run and version one step at a time; binding
    them as they become known keeps every later line of the call, and the
    error funnel's, complete. Call it inside :func:`scoped` or
    :func:`log_context`, whose exit undoes it.
    """
    _context.set(MappingProxyType({**_context.get(), **_clean(values)}))


def scoped(method: F) -> F:
    """Give each call of a servicer method its own, initially empty, log context.

    Empty, not inherited: gRPC reuses its threads, and nothing of an earlier
    call on the same thread may leak into this one's lines. Apply it outside the error funnel (``@scoped`` above ``@funnel``): the
    funnel logs unexpected errors after the method has returned, and those
    lines should still name the call.
    """
    if inspect.isgeneratorfunction(method):

        @functools.wraps(method)
        def stream(*args: Any, **kwargs: Any) -> Any:
            with _scope(_EMPTY, _EMPTY):
                yield from method(*args, **kwargs)

        return cast(F, stream)

    @functools.wraps(method)
    def unary(*args: Any, **kwargs: Any) -> Any:
        with _scope(_EMPTY, _EMPTY):
            return method(*args, **kwargs)

    return cast(F, unary)


def fields(**values: object) -> dict[str, object]:
    """A line's own fields, as the ``extra`` of a logging call.

    ``log.info("run finished", extra=fields(seconds=1.5))`` prints
    ``seconds=1.5`` after the context. The fields travel in one attribute so
    that no name can clash with the attributes of :class:`logging.LogRecord`.
    """
    return {FIELDS_ATTR: _clean(values)}


class ContextFilter(logging.Filter):
    """Puts the call's context on every record as ``record.context`` (a dict).

    Attach it to a handler, not a logger: a handler's filters see the records
    of every logger that propagates to it, a logger's only its own.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "context"):
            record.context = dict(_context.get())
        return True


def _record_fields(record: logging.LogRecord) -> dict[str, object]:
    """Context then the line's own fields; a line's field wins over the context's."""
    out: dict[str, object] = {}
    context = getattr(record, "context", None)
    if context is None:  # a handler without ContextFilter: read the variable here
        context = _context.get()
    for key in CONTEXT_FIELDS:
        if key in context:
            out[key] = context[key]
    for key, value in context.items():
        out.setdefault(key, value)
    out.update(getattr(record, FIELDS_ATTR, None) or {})
    return out


def _utc(created: float) -> str:
    """ISO 8601 in UTC with milliseconds: sortable, and the same on every host."""
    stamp = dt.datetime.fromtimestamp(created, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def _text_value(value: object) -> str:
    """One ``key=value`` value: mappings as ``k:v,k:v``; quoted where needed."""
    if isinstance(value, Mapping):
        text = ",".join(f"{k}:{_text_value(v)}" for k, v in value.items())
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``TIME LEVEL LOGGER MESSAGE key=value ...``; tracebacks follow on their own lines."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_utc(record.created), record.levelname, record.name, record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in _record_fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, fields, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _record_fields(record).items():
            out.setdefault(key, value)  # the four keys above are never overwritten
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure(
    log_format: LogFormat = "text", level: int | str = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the process's log records to ``stream`` (stderr) in ``log_format``.

    Called once by the server process at start-up (never by the embedded
    server, whose host program owns logging). ``level`` applies to the
    service's own loggers; other libraries log warnings and errors only, so
    that a debug level shows masterplan's detail rather than a compiler's.
    Python warnings are routed through logging too, so that a JSON log stays
    one object per line.

    Returns:
        The installed handler (it replaces the root logger's handlers).
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {log_format!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    if isinstance(level, str):
        known = logging.getLevelNamesMapping()
        if level.upper() not in known:
            raise ValueError(f"unknown log level {level!r}")
        own = known[level.upper()]
    else:
        own = level
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(own, logging.WARNING))
    logging.getLogger("masterplan").setLevel(own)
    logging.captureWarnings(True)
    return handler


def error_fields(exc: BaseException, **values: object) -> dict[str, object]:
    """:func:`fields` of a failure line: why it failed, and ``values``.

    The error funnel logs the traceback of unexpected errors; a failure line
    only has to say which call failed and why.
    """
    return fields(error=str(exc) or type(exc).__name__, error_type=type(exc).__name__, **values)
