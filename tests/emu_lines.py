"""The JSON lines an emulated board wrote, whole.

A paced console (firmware/myotone/console.py: the ESP32 writes no more than its UART's FIFO
takes) may deliver a line in pieces across two reads, as a real serial port does: a piece
waits here, on the emulator, for the rest of its line."""
import json


def json_messages(emu, strict: bool = True, garbled: list | None = None) -> list[dict]:
    """Every whole JSON line since the last call. `strict` False: a line that does not parse (a
    reset cut the line under way, and the next boot's output ran on from it, as on a serial port)
    is skipped, and kept in `garbled` when given, rather than raised."""
    data = getattr(emu, "_partial_line", b"") + emu.read()
    *lines, emu._partial_line = data.split(b"\n")
    out = []
    for line in lines:
        line = line.rstrip(b"\r")
        if line.startswith(b"{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                if strict:
                    raise
                if garbled is not None:
                    garbled.append(line)
    return out
