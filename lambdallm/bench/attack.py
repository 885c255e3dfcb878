"""Issue 18's attack on the REST tier: unauthenticated connections that try to hold what key holders need, in
equal thirds: header blocks trickled a byte at a time, Swagger UI downloads pipelined and never read, and bodies
that stall. The bench measures a key holder's latency under it; tests/rest/test_attack.py checks the answers."""

from __future__ import annotations

import contextlib
import socket
import threading

STATIC = b"GET /ui/swagger-ui-bundle.js HTTP/1.1\r\nHost: x\r\n\r\n" * 20  # about 28 MB of answers, never read
STALLED = b"POST /query HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n"
_TCP_ESTABLISHED = 1


class Attack:
    """`connections` attackers on 127.0.0.1:`port`; a thread trickles a header byte every half second and opens
    a new connection for each one the tier closed, so the attack lasts until `stop()` whatever the timeouts."""

    def __init__(self, port: int, connections: int = 200) -> None:
        self.port = port
        self.kinds = [(SLOW_HEAD, None), (STATIC, 4096), (STALLED, None)] * (connections // 3 + 1)
        self.kinds = self.kinds[:connections]
        self.socks: list[socket.socket | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._keep_up, name="attack", daemon=True)

    def start(self) -> None:
        """Open every connection, then keep them up in the background."""
        self.socks = [self._open(index) for index in range(len(self.kinds))]
        self._thread.start()

    def stop(self) -> None:
        """End the attack and close its connections."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        for sock in self.socks:
            if sock is not None:
                sock.close()

    def _open(self, index: int) -> socket.socket | None:
        opening, rcvbuf = self.kinds[index]
        sock = socket.socket()
        try:
            if rcvbuf:  # a reader that takes next to nothing
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            sock.settimeout(5)
            sock.connect(("127.0.0.1", self.port))
            sock.sendall(opening)
        except OSError:
            sock.close()
            return None
        return sock

    def _keep_up(self) -> None:
        while not self._stop.wait(0.5):
            for index, sock in enumerate(self.socks):
                if sock is not None and _established(sock):
                    if self.kinds[index][0] is SLOW_HEAD:
                        with contextlib.suppress(OSError):
                            sock.send(b"X")
                    continue
                if sock is not None:
                    sock.close()
                self.socks[index] = self._open(index)


def _established(sock: socket.socket) -> bool:
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] == _TCP_ESTABLISHED
    except OSError:
        return False
