"""A loopback TCP proxy that can cut its connections, for tests of lost streams.

It stands between a client and a server as a load balancer or a flaky network
would: bytes pass both ways unchanged until the server has sent ``cut_after``
bytes in all, then every open connection is reset once. Connections made
after the cut pass again, as a client's reconnect would find them.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

__all__ = ["CuttingProxy"]


class CuttingProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; see the module's docstring.

    Attributes:
        sent: Bytes the server has sent to clients so far, all connections together.
        cut_after: Cut once ``sent`` reaches it; None never cuts.
        cuts: How many times the connections were cut.
    """

    def __init__(self, target: str, cut_after: int | None = None) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self.sent = 0
        self.cut_after = cut_after
        self.cuts = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def cut_in(self, more_bytes: int) -> None:
        """Cut once the server has sent ``more_bytes`` more bytes."""
        with self._lock:
            self.cut_after = self.sent + more_bytes

    def close(self) -> None:
        self._listener.close()
        self._reset_all()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self._target)
            with self._lock:
                self._open += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                if from_server and self._count(len(data)):
                    self._reset_all()
                    return
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def _count(self, n: int) -> bool:
        """Count bytes from the server; True when this crossing is the cut."""
        with self._lock:
            self.sent += n
            if self.cut_after is not None and self.sent >= self.cut_after:
                self.cut_after = None
                self.cuts += 1
                return True
            return False

    def _reset_all(self) -> None:
        with self._lock:
            sockets, self._open = self._open, []
        for s in sockets:
            # SO_LINGER 0: the peer sees a reset, as from a dropped connection.
            # A socket is reset when its last user lets go of it, and a pump
            # blocked in recv() holds it (closing it in another thread does
            # not wake that recv): a peer that sends nothing meanwhile, as a
            # client waiting for the engine, would never see the reset.
            # Shutting its reading down first wakes the pump, sending nothing.
            with contextlib.suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.shutdown(socket.SHUT_RD)
            with contextlib.suppress(OSError):
                s.close()
