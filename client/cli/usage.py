"""Usage errors of the command line: one line and status 2 (SPEC §8).

A script tells a mistake in its own command (status 2: a missing or
malformed option, options that go together given alone) from a failure of
the work (status 1) by the exit status, and reads the reason from the one
line ``masterplan: <reason>`` on stderr. argparse's own errors printed the
whole usage block before that line; :class:`Parser` prints the line alone,
with the command whose ``--help`` shows the usage.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["USAGE_STATUS", "Parser", "UsageError"]

#: The exit status of a usage error (argparse's, and the README's).
USAGE_STATUS = 2


class UsageError(Exception):
    """A command given wrongly: ``main`` prints ``masterplan: <reason>`` and exits 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (its subcommands' too:
    ``add_subparsers`` makes them of the parser's own class)."""

    def error(self, message: str) -> NoReturn:
        print(f"masterplan: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(USAGE_STATUS)
