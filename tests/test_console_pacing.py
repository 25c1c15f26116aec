"""The ESP32's console never holds its fast path off (docs/safety.md "The ESP32").

MicroPython's ESP32 port writes sys.stdout to the REPL UART in C, sleeping a FreeRTOS tick
whenever the 128-byte TX FIFO is full (the emulator models it: host/myotone/emulator/repl_uart.py):
a 450-byte `status` reply held every soft callback -- the ESP32's fast path among them -- ~30 ms.
The firmware's console (firmware/myotone/console.py) therefore writes no more than the FIFO
takes, from what it estimates has drained at the board's `console.tx_bytes_per_s`, and keeps the
rest for the next main-loop pass. Judged on the plant."""
import json

import pytest

from myotone.emulator.repl_uart import ReplUart
from safety_helpers import MS, Bench


def test_the_repl_uart_model_blocks_the_writer_while_the_fifo_is_full():
    u = ReplUart()
    assert u.write(0, 128) == 0                       # fits
    assert u.write(0, 1) == 10 * MS                   # full: a FreeRTOS tick, 115 bytes drained
    u2 = ReplUart()
    assert u2.write(0, 450) == 30 * MS                # 322 bytes over: three ticks
    assert u2.write(100 * MS, 128) == 0               # drained by then


@pytest.mark.parametrize("offset_ms", [0, 3, 6, 9, 12, 15, 18])
def test_over_current_on_the_esp32_is_cut_within_2_ms_while_a_reply_is_written(offset_ms):
    """A `status` reply is written while the DAC sticks high, at moments across the ~30 ms the
    unpaced write held the CPU: the cut comes within 2 ms of the onset every time."""
    b = Bench("esp32-devkit")
    try:
        b.start(ua=300, duration_s=30)
        b.run(3)
        b.run_until_bridge_on()
        b.emu.send({"id": 1, "cmd": "status"})
        b.run(offset_ms / 1000)
        late, _ = b.stuck_dac_cut_ns(0.1)
        assert late <= 2 * MS, f"cut {late / MS:.2f} ms after onset"
        assert b.faults() == ["over_current"]
    finally:
        b.close()


def test_a_session_on_the_esp32_under_traffic_never_blocks_on_the_console_and_loses_no_line():
    """20 requests a second and telemetry every 100 ms through a session: the firmware never
    writes more than the UART takes (no write blocks), and every reply and event arrives whole."""
    b = Bench("esp32-devkit")
    try:
        uart = b.emu.runtime.repl_uart
        b.start(ua=300, duration_s=8, telemetry_ms=100)
        for i in range(40):
            b.emu.send({"id": 500 + i, "cmd": "status"})
            b.run(0.05)
        b.run(9)
        assert uart.blocked == []
        ids = {m.get("id") for _, m in b.log}
        assert all(500 + i in ids for i in range(40))
        assert len([m for _, m in b.log if m.get("ev") == "telemetry"]) >= 70
        assert b.request("status")["state"] == "done" and b.faults() == []
    finally:
        b.close()


def test_a_long_request_while_the_output_is_on_is_refused_unparsed_with_its_id():
    """A 1.4 kB program_write during a session: `busy` with the request's id, without json.loads
    of the whole line (one C call of ~7 ms on the RP2040 that the ESP32's fast path would wait
    for: protocol.quick_id); short requests go on as ever, and the same line is served once the
    output is off."""
    b = Bench("esp32-devkit")
    try:
        prog = {"description": "x" * 40, "phases": [
            {"duration_s": 60, "hz": 10, "phase_us": 40000, "gap_us": 200, "alternate": True,
             "burst_on_ms": 0, "burst_off_ms": 0, "current_pct": 100, "red_pct": 0, "nir_pct": 0,
             "label": "p%d" % k} for k in range(6)]}
        line = {"id": "w-1", "cmd": "program_write", "name": "long-one", "program": prog}
        assert len(json.dumps(line)) > 1000
        b.start(ua=300, duration_s=4)
        b.run(2.5)
        b.emu.send(line)
        b.run(0.2)
        (r,) = [m for _, m in b.log if m.get("id") == "w-1"]
        assert r["error"] == "busy" and "longer than 256 bytes" in r["message"]
        assert b.request("status")["output"] == "on"
        b.run(4)
        assert b.request("status")["output"] == "off"
        b.emu.send(line)
        b.run(0.5)
        assert [m for _, m in b.log if m.get("id") == "w-1"][-1]["ok"] is True
    finally:
        b.close()


@pytest.mark.parametrize("text,rid", [(b'{"id": 7, "cmd": "x", "a": "' + b"y" * 900 + b'"}', 7),
                                      (b'{"cmd": "x", "id": "abc"}', "abc"),
                                      (b'{"cmd": "x", "a": 1}', None),
                                      (b'{"id": true, "cmd": "x"}', None),
                                      (b'{"id": ' + b"9" * 60 + b', "cmd": "x"}', None)])
def test_quick_id_reads_the_id_of_a_line_it_does_not_parse(fw, text, rid):
    assert fw("myotone.protocol").quick_id(text) == rid
