"""`myotone logs`: the session logs the device keeps (list, pull, export,
delete). Device protocol (docs/protocol.md):

    {"cmd": "log_list"}           -> {"records": [{"n", "start_s", "end_s", "program", "faults", "clock_set",
                                       "incomplete" (only when true)}, ...]}
    {"cmd": "log_read", "n": 7}   -> {"record": {"n", "start_s", "end_s", "program", "setpoint_ua",
                                       "charge_uc", "avg_ua", "impedance_ohm": [...], "led_dose_j_cm2",
                                       "faults": [...], "samples": [{"t_s", "ua", "ohm", "led_pct"}, ...]}}
    {"cmd": "log_delete", "n": 7} or {"cmd": "log_delete", "all": true}

A pulled record is a JSON file (`myotone-log-0007.json`) holding the record.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from .link import Link

READ_TIMEOUT_S = 15.0          # a record with many samples is a long line
CSV_COLUMNS = ("t_s", "ua", "ohm", "led_pct")


class LogError(Exception):
    pass


def list_records(link: Link) -> list:
    return link.request("log_list")["records"]


def read_record(link: Link, n: int) -> dict:
    return link.request("log_read", n=n, timeout_s=READ_TIMEOUT_S)["record"]


def delete(link: Link, n: int | None = None, everything: bool = False) -> dict:
    if everything:
        return link.request("log_delete", all=True)
    return link.request("log_delete", n=n)


def file_name(n: int) -> str:
    return f"myotone-log-{n:04d}.json"


def pull(link: Link, numbers: list, out_dir: Path) -> list:
    """Save each record as JSON in out_dir; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    saved = []
    for n in numbers:
        rec = read_record(link, n)
        path = out_dir / file_name(n)
        tmp = path.with_suffix(".tmp")
        try:            # whole or not at all, even when interrupted
            tmp.write_text(json.dumps(rec, indent=1))
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
        saved.append(path)
    return saved


def load(path: Path) -> dict:
    """A pulled record (or a saved `log_read` reply)."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise LogError(f"no such log file: {path}") from None
    except IsADirectoryError:
        raise LogError(f"{path} is a folder, not a log file") from None
    except OSError as exc:
        raise LogError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise LogError(f"{path} is not a log (not JSON: {exc})") from None
    if isinstance(data, dict) and isinstance(data.get("record"), dict):
        data = data["record"]
    sealed(data, str(path))
    if not isinstance(data, dict) or not isinstance(data.get("samples"), list):
        raise LogError(f"{path} is not a session log (no samples)")
    return data


def sealed(rec, what: str) -> None:
    """LogError for a blinded study arm's record read without its key (no measurements)."""
    if isinstance(rec, dict) and rec.get("blinded") and "samples" not in rec:
        raise LogError(f"{what} is a blinded study arm's record ({rec.get('program')}): its measurements come "
                       "only with the study key (`myotone study unblind KEYFILE --dir DIR`)")


def fault_events(rec: dict) -> list:
    """Faults as (t_s from the session start or None, reason): the device gives bare reasons,
    and the time a fault latched in the record's marks (firmware that writes them)."""
    latched = {m.get("reason"): m["t_ms"] / 1000 for m in reversed(rec.get("marks") or [])
               if isinstance(m, dict) and m.get("mark") == "fault" and isinstance(m.get("t_ms"), (int, float))}
    out = []
    for f in rec.get("faults") or []:
        if isinstance(f, dict):
            out.append((f.get("t_s"), str(f.get("reason", f.get("fault", "fault")))))
        else:
            out.append((latched.get(f), str(f)))
    return out


def to_csv(rec: dict) -> str:
    """Samples as CSV (t_s, ua, ohm, led_pct), with the faults in a last column at their sample."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS + ("fault",))
    faults = fault_events(rec)
    samples = rec["samples"]
    at: dict = {}
    for t, reason in faults:
        if t is None and samples:
            k = len(samples) - 1
        else:
            k = min(range(len(samples)), key=lambda i: abs(samples[i].get("t_s", 0) - t), default=None)
        if k is not None:
            at.setdefault(k, []).append(reason)
    for i, s in enumerate(samples):
        w.writerow([s.get(c, "") for c in CSV_COLUMNS] + [";".join(at.get(i, []))])
    return buf.getvalue()


def when(seconds, zone: bool = False) -> str:
    """A start time: a date when it looks like one (epoch; `zone`: with the time zone's name),
    else seconds since boot."""
    if isinstance(seconds, (int, float)) and seconds > 1e9:
        return time.strftime("%Y-%m-%d %H:%M" + (" %Z" if zone else ""), time.localtime(seconds))
    return f"t={seconds} s"


INCOMPLETE = ("incomplete: the device lost power or reset during this session (or it is still running); "
              "the record holds it up to its last checkpoint, at most a minute before")
CLOCK_UNSET = ("clock not set: the device's clock was never set when it wrote this record, so its start is "
               "no real date (its length is right); `myotone clock set` sets it")


def format_list(records: list) -> str:
    if not records:
        return "no session logs on the device"
    lines = ["   n  start              length  program   faults"]
    notes = []
    for r in records:
        length = (r.get("end_s") or 0) - (r.get("start_s") or 0)
        faults = ", ".join(reason for _, reason in fault_events(r)) or "-"
        start = "clock not set" if r.get("clock_set") is False else when(r.get("start_s"))
        line = f"{r['n']:>4}  {start:<17}  {length:>5} s  {r.get('program', '?'):<8}  {faults}"
        if r.get("incomplete"):
            line += "  (incomplete)"
            notes.append(INCOMPLETE)
        if r.get("clock_set") is False:
            notes.append(CLOCK_UNSET)
        lines.append(line)
    lines += sorted(set(notes), key=notes.index)
    return "\n".join(lines)
