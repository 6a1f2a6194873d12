"""masterplan: an open-source master-planning (MRP) service.

The subpackages, with the arrows between them running one way:

- :mod:`masterplan.contract` — the SPEC §4 tables and columns, resource
  names, run modes and states (numpy and the standard library only);
- :mod:`masterplan.codec` — columnar protobuf chunks to and from arrays;
- :mod:`masterplan.status` — the rich error statuses the server sends and
  the client parses (``google.rpc.Status``, bounded);
- :mod:`masterplan.v1` — the generated protobuf and gRPC stubs;
- :mod:`masterplan.server` (with the pure planning engine
  :mod:`masterplan.server.engine`), :mod:`masterplan.tenancy`,
  :mod:`masterplan.connector` and :mod:`masterplan.client` (whose
  :mod:`masterplan.client.cli` wires them together).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("masterplan")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["__version__"]
