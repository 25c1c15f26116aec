"""A `Uart` served on a TCP socket, for `mpremote connect socket://HOST:PORT`.

One client at a time, like a serial port; the device keeps running between
connections and what it writes while nobody is connected is dropped (as a
USB CDC port with no host). The receive side and the interrupt character:
`UartEnd`.
"""

from __future__ import annotations

import socket
import threading

from .uart_end import UartEnd


class TcpUart(UartEnd):
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__()
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.2)  # so close() is noticed by the accept loop
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="tcp-uart", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self.address
        return "socket://%s:%d" % (host, port)

    # -- Uart ----------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        with self._lock:
            client = self._client
        if client is None:
            return
        try:
            client.sendall(data)
        except OSError:
            pass

    # -- serving ---------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            client.settimeout(None)
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._client = client
            try:
                while data := client.recv(4096):
                    self._received(data)
            except OSError:
                pass
            with self._lock:
                self._client = None
            client.close()

    def close(self) -> None:
        self._closing()
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.close()
        self._thread.join(timeout=5)
