"""`logs list|pull|export|delete` and `plot` against a fake device speaking the
logs protocol (the device side is another issue), and `ports`."""
import csv
import io
import json

import pytest

from click.testing import CliRunner

from cli_helpers import cli, one_line_error
from myotone.cli import main
from myotone import link as link_mod
from myotone import logs


def make_record(n, faults=()):
    samples = [{"t_s": t, "ua": min(200, 10 + t * 50) if t < 40 else 0, "ohm": 9800 + 10 * t,
                "led_pct": 0 if t < 5 else 60} for t in range(0, 46)]
    return {"n": n, "start_s": 1_790_000_000 + n * 3600, "end_s": 1_790_000_000 + n * 3600 + 45,
            "program": "lift", "setpoint_ua": 200, "charge_uc": 7200.0, "avg_ua": 160.0,
            "impedance_ohm": [9800, 10250], "led_dose_j_cm2": 1.2, "faults": list(faults), "samples": samples}


class FakeDevice:
    """A transport answering log_list / log_read / log_delete as the protocol says."""

    def __init__(self):
        self.records = {7: make_record(7), 8: make_record(8, faults=[{"t_s": 40, "reason": "contact_lost"}]),
                        9: make_record(9, faults=["heartbeat_lost"])}
        self.out = []
        self.t = 0.0

    def write(self, data):
        for line in data.splitlines():
            if line.strip():
                self.out.append(json.dumps(self.answer(json.loads(line))).encode())

    def answer(self, msg):
        rid, cmd = msg.get("id"), msg.get("cmd")
        if cmd == "log_list":
            return {"id": rid, "ok": True, "records": [
                {k: r[k] for k in ("n", "start_s", "end_s", "program", "faults", "clock_set", "incomplete") if k in r}
                for r in self.records.values()]}
        if cmd == "log_read":
            if msg["n"] not in self.records:
                return {"id": rid, "ok": False, "error": "out_of_range", "message": "no log %d" % msg["n"]}
            return {"id": rid, "ok": True, "record": self.records[msg["n"]]}
        if cmd == "log_delete":
            if msg.get("all"):
                self.records.clear()
            else:
                self.records.pop(msg["n"], None)
            return {"id": rid, "ok": True}
        return {"id": rid, "ok": False, "error": "unknown_cmd", "message": "unknown command " + str(cmd)}

    def readline(self, timeout_s):
        if self.out:
            return self.out.pop(0)
        self.t += timeout_s
        return None

    def now_s(self):
        return self.t

    def close(self):
        pass


@pytest.fixture
def device(monkeypatch):
    dev = FakeDevice()
    real = link_mod.open_transport
    monkeypatch.setattr(link_mod, "open_transport", lambda port: dev if port == "fake" else real(port))
    return dev


def test_logs_list_text_and_json(device):
    r = cli("logs", "list", "--port", "fake")
    assert r.exit_code == 0, r.output
    assert "lift" in r.stdout and "contact_lost" in r.stdout and "heartbeat_lost" in r.stdout
    assert r.stdout.splitlines()[1].split()[0] == "7"
    r = cli("logs", "list", "--port", "fake", "--json")
    assert [x["n"] for x in json.loads(r.stdout)["records"]] == [7, 8, 9]


def test_logs_list_says_what_an_incomplete_record_and_an_unset_clock_mean(device):
    device.records[10] = {**make_record(10), "incomplete": True, "clock_set": False, "start_s": 1_609_459_200,
                          "end_s": 1_609_459_320}
    r = cli("logs", "list", "--port", "fake")
    assert r.exit_code == 0, r.output
    row = next(line for line in r.stdout.splitlines() if line.split()[:1] == ["10"])
    assert "(incomplete)" in row and "clock not set" in row and "2021" not in row and "120 s" in row
    assert "incomplete: the device lost power or reset during this session" in r.stdout
    assert "clock not set: the device's clock was never set" in r.stdout
    assert r.stdout.count("(incomplete)") == 1 and r.stdout.count("incomplete: the device") == 1


def test_logs_pull_export_and_delete(device, tmp_path):
    r = cli("logs", "pull", "--all", "--dir", str(tmp_path), "--port", "fake")
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == ["myotone-log-0007.json", "myotone-log-0008.json", "myotone-log-0009.json"]
    assert logs.load(tmp_path / "myotone-log-0008.json")["faults"][0]["reason"] == "contact_lost"

    out = tmp_path / "log8.csv"
    r = cli("logs", "export", str(tmp_path / "myotone-log-0008.json"), "--csv", str(out))
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 46 and rows[0].keys() == {"t_s", "ua", "ohm", "led_pct", "fault"}
    assert rows[40]["fault"] == "contact_lost" and rows[3]["ua"] == "160"
    r = cli("logs", "export", "9", "--port", "fake")             # straight from the device, to stdout
    assert r.stdout.splitlines()[-1].endswith(",heartbeat_lost")

    one_line_error(cli("logs", "export", "42", "--port", "fake"), "device refused: out_of_range", "no log 42")
    one_line_error(cli("logs", "export", str(tmp_path / "nothing.json")), "no such log file")

    r = cli("logs", "delete", "7", "--port", "fake")
    assert r.exit_code == 0 and 7 not in device.records
    r = cli("logs", "delete", "--all", "--port", "fake", input="n\n")
    assert r.exit_code == 1 and device.records                 # asked, and the answer was no
    r = cli("logs", "delete", "--all", "--yes", "--port", "fake")
    assert r.exit_code == 0 and not device.records


