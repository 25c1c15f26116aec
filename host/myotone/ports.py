"""`myotone ports`: the serial ports pyserial sees, with the ones that look
like our boards marked by their USB vendor/product IDs."""
from __future__ import annotations

# (vid, pid or None for any) -> what it probably is
KNOWN = {
    (0x2E8A, 0x0005): "RP2040 (MicroPython USB)",
    (0x10C4, 0xEA60): "ESP32 (CP210x USB-UART bridge)",
    (0x1A86, 0x7523): "ESP32 (CH340 USB-UART bridge)",
    (0x303A, None): "ESP32-S2/S3 (native USB)",
}


def guess(vid: int | None, pid: int | None) -> str | None:
    if vid is None:
        return None
    return KNOWN.get((vid, pid)) or KNOWN.get((vid, None))


def list_ports() -> list[dict]:
    """Every serial port, ours first, each with `board` (a guess) or None."""
    from serial.tools import list_ports as lp
    rows = []
    for p in lp.comports():
        rows.append({
            "device": p.device,
            "vid": p.vid, "pid": p.pid,
            "usb_id": f"{p.vid:04X}:{p.pid:04X}" if p.vid is not None and p.pid is not None else None,
            "serial_number": p.serial_number,
            "description": p.description if p.description and p.description != "n/a" else None,
            "board": guess(p.vid, p.pid),
        })
    rows.sort(key=lambda r: (r["board"] is None, r["device"]))
    return rows


def format_row(r: dict) -> str:
    mark = "*" if r["board"] else " "
    bits = [b for b in (r["usb_id"], r["board"], r["description"],
                        f"serial {r['serial_number']}" if r["serial_number"] else None) if b]
    return (f"{mark} {r['device']:<20} " + ("  ".join(bits) if bits else "(no USB ID)")).rstrip()
