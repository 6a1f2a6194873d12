"""A failed gRPC call as a stub raises it, for the tests of what a client
makes of one (the status codec and the client's errors)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from google.rpc import status_pb2

from masterplan.status import to_grpc_status

__all__ = ["FailedCall", "failed_call"]


class FailedCall(grpc.RpcError, grpc.Call):
    """What a stub raises for a failed call: an RpcError that is also a Call."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        trailers: Sequence[tuple[str, str | bytes]] = (),
    ) -> None:
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, tuple(trailers)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._trailers

    def initial_metadata(self) -> tuple[()]:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


def failed_call(status: status_pb2.Status) -> FailedCall:
    """The error a client sees after a server aborted with ``status``, as it
    crossed the wire."""
    wire = to_grpc_status(status)
    return FailedCall(wire.code, wire.details, wire.trailing_metadata)
