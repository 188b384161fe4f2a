"""A raw-socket HTTP server that answers badly on purpose, for the client's fault tests.

Each connection reads one request and plays a script: a list of byte chunks to
send (with optional pauses), then either a clean close or a reset (RST). It runs
on 127.0.0.1 in a thread and counts the requests it saw.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Script:
    """What the server sends for every request."""

    chunks: list[bytes]
    pause: float = 0.0  # seconds between chunks
    reset: bool = False  # end with a TCP reset instead of a clean close


def answer(
    status: str, body: bytes, *, content_type: str = "application/json", **headers: str
) -> bytes:
    """A whole HTTP/1.1 answer as bytes."""
    lines = [f"HTTP/1.1 {status}", f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@dataclass
class HostileServer:
    """Plays ``script`` for every request, or ``by_method[method]`` where one is given."""

    script: Script
    by_method: dict[str, Script] = field(default_factory=dict)
    requests: list[bytes] = field(default_factory=list)
    url: str = ""

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _handle(self, connection: socket.socket) -> None:
        with connection:
            request = _read_request(connection)
            self.requests.append(request)
            method = request.split(b" ", 1)[0].decode(errors="replace")
            script = self.by_method.get(method, self.script)
            try:
                for number, chunk in enumerate(script.chunks):
                    if number and script.pause:
                        time.sleep(script.pause)
                    connection.sendall(chunk)
            except OSError:
                return
            if script.reset:
                connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _read_request(connection: socket.socket) -> bytes:
    connection.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        piece = connection.recv(65536)
        if not piece:
            return data
        data += piece
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    while len(body) < length:
        piece = connection.recv(65536)
        if not piece:
            break
        body += piece
    return head


@contextmanager
def hostile_server(script: Script, **by_method: Script) -> Iterator[HostileServer]:
    """Run a :class:`HostileServer` for the block; ``.url`` ends in ``/api``."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    server = HostileServer(script, by_method, url=f"http://127.0.0.1:{port}/api")
    thread = threading.Thread(target=server.serve, args=(listener,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
        thread.join(timeout=5)


@contextmanager
def unaccepting_listener() -> Iterator[str]:
    """A port whose accept queue is full, so that a new connect hangs; yields its ``/api`` URL.

    Linux drops a SYN when the listener's queue is full, so the connecting side
    waits for its own timeout: the way a firewall that drops packets behaves.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.1)  # let the handshakes of the fillers fill the queue
    try:
        yield f"http://127.0.0.1:{port}/api"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@contextmanager
def deaf_server() -> Iterator[str]:
    """A server that accepts connections and never reads from them; yields its ``/api`` URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api"
    finally:
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join(timeout=5)
        for connection in held:
            connection.close()
