"""A `Uart` served on a TCP socket, for `mpremote connect socket://HOST:PORT`.

One client at a time, like a serial port; the device keeps running between
connections and what it writes while nobody is connected is dropped (as a
USB CDC port with no host). While an interrupt character is set (MicroPython
sets Ctrl-C while it runs code, `mp_hal_set_interrupt_char`), that byte is
not queued but raises the interrupt flag, as the board's RX interrupt does.
"""

from __future__ import annotations

import queue
import socket
import threading


class TcpUart:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self._server = socket.create_server((host, port))
        self._server.settimeout(0.2)  # so close() is noticed by the accept loop
        self._rx: queue.Queue[int | None] = queue.Queue()
        self._client: socket.socket | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.interrupt_char = -1
        self.interrupted = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="tcp-uart", daemon=True)
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.getsockname()[:2]

    @property
    def url(self) -> str:
        host, port = self.address
        return "socket://%s:%d" % (host, port)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- Uart ----------------------------------------------------------------------
    def read_byte(self) -> int | None:
        return None if self._closed else self._rx.get()

    def write(self, data: bytes) -> None:
        with self._lock:
            client = self._client
        if client is None:
            return
        try:
            client.sendall(data)
        except OSError:
            pass

    # -- interrupt character ----------------------------------------------------------
    def set_interrupt_char(self, char: int) -> None:
        """-1 disables; otherwise that byte sets `interrupted` instead of queuing."""
        self.interrupt_char = char

    def take_interrupt(self) -> bool:
        """True once per received interrupt character."""
        if self.interrupted.is_set():
            self.interrupted.clear()
            return True
        return False

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
                    for byte in data:
                        if byte == self.interrupt_char:
                            self.interrupted.set()
                        else:
                            self._rx.put(byte)
            except OSError:
                pass
            with self._lock:
                self._client = None
            client.close()

    def close(self) -> None:
        self._closed = True
        self._rx.put(None)
        with self._lock:
            client = self._client
        if client is not None:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._server.close()
        self._thread.join(timeout=5)