def test_plot_writes_a_readable_png(device, tmp_path):
    png = tmp_path / "log8.png"
    r = cli("plot", "8", "--port", "fake", "--out", str(png))
    assert r.exit_code == 0, r.output
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    import matplotlib.image as mpimg
    img = mpimg.imread(str(png))
    assert img.shape[0] > 600 and img.shape[1] > 900
    # the fault marker is drawn: crimson pixels exist
    red = ((img[..., 0] > 0.75) & (img[..., 1] < 0.2) & (img[..., 2] < 0.3)).sum()
    assert red > 200
    src = tmp_path / "plain.json"
    src.write_text(json.dumps(make_record(3)))
    r = cli("plot", str(src), "--out", str(tmp_path / "plain.png"), "--json")
    assert json.loads(r.stdout)["out"].endswith("plain.png")
    img = mpimg.imread(str(tmp_path / "plain.png"))            # no fault: no marker
    assert ((img[..., 0] > 0.75) & (img[..., 1] < 0.2) & (img[..., 2] < 0.3)).sum() == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"n": 1}')
    one_line_error(cli("plot", str(bad), "--out", str(tmp_path / "x.png")), "not a session log")


def test_ports_marks_our_boards(monkeypatch):
    from serial.tools import list_ports_common
    from serial.tools import list_ports as lp

    def port(dev, vid=None, pid=None, desc="n/a", sn=None):
        p = list_ports_common.ListPortInfo(dev, skip_link_detection=True)
        p.vid, p.pid, p.description, p.serial_number = vid, pid, desc, sn
        return p
    fake = [port("/dev/ttyS0"), port("/dev/ttyACM0", 0x2E8A, 0x0005, "Board in FS mode", "E6614103"),
            port("/dev/ttyUSB0", 0x10C4, 0xEA60, "CP2102 USB to UART"), port("/dev/ttyUSB1", 0x1A86, 0x7523),
            port("/dev/ttyACM1", 0x303A, 0x1001, "USB JTAG/serial"), port("/dev/ttyUSB2", 0x0403, 0x6001, "FT232R")]
    monkeypatch.setattr(lp, "comports", lambda: fake)
    r = cli("ports")
    lines = r.stdout.splitlines()
    marked = [ln.split()[1] for ln in lines if ln.startswith("*")]
    assert marked == ["/dev/ttyACM0", "/dev/ttyACM1", "/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert "2E8A:0005" in r.stdout and "RP2040" in r.stdout and "serial E6614103" in r.stdout
    rows = json.loads(cli("ports", "--json").stdout)["ports"]
    by_dev = {p["device"]: p["board"] for p in rows}
    assert by_dev["/dev/ttyUSB2"] is None and by_dev["/dev/ttyS0"] is None
    assert "ESP32-S2/S3" in by_dev["/dev/ttyACM1"] and "CH340" in by_dev["/dev/ttyUSB1"]


def test_logs_against_the_real_firmware_on_a_served_emulator(tmp_path):
    """The same commands against the firmware's own session log (not a fake device)."""
    import subprocess
    import sys
    proc = subprocess.Popen([sys.executable, "-m", "myotone", "emu", "serve", "--tcp", "0", "--speed", "20"],
                            stdout=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline().split()[1]
        r = CliRunner().invoke(main, ["session", "start", "--port", url, "--program", "lift", "--ua", "200",
                                      "--duration-s", "4", "--watch", "--json"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["logs", "list", "--port", url, "--json"])
        assert r.exit_code == 0, r.output
        records = json.loads(r.output)
        records = records.get("records", records) if isinstance(records, dict) else records
        assert len(records) == 1 and records[0]["program"] == "lift"
        out = tmp_path / "logs"
        out.mkdir()
        r = CliRunner().invoke(main, ["logs", "pull", "--all", "--port", url, "--dir", str(out)])
        assert r.exit_code == 0, r.output
        pulled = list(out.glob("*.json"))
        assert len(pulled) == 1
        rec = json.loads(pulled[0].read_text())
        assert rec["program"] == "lift" and rec["charge_uc"] > 0 and 50 < rec["avg_ua"] <= 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
