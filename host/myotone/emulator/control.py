"""The emulator's side channel: set the plant's load, faults and unit tolerances
of a served emulator (`myotone emu serve`) from the host, and read its truth.

This is a bench power supply and a box of resistors, not a device command:
it exists only beside an emulator, on its own TCP port, so nothing that
talks to a real board can change physics. JSON lines:

    {"op": "set_load", "r_series_ohm": 500, "r_parallel_ohm": 0}  -> {"ok": true}
    {"op": "set_fault", "name": "electrode_off", "active": true}   -> {"ok": true, "now_s": 12.5}
    {"op": "set_plant", "dac_gain": 0.95, "sense_gain": 1.02}       -> {"ok": true}
    {"op": "plant"}   -> {"ok": true, "dac_code": 0, "hv_on": 0, "max_abs_ua": 0.0, ...}
    {"op": "now"}     -> {"ok": true, "now_s": 12.5}          (the board's simulated time)
    {"op": "capture", "since_s": 10.0} -> {"ok": true, "t_s": [...], "i_ua": [...], "end_s": 12.5}
    {"op": "cut", "after_s": 10.0}     -> {"ok": true, "t_s": 10.0019}   (HV enable falling; null: none)
    {"op": "drive", "after_s": 10.0}   -> {"ok": true, "t_s": 10.0181}   (the bridge driving; null: not since)
    {"op": "output_safe"}              -> {"ok": true, "safe": true}

These make a served board (either tier) its own measuring and fault rig for the HIL
suite, in its simulated time (`myotone hil --port URL --control URL`).

Changes run on the emulated CPU's thread, between two of its steps.
"""
from __future__ import annotations

import json
import queue
import socket
import threading

from .bench import NS, PlantRig, cut_ns

PLANT_FIELDS = ("dac_gain", "sense_gain", "skin_temp_c")


class _OnCpu:
    """A clock check hook that runs queued calls on the CPU thread."""

    def __init__(self, emu):
        self.emu = emu
        self.calls: queue.Queue = queue.Queue()

    def pending(self) -> bool:
        return not self.calls.empty()

    def __call__(self) -> None:
        while not self.calls.empty():
            fn, box, done = self.calls.get_nowait()
            try:
                box["result"] = fn()
            except Exception as exc:   # noqa: BLE001 - reported to the control client
                box["error"] = str(exc)
            done.set()

    def run(self, fn, timeout_s: float = 5.0):
        box: dict = {}
        done = threading.Event()
        self.calls.put((fn, box, done))
        self.emu.clock.notify()
        if not done.wait(timeout_s):
            raise TimeoutError("the emulated CPU did not take the change")
        if "error" in box:
            raise ValueError(box["error"])
        return box.get("result")


def _plant_state(emu) -> dict:
    p = emu.plant
    load = p.load
    return {"now_s": emu.now_s, "dac_code": p.dac_code, "hv_on": p.hv_on, "bridge_a": p.bridge_a,
            "bridge_b": p.bridge_b, "max_abs_ua": p.trace.max_abs_ua, "current_ua": p.current_ua(),
            "load": {"r_series_ohm": load.r_series_ohm, "r_parallel_ohm": load.r_parallel_ohm,
                     "c_parallel_nf": load.c_parallel_nf, "contact": load.contact},
            **{k: getattr(p, k) for k in PLANT_FIELDS}}


def _set_plant(emu, values: dict) -> None:
    for k, v in values.items():
        if k not in PLANT_FIELDS:
            raise ValueError(f"unknown plant field {k!r} (known: {', '.join(PLANT_FIELDS)})")
        setattr(emu.plant, k, float(v))
    emu.plant.changed(emu.clock.now_ns)


def _capture(emu, since_s: float) -> dict:
    c = PlantRig(emu).capture(since_s)
    return {"t_s": c.t_s, "i_ua": c.i_ua, "end_s": c.end_s}


def _cut(emu, after_s: float) -> dict:
    t = cut_ns(emu, int(after_s * NS))
    return {"t_s": None if t is None else t / NS}


def handle(emu, oncpu: _OnCpu, msg: dict) -> dict:
    op = msg.pop("op", None)
    try:
        if op == "now":
            return {"ok": True, "now_s": oncpu.run(lambda: emu.now_s)}
        if op == "capture":
            return {"ok": True, **oncpu.run(lambda: _capture(emu, float(msg["since_s"])))}
        if op == "cut":
            return {"ok": True, **oncpu.run(lambda: _cut(emu, float(msg["after_s"])))}
        if op == "drive":
            return {"ok": True, "t_s": oncpu.run(lambda: PlantRig(emu).drive_s(float(msg["after_s"])))}
        if op == "output_safe":
            return {"ok": True, "safe": oncpu.run(emu.output_is_safe)}
        if op == "set_load":
            oncpu.run(lambda: emu.set_load(**msg))
        elif op == "set_fault":       # the reply says when it took effect, in the board's time
            def switch():
                emu.set_fault(msg["name"], bool(msg.get("active", True)))
                return emu.now_s
            return {"ok": True, "now_s": oncpu.run(switch)}
        elif op == "set_plant":
            oncpu.run(lambda: _set_plant(emu, msg))
        elif op == "plant":
            return {"ok": True, **oncpu.run(lambda: _plant_state(emu))}
        else:
            return {"ok": False, "error": f"unknown op {op!r}"}
    except (ValueError, KeyError, TypeError, TimeoutError) as exc:
        return {"ok": False, "error": str(exc)}
    return {"ok": True}


def serve_control(emu, port: int = 0, host: str = "127.0.0.1") -> str:
    """Start the side channel in a daemon thread; return its URL (tcp://HOST:PORT)."""
    oncpu = _OnCpu(emu)
    emu.clock.check_hooks.append(oncpu)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, port))
    srv.listen(4)
    srv.settimeout(0.2)

    def client(conn):
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    msg = json.loads(line)
                    reply = handle(emu, oncpu, msg) if isinstance(msg, dict) else {"ok": False, "error": "not an object"}
                except ValueError:
                    reply = {"ok": False, "error": "not JSON"}
                f.write(json.dumps(reply).encode() + b"\n")
                f.flush()

    def accept():
        with srv:
            while not emu.clock.stopped:
                try:
                    conn, _ = srv.accept()
                except socket.timeout:
                    continue
                threading.Thread(target=client, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, name="emu-control", daemon=True).start()
    return f"tcp://{host}:{srv.getsockname()[1]}"


class ControlClient:
    """The host side of the side channel."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        if not url.startswith("tcp://"):
            raise ValueError(f"not an emulator control URL: {url!r} (expected tcp://HOST:PORT)")
        host, _, port = url[len("tcp://"):].rpartition(":")
        self.url = url
        self._sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        self._f = self._sock.makefile("rwb")

    def request(self, op: str, **args) -> dict:
        self._f.write(json.dumps({"op": op, **args}).encode() + b"\n")
        self._f.flush()
        reply = json.loads(self._f.readline())
        if not reply.get("ok"):
            raise ValueError(f"emulator control: {reply.get('error')}")
        return reply

    def set_load(self, **values) -> None:
        self.request("set_load", **values)

    def set_fault(self, name: str, active: bool = True) -> float:
        """Switch a fault; the board's time when it took effect."""
        return self.request("set_fault", name=name, active=active)["now_s"]

    def set_plant(self, **values) -> None:
        self.request("set_plant", **values)

    def plant(self) -> dict:
        return self.request("plant")

    def now_s(self) -> float:
        return self.request("now")["now_s"]

    def close(self) -> None:
        self._f.close()
        self._sock.close()
