"""The `myotone study` commands: blinded studies (registered on cli.main).
The work is in study.py; docs/guide.md#blinded-studies says what the blinding hides and
what it cannot."""
from __future__ import annotations

import click

from .cli import connect, device_errors, emit, json_option, main, port_option
from .cli_paths import InFile, OutFile, OutFolder, file_errors


@main.group()
def study():
    """Blinded studies: programs under coded names, unblinded with a key file."""


@study.command("create")
@click.argument("key_path", metavar="KEYFILE", type=OutFile())
@click.option("--arm", "arms", multiple=True, required=True, metavar="LABEL=PROGRAM",
              help="An arm: its label and the program it runs (twice or more: --arm A=sham --arm B=sculpt).")
@click.option("--prefix", default="study", show_default=True,
              help="The coded names are PREFIX-LABEL (e.g. study-a).")
@click.option("--allow-mismatch", is_flag=True,
              help="Write the study even if its arms differ in length or light (which unblinds them).")
@port_option
@json_option
@file_errors
@device_errors
def study_create(key_path, arms, prefix, allow_mismatch, port, as_json):
    """Store each arm on the device as a blinded program under a coded name, and write
    KEYFILE, the only record of which code is which program (keep it from the participants
    and the operators; it is never overwritten).

    The device then shows only the code: never the phases, the current or the
    measurements of a session (docs/guide.md#blinded-studies).
    """
    from .study import create, parse_arm
    parsed = [parse_arm(a) for a in arms]
    with connect(port) as link:
        key = create(link, key_path, parsed, prefix, allow_mismatch)
    codes = ", ".join(row["code"] for row in key["arms"])
    text = f"stored {codes}; the key is {key_path} (keep it apart: it alone unblinds)"
    if key["perceivable_differences"]:
        text += "\nwarning: the arms differ in what is perceived: " + "; ".join(key["perceivable_differences"])
    emit({"ok": True, "key": str(key_path), "codes": [row["code"] for row in key["arms"]],
          "perceivable_differences": key["perceivable_differences"]}, as_json, text)


@study.command("unblind")
@click.argument("key_path", metavar="KEYFILE", type=InFile())
@click.option("--dir", "out_dir", type=OutFolder(), default=None,
              help="Also save every record of the study there, in full, with its arm (myotone-log-NNNN.json).")
@port_option
@json_option
@file_errors
@device_errors
def study_unblind(key_path, out_dir, port, as_json):
    """Say which code is which program, and read the study's session records in full."""
    from .logs import when
    from .study import load_key, unblind
    key = load_key(key_path)
    with connect(port) as link:
        out = unblind(link, key, out_dir)
    lines = [f"{a['code']} = arm {a['arm']}: {a['program']}" for a in out["arms"]]
    for r in out["records"]:
        lines.append(f"{r['n']:>4}  {when(r.get('start_s'))}  {r['program']} (arm {r['arm']}, {r['arm_program']})  "
                     f"{r.get('charge_uc')} µC, mean {r.get('avg_ua')} µA, LED {r.get('led_dose_j_cm2')} J/cm²"
                     + (f", faults {', '.join(map(str, r['faults']))}" if r.get("faults") else ""))
    if not out["records"]:
        lines.append("no session records of this study on the device")
    emit(out, as_json, "\n".join(lines))
