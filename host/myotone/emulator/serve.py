"""Serial endpoint: the emulator behind a TCP socket or a pty, so that pyserial,
mpremote and the myotone host open it exactly as they open a board."""
from __future__ import annotations

import os
import socket
import threading


def serve_tcp(emu, port: int = 0, host: str = "127.0.0.1", on_ready=None) -> None:
    """Serve one client at a time on host:port until the emulator stops."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(1)
    srv.settimeout(0.2)
    url = f"socket://{host}:{srv.getsockname()[1]}"
    if on_ready:
        on_ready(url)
    try:
        while not emu.clock.stopped:
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            if not emu.host_can_connect():      # host_disconnect / power_loss: nobody answers
                conn.close()
                continue
            _bridge_socket(emu, conn)
    finally:
        srv.close()


def _bridge_socket(emu, conn: socket.socket) -> None:
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    lock = threading.Lock()

    def to_host(data: bytes) -> None:
        with lock:
            try:
                conn.sendall(data)
            except OSError:
                pass
    dropped = []

    def drop() -> None:                # fault host_disconnect or power_loss: the link goes
        dropped.append(True)
        try:
            conn.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    emu.read()                         # what nobody was connected to hear is gone, as on USB
    emu.console.listeners.append(to_host)
    emu.faults.disconnect_hooks.append(drop)
    conn.settimeout(0.2)
    try:
        while not emu.clock.stopped and not dropped:
            _ack_now(conn)
            try:
                data = conn.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            _ack_now(conn)
            emu.write(data)
    finally:
        emu.console.listeners.remove(to_host)
        emu.faults.disconnect_hooks.remove(drop)
        conn.close()


def _ack_now(conn: socket.socket) -> None:
    """Acknowledge at once (Linux re-arms delayed ACKs after every receive). A host that
    writes a command and then its Ctrl-D in two small writes, as mpremote's raw REPL
    does, has Nagle's algorithm hold the second until the first is acknowledged: with
    the usual 40 ms delayed ACK, every command would wait 40 ms."""
    if hasattr(socket, "TCP_QUICKACK"):
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


def serve_pty(emu, on_ready=None) -> None:
    """Serve on a pseudo-terminal; its path is what pyserial opens."""
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    emu.console.listeners.append(lambda data: os.write(master, data))
    if on_ready:
        on_ready(path)
    import select
    while not emu.clock.stopped:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                data = os.read(master, 4096)
            except OSError:
                continue
            if data:
                emu.write(data)
