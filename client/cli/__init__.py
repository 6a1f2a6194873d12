"""The ``masterplan`` command line (SPEC §8).

The one place that wires the connector, the client and an embedded server
together: the client library and the connector never import each other.
"""

from masterplan.client.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
