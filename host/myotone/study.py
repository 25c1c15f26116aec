"""Blinded studies: the arms of a study stored on the device under coded names, and the
key file, on the host only, that maps the codes back (docs/guide.md#blinded-studies).

The device shows of a blinded arm only what its arms share (docs/protocol.md#blinded-study-arms):
its code, the setpoint asked for, its length, its light, temperature and faults; never its
phases, its current or its records' measurements, which `log_read` gives only with the
study's token. What the device cannot hide is what the wearer and the clock perceive, so
`create` refuses arms whose length or light differ, unless told that the study accepts it.
"""
from __future__ import annotations

import datetime
import json
import os
import re
import secrets
from pathlib import Path

from .link import DeviceError, Link

KEY_FORMAT = "myotone-study-key/1"
_LABEL = re.compile(r"[A-Za-z0-9]{1,8}$")
_CODE = re.compile(r"[a-z0-9_-]{1,16}$")


class StudyError(Exception):
    """A study that cannot be made or opened as asked: one line for the user."""


def parse_arm(text: str) -> tuple[str, str]:
    """`A=sham` -> ("A", "sham")."""
    label, sep, program = text.partition("=")
    if not sep or not _LABEL.match(label) or not program:
        raise StudyError(f"--arm {text!r}: give LABEL=PROGRAM, LABEL 1-8 letters or digits (e.g. A=sham)")
    return label, program


def code_for(prefix: str, label: str) -> str:
    code = f"{prefix}-{label.lower()}"
    if not _CODE.match(code):
        raise StudyError(f"the coded name {code!r} is not a program name (a-z, 0-9, _ and -, at most 16)")
    return code


def perceived(program: dict) -> dict:
    """What a wearer or an operator perceives of an arm without the key: its length and its
    light over time (runs of equal red / NIR %). Current is not in it: the device hides it,
    and whether the wearer feels it is the study's to judge (docs/guide.md)."""
    light: list[list[int]] = []
    for ph in program["phases"]:
        red, nir, s = ph.get("red_pct", 0), ph.get("nir_pct", 0), ph["duration_s"]
        if light and light[-1][1:] == [red, nir]:
            light[-1][0] += s
        else:
            light.append([s, red, nir])
    return {"duration_s": sum(ph["duration_s"] for ph in program["phases"]), "light": light}


def mismatches(definitions: dict) -> list[str]:
    """How the arms differ in what is perceived (empty: they do not)."""
    seen = {label: perceived(p) for label, p in definitions.items()}
    out = []
    first, ref = next(iter(seen.items()))
    for label, p in seen.items():
        if p["duration_s"] != ref["duration_s"]:
            out.append(f"arm {label} lasts {p['duration_s']} s, arm {first} {ref['duration_s']} s")
        if p["light"] != ref["light"]:
            out.append(f"arm {label}'s light (s, red %, NIR %) {p['light']} differs from arm {first}'s {ref['light']}")
    return out


def create(link: Link, key_path: Path, arms: list[tuple[str, str]], prefix: str = "study",
           allow_mismatch: bool = False) -> dict:
    """Write the key file, then each arm as a blinded user program; returns the key."""
    if len(arms) < 2:
        raise StudyError("a blinded study needs at least two arms (--arm A=sham --arm B=sculpt)")
    if len({label.lower() for label, _ in arms}) != len(arms):
        raise StudyError("two arms have the same label")
    if key_path.exists():
        raise StudyError(f"{key_path} exists: a study key is never overwritten (it is the only way to unblind)")
    names = {p["name"] for p in link.request("programs")["programs"]}
    definitions, rows = {}, []
    for label, program in arms:
        code = code_for(prefix, label)
        if code in names:
            raise StudyError(f"the device already has a program {code!r}: choose another --prefix, or delete it")
        try:
            p = link.request("program_read", name=program)["program"]
        except DeviceError as exc:
            raise StudyError(f"arm {label}: the device has no program {program!r} ({exc.message})") from exc
        if p.get("blinded"):
            raise StudyError(f"arm {label}: {program} is itself a blinded arm of a study")
        definitions[label] = {"description": p["description"], "phases": p["phases"]}
        rows.append({"arm": label, "code": code, "program": program, "definition": definitions[label]})
    differ = mismatches(definitions)
    if differ and not allow_mismatch:
        raise StudyError("the arms can be told apart without the key: " + "; ".join(differ)
                         + " (pair sham with sculpt, or give --allow-mismatch if the study accepts it)")
    hello = link.request("hello")
    key = {"format": KEY_FORMAT, "study": secrets.token_hex(6),
           "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "board": hello.get("board"), "firmware": hello.get("firmware"), "arms": rows,
           "perceivable_differences": differ}
    with open(key_path, "x", encoding="utf-8") as f:     # never over an existing key
        json.dump(key, f, indent=1)
    written = []
    try:
        for row in rows:
            link.request("program_write", name=row["code"], program={
                "description": "blinded study arm", "phases": row["definition"]["phases"], "study": key["study"]})
            written.append(row["code"])
    except BaseException:            # refused or interrupted: no half study on the device, no key for it
        for code in written:
            try:
                link.request("program_delete", name=code)
            except (DeviceError, OSError):
                pass
        os.unlink(key_path)
        raise
    return key


def load_key(path: Path) -> dict:
    try:
        key = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise StudyError(f"{path} is not a study key (not JSON: {exc})") from None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT or not isinstance(key.get("arms"), list):
        raise StudyError(f"{path} is not a study key ({KEY_FORMAT})")
    return key


def unblind(link: Link, key: dict, out_dir: Path | None = None) -> dict:
    """The arms by code, and every record of them on the device in full (the study's token
    opens them); with out_dir, each record saved there with its arm and program."""
    from .logs import READ_TIMEOUT_S, file_name
    by_code = {row["code"]: row for row in key["arms"]}
    records = []
    for head in link.request("log_list")["records"]:
        row = by_code.get(head.get("program"))
        if row is None or not head.get("blinded"):
            continue
        rec = link.request("log_read", n=head["n"], study=key["study"], timeout_s=READ_TIMEOUT_S)["record"]
        if rec.get("study") != key["study"]:
            continue                 # the same code in another study
        rec = {**rec, "arm": row["arm"], "arm_program": row["program"]}
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            path = out_dir / file_name(head["n"])
            tmp = path.with_suffix(".tmp")
            try:
                tmp.write_text(json.dumps(rec, indent=1))
                tmp.replace(path)
            finally:
                tmp.unlink(missing_ok=True)
        records.append(rec)
    return {"study": key["study"], "arms": [{k: row[k] for k in ("arm", "code", "program")} for row in key["arms"]],
            "records": records}
