"""The Link: request/reply matching, events kept, noise skipped, clear errors."""
import json

import pytest

from myotone.link import DeviceError, Link, LinkError


class FakeTransport:
    """Answers requests from a script; time moves only when the host waits."""

    def __init__(self, respond):
        self.respond = respond
        self.out: list[bytes] = []
        self.sent: list[dict] = []
        self.t = 0.0

    def write(self, data):
        msg = json.loads(data)
        self.sent.append(msg)
        self.out += [line.encode() for line in self.respond(msg)]

    def readline(self, timeout_s):
        if self.out:
            return self.out.pop(0)
        self.t += timeout_s
        return None

    def now_s(self):
        return self.t

    def close(self):
        pass


def test_reply_is_matched_by_id_and_events_are_kept_in_order():
    def respond(msg):
        return ['MicroPython v1.29 banner', '{"ev":"state","state":"ramp"}',
                json.dumps({"id": msg["id"] + 100, "ok": True}),      # someone else's reply
                json.dumps({"id": msg["id"], "ok": True, "x": 1}),
                '{"ev":"telemetry","measured_ua":5}']
    link = Link(FakeTransport(respond))
    assert link.request("hello")["x"] == 1
    assert link.read_message()["ev"] == "state"
    assert link.read_message()["ok"] is True
    assert link.read_message()["ev"] == "telemetry"
    assert link.read_message(timeout_s=0.1) is None
    assert "MicroPython v1.29 banner" in link.noise


def test_error_reply_raises_device_error_with_code():
    link = Link(FakeTransport(lambda m: [json.dumps({"id": m["id"], "ok": False, "error": "out_of_range",
                                                     "message": "ua must be 10..500 uA"})]))
    with pytest.raises(DeviceError) as e:
        link.request("start", ua=900)
    assert e.value.code == "out_of_range" and "10..500" in e.value.message


def test_silence_is_a_link_error_that_says_what_it_heard():
    link = Link(FakeTransport(lambda m: [">>> "]))
    with pytest.raises(LinkError, match=r"no reply to 'hello'.*>>>"):
        link.request("hello", timeout_s=0.5)


def test_no_port_and_missing_port_are_clear_errors(tmp_path):
    with pytest.raises(LinkError, match="no port"):
        Link.open("")
    with pytest.raises(LinkError, match="cannot open"):
        Link.open(str(tmp_path / "ttyNOPE"))
    with pytest.raises(LinkError, match="no board file"):
        Link.open("emu:no-such-board")


def test_ids_increase_and_requests_are_json_lines():
    t = FakeTransport(lambda m: [json.dumps({"id": m["id"], "ok": True})])
    link = Link(t)
    link.request("hello")
    link.request("status")
    assert [m["id"] for m in t.sent] == [1, 2]
    assert t.sent[1]["cmd"] == "status"


def test_follow_ignores_a_boot_idle_and_ends_when_the_session_is_done():
    from myotone.watch import follow
    script = ['{"ev":"ready"}', '{"ev":"state","state":"idle"}', '{"ev":"state","state":"ramp"}',
              '{"ev":"telemetry","state":"ramp","measured_ua":50}', '{"ev":"state","state":"run"}',
              '{"ev":"telemetry","state":"run","measured_ua":200}',
              '{"ev":"telemetry","state":"run","measured_ua":200}', '{"ev":"state","state":"done"}',
              '{"ev":"telemetry","state":"done","measured_ua":0}']
    t = FakeTransport(lambda m: [])
    t.out = [line.encode() for line in script]
    summary = follow(Link(t), heartbeat=True)
    assert summary.final_state == "done" and summary.fault is None
    assert summary.as_dict()["mean_measured_ua"] == 200
    assert sum(1 for m in t.sent if m["cmd"] == "heartbeat") >= 3    # one per telemetry line


def test_a_socket_link_closes_without_pyserials_reconnect_pause_and_the_server_takes_the_next(monkeypatch):
    """pyserial's socket:// close() sleeps 0.3 s for quick reconnects; Link closes the
    socket itself (every command would pay it on exit), and `emu serve` serves the next
    client at once."""
    from serial.urlhandler import protocol_socket

    from cli_helpers import Served
    served = Served()
    try:
        sleeps = []
        monkeypatch.setattr(protocol_socket.time, "sleep", lambda s: sleeps.append(s))
        for _ in range(3):
            link = Link.open(served.url)
            assert link.request("hello", timeout_s=10)["firmware"]
            ser = link.transport._ser
            link.close()
            assert not ser.is_open and ser._socket is None
        assert sleeps == []
        link.close()                                    # a second close is harmless
    finally:
        served.close()


class _PortWhereASignalLandsInRead:
    """A pyserial port that hands out `data` in chunks; during the read that returns
    chunk `signal_at`, a signal arrives after the bytes were received (in pyserial,
    between `recv` and `return`): the handler runs there, as CPython runs it at the
    next bytecode."""

    def __init__(self, chunks, signal_at, signum):
        self.chunks, self.signal_at, self.signum, self.reads = list(chunks), signal_at, signum, 0

    @property
    def in_waiting(self):
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, size):
        chunk = self.chunks.pop(0) if self.chunks else b""
        self.reads += 1
        if self.reads == self.signal_at + 1:
            import signal
            signal.raise_signal(self.signum)
        return chunk


@pytest.mark.parametrize("signal_at", [0, 1, 2])
def test_a_signal_while_the_port_is_read_loses_no_bytes_and_is_raised_after_them(signal_at):
    """The `myotone` command turns SIGINT/SIGTERM/SIGHUP into an exception wherever it is;
    landing inside a port read it dropped the bytes received, and the rest of that line
    then ran into the next: the clean-up's `stop` got no reply it could read (a flake of
    test_cli_interrupt's hang-up test). The signal is raised once the bytes are kept."""
    import signal

    from myotone import interrupt
    from myotone.link import SerialTransport
    lines = [b'{"ev":"tel","ua":150}\n', b'{"id":7,"ok":true}\n']
    chunks = [lines[0][:9], lines[0][9:] + lines[1][:5], lines[1][5:]]
    t = SerialTransport.__new__(SerialTransport)
    t._ser, t._buf, t.url = _PortWhereASignalLandsInRead(chunks, signal_at, signal.SIGHUP), bytearray(), "x"
    saved = {s: signal.getsignal(s) for s in interrupt.SIGNALS}
    interrupt.install()
    try:
        got = []
        with pytest.raises(interrupt.Interrupted) as raised:
            while len(got) < 2:
                line = t.readline(1.0)
                if line is not None:
                    got.append(line)
        assert raised.value.signum == signal.SIGHUP
        while len(got) < 2:                      # the clean-up goes on reading the port
            line = t.readline(1.0)
            assert line is not None, (got, t.partial())
            got.append(line)
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert got == [line[:-1] for line in lines]
