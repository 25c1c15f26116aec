"""host_disconnect and power_loss, switched at a virtual time (the other faults: test_safety.py)."""
import json
import socket
import threading
import time

import pytest

from emu_repl import RawRepl
from myotone.emulator import Emulator, EmulatorError
from myotone.emulator.flash import Flash
from myotone.emulator.serve import serve_tcp
from safety_helpers import MS


def test_unknown_faults_and_options_are_refused(bench):
    with pytest.raises(EmulatorError, match="unknown fault"):
        bench.emu.set_fault("gremlins")
    with pytest.raises(EmulatorError, match="takes no options"):
        bench.emu.set_fault("vbus", in_flash_write=True)


def test_host_disconnect_in_lockstep_stops_heartbeats_and_the_session_ramps_down(bench):
    bench.start(ua=300, heartbeat=True)
    for _ in range(4):
        bench.run(1)
        bench.request("heartbeat")
    t_gone = bench.emu.clock.now_ns
    bench.emu.set_fault("host_disconnect")
    for _ in range(9):                          # the host keeps "sending": nothing arrives
        bench.emu.send({"id": 1, "cmd": "heartbeat"})
        bench.run(1)
    assert bench.emu.read() == b"" and not [m for t, m in bench.log if t > t_gone]
    cut = bench.cut_time_ns(t_gone)
    assert cut is not None and 5000 * MS < cut - t_gone <= 7000 * MS
    tr = bench.emu.plant.trace
    down = [abs(i) for t, i in zip(tr.t_ns, tr.i_ua) if cut - 1400 * MS <= t < cut and i]
    assert down and down[-1] < down[0]          # it ramped down, it did not cut at once
    bench.emu.set_fault("host_disconnect", False)
    assert bench.request("status")["fault"] == "heartbeat_lost"


def test_host_disconnect_drops_a_served_client_until_cleared():
    emu = Emulator("pico-mcp4725")
    urls = []
    emu.serve_realtime(5.0)
    threading.Thread(target=serve_tcp, args=(emu, 0), kwargs={"on_ready": urls.append}, daemon=True).start()
    try:
        while not urls:
            time.sleep(0.01)
        port = int(urls[0].rsplit(":", 1)[1])

        def hello(sock):
            sock.sendall(b'{"id": 5, "cmd": "hello"}\n')
            data = b""
            while b'"id": 5' not in data or not data.endswith(b"\n"):   # the whole reply line
                chunk = sock.recv(4096)
                if not chunk:
                    return None
                data += chunk
            return data

        def dropped(sock) -> bool:
            """Whatever was under way may still come; then the end of the stream (a socket
            still open would time out here, after 5 s, and fail the test)."""
            while sock.recv(4096):
                pass
            return True
        time.sleep(0.3)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert hello(c) is not None
        emu.set_fault("host_disconnect")
        assert dropped(c)                          # the endpoint dropped us
        c2 = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert c2.recv(4096) == b""                # and nobody answers while the fault lasts
        emu.set_fault("host_disconnect", False)
        c3 = socket.create_connection(("127.0.0.1", port), timeout=5)
        assert b'"ok": true' in hello(c3)
        for s in (c, c2, c3):
            s.close()
    finally:
        emu.close()


def test_power_loss_cuts_output_at_once_and_power_on_starts_from_scratch(bench):
    bench.start(ua=300)
    bench.run(4)
    bench.run_until_bridge_on()
    t_cut = bench.emu.clock.now_ns
    bench.emu.set_fault("power_loss")
    assert bench.emu.plant.current_ua() == 0 and bench.emu.plant.trace.current_at(t_cut) == 0
    bench.emu.send({"id": 1, "cmd": "status"})  # nobody listens
    bench.run(2)
    assert bench.emu.read() == b"" and not bench.emu.mcu.timers
    assert bench.emu.plant.trace.off_since(bench.emu.clock.now_ns) == t_cut
    bench.emu.set_fault("power_loss", False)
    bench.run(0.3)
    ready = bench.events("ready")
    assert len(ready) == 2 and ready[-1]["reset_cause"] == "power_on"
    assert bench.request("status")["state"] == "idle" and bench.output_is_safe()


def test_power_loss_inside_a_flash_write_then_power_on_from_the_surviving_image(tmp_path):
    path = tmp_path / "flash.img"
    repl = RawRepl("pico-mcp4725", fs=Flash(path, block_count=64))
    try:
        repl.exec("f = open('keep.txt', 'w'); f.write('kept'); f.close()")
        repl.emu.set_fault("power_loss", in_flash_write=True)
        assert repl.emu.mcu.powered                 # armed, not yet cut
        repl.emu.write(b"f = open('new.txt', 'w'); f.write('x' * 9000); f.close()\x04")
        repl.emu.run_for(0.1)
        assert not repl.emu.mcu.powered and not repl.emu.fs.powered
        out = repl.emu.read()
        assert b"Traceback" not in out               # the board died; it reported nothing
        repl.emu.set_fault("power_loss", False)
        repl.emu.run_for(0.1)
        assert repl.emu.mcu.powered and repl.emu.fs.powered
        repl.emu.read()
        repl.enter()
        assert repl.value("open('keep.txt').read()") == "kept"
        assert repl.value("__import__('os').listdir()") in (["keep.txt"], ["keep.txt", "new.txt"])
        assert repl.value("__import__('machine').reset_cause()") == 1     # PWRON_RESET
    finally:
        repl.close()
    # the image in the file is what survived: it mounts with the kept file
    assert Flash(path).read_file("/keep.txt") == b"kept"


def test_flash_file_keeps_the_board_between_runs(tmp_path):
    path = tmp_path / "board.img"
    with Emulator("pico-mcp4725", flash_path=path) as emu:
        emu.run_for(0.2)
        assert b'"ready"' in emu.read()                 # a new file is flashed with the firmware
        emu.fs.write_file("/marker.txt", b"still here")
    assert path.stat().st_size == 1408 * 1024
    with Emulator("pico-mcp4725", flash_path=path) as emu:
        emu.run_for(0.2)
        assert b'"ready"' in emu.read() and emu.fs.read_file("/marker.txt") == b"still here"
    assert json.loads(Flash(path).read_file("/board.json"))["name"] == "pico-mcp4725"
