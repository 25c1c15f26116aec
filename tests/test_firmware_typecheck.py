"""The firmware type-checks against the official stubs of each port it runs on.

tools/typecheck_firmware.py runs pyright once per port with that port's
pinned micropython-<port>-stubs as the only stdlib.  The tests below also
prove the checker catches real mistakes, and say where the stubs alone do not.
"""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from firmware_paths import FIRMWARE_DIR, REPO, SAMPLE_FIRMWARE_DIR

sys.path.insert(0, str(REPO / "tools"))
import typecheck_firmware as tc  # noqa: E402

SCRIPT = REPO / "tools" / "typecheck_firmware.py"
STUBS_ROOT = REPO / ".stubs"


@pytest.fixture(scope="session", autouse=True)
def _stubs_installed():
    for port in ("rp2", "esp32"):
        if not tc.stubs_current(port, STUBS_ROOT):
            pytest.fail(f"pinned stubs for {port} not installed in {STUBS_ROOT}; run\n"
                        f"    python tools/typecheck_firmware.py --install-stubs", pytrace=False)


def test_firmware_typechecks_for_every_port():
    proc = subprocess.run([sys.executable, str(SCRIPT), "--firmware", str(FIRMWARE_DIR)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0, f"type errors in the firmware:\n{proc.stdout}{proc.stderr}"


def test_every_firmware_file_is_checked_for_some_port():
    config = tc.load_config()
    by_port = tc.plan(FIRMWARE_DIR.resolve(), config)
    checked = {p for paths in by_port.values() for p in paths}
    missing = set(tc.discover(FIRMWARE_DIR.resolve())) - checked
    assert not missing, f"not type-checked for any port: {sorted(map(str, missing))}"


def test_port_rule_on_the_sample():
    by_port = tc.plan(SAMPLE_FIRMWARE_DIR.resolve(), tc.load_config())
    rel = {port: {p.relative_to(SAMPLE_FIRMWARE_DIR.resolve()).as_posix() for p in paths}
           for port, paths in by_port.items()}
    assert "myotone/hal/pulse_pio.py" in rel["rp2"] and "myotone/hal/pulse_pio.py" not in rel["esp32"]
    assert "myotone/hal/pulse_rmt.py" in rel["esp32"] and "myotone/hal/pulse_rmt.py" not in rel["rp2"]
    for shared in ("myotone/pulse.py", "myotone/hal/pwm.py", "main.py"):
        assert shared in rel["rp2"] and shared in rel["esp32"]


# --- deliberately wrong firmware --------------------------------------------

BAD_FILES = {
    # machine.DAC exists on esp32, not on rp2.
    "dac.py": """
        from machine import DAC, Pin
        dac = DAC(Pin(25))
        dac.write(128)
    """,
    # The esp32 port raises ValueError for hard=True; rp2 (>= 1.26) supports it.
    "hard_timer.py": """
        from machine import Timer
        def tick(t):
            pass
        timer = Timer(0, mode=Timer.PERIODIC, period=10, callback=tick, hard=True)
    """,
    "uses_dataclasses.py": """
        import dataclasses
    """,
    "uses_typing.py": """
        from typing import List
        def f(x: List[int]) -> int:
            return x[0]
    """,
    "typing_guarded.py": """
        try:
            from typing import List
        except ImportError:
            pass
        def f(x: "List[int]") -> int:
            return x[0]
    """,
    "wrong_arg.py": """
        import time
        time.sleep_ms("10")
    """,
    "pio.py": """
        import rp2
        from machine import Pin

        @rp2.asm_pio(set_init=rp2.PIO.OUT_LOW)
        def blink():
            wrap_target()
            set(pins, 1)   [31]
            nop()          [31]
            set(pins, 0)   [31]
            wrap()

        sm = rp2.StateMachine(0, blink, freq=2000, set_base=Pin(25))
        sm.no_such_method()
    """,
    "clean.py": """
        import micropython
        from array import array
        from micropython import const

        _N = const(8)
        buf = array("H", range(_N))

        def later(arg):
            buf[0] = arg

        micropython.schedule(later, 3)
    """,
}


@pytest.fixture(scope="module")
def bad_firmware(tmp_path_factory):
    root = tmp_path_factory.mktemp("badfw")
    for name, text in BAD_FILES.items():
        (root / name).write_text(textwrap.dedent(text).lstrip())
    diags = tc.check(root, config=tc.load_config(), stubs_root=STUBS_ROOT)
    return root, diags


def _found(diags, name, port):
    return [d for d in diags if d.path.name == name and d.port == port]


def test_machine_dac_is_an_error_on_rp2_only(bad_firmware):
    _, diags = bad_firmware
    rp2 = _found(diags, "dac.py", "rp2")
    assert rp2 and all(d.rule == "reportAttributeAccessIssue" for d in rp2), rp2
    assert any('"DAC" is unknown import symbol' in d.message for d in rp2)
    assert _found(diags, "dac.py", "esp32") == []


def test_hard_timer_is_an_error_on_esp32_only(bad_firmware):
    _, diags = bad_firmware
    esp32 = _found(diags, "hard_timer.py", "esp32")
    assert [d.rule for d in esp32] == ["myotone-esp32-hard-timer"]
    assert esp32[0].line == 4
    assert _found(diags, "hard_timer.py", "rp2") == []


def test_esp32_stubs_alone_accept_hard_timer(bad_firmware):
    # Honest limit of the stubs: their esp32 Timer takes hard=...; only our
    # extra rule rejects it.  If a future stub release starts rejecting it,
    # this test fails and the extra rule can go.
    root, _ = bad_firmware
    raw = tc.run_pyright("esp32", [root / "hard_timer.py"], root, STUBS_ROOT)
    assert raw == []


def test_missing_stdlib_module_is_an_error(bad_firmware):
    _, diags = bad_firmware
    for port in ("rp2", "esp32"):
        found = _found(diags, "uses_dataclasses.py", port)
        assert [d.rule for d in found] == ["reportMissingImports"], found


def test_runtime_typing_import_is_an_error_unless_guarded(bad_firmware):
    _, diags = bad_firmware
    for port in ("rp2", "esp32"):
        assert [d.rule for d in _found(diags, "uses_typing.py", port)] == ["myotone-runtime-import"]
        assert _found(diags, "typing_guarded.py", port) == []


def test_wrong_argument_type_is_an_error(bad_firmware):
    _, diags = bad_firmware
    for port in ("rp2", "esp32"):
        assert [d.rule for d in _found(diags, "wrong_arg.py", port)] == ["reportArgumentType"]


def test_pio_assembler_is_not_flagged_but_real_errors_next_to_it_are(bad_firmware):
    _, diags = bad_firmware
    rp2 = _found(diags, "pio.py", "rp2")
    assert [(d.line, d.rule) for d in rp2] == [(13, "reportAttributeAccessIssue")], rp2
    assert _found(diags, "pio.py", "esp32") == [], "a file importing rp2 is not checked for esp32"


def test_clean_micropython_code_passes(bad_firmware):
    _, diags = bad_firmware
    assert _found(diags, "clean.py", "rp2") == [] and _found(diags, "clean.py", "esp32") == []


def test_script_exit_status_and_output(bad_firmware, tmp_path):
    root, _ = bad_firmware
    proc = subprocess.run([sys.executable, str(SCRIPT), "--firmware", str(root), "--port", "rp2"],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 1
    assert 'dac.py:1:21: [rp2] error: "DAC" is unknown import symbol (reportAttributeAccessIssue)' in proc.stdout

    proc = subprocess.run([sys.executable, str(SCRIPT), "--firmware", str(root), "--stubs-root", str(tmp_path)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "--install-stubs" in proc.stderr


def test_override_moves_a_file_to_one_port(bad_firmware, tmp_path):
    root, _ = bad_firmware
    config = tc.load_config()
    config["overrides"] = {"dac.py": ["esp32"]}
    cfg = tmp_path / "ports.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--firmware", str(root), "--config", str(cfg),
                           "--plan"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "esp32\tdac.py" in proc.stdout.splitlines() and "rp2\tdac.py" not in proc.stdout.splitlines()


def test_file_importing_both_port_modules_must_be_declared(tmp_path):
    (tmp_path / "both.py").write_text("import rp2\nimport esp32\n")
    with pytest.raises(tc.SetupError, match="overrides"):
        tc.plan(tmp_path, tc.load_config())


def test_accepted_entry_explains_a_finding_and_a_stale_one_fails(bad_firmware, tmp_path):
    root, _ = bad_firmware
    config = tc.load_config()
    config["accepted"] = [
        {"file": "dac.py", "rule": "reportAttributeAccessIssue", "port": "rp2", "match": '"DAC"', "why": "test"},
        {"file": "gone.py", "rule": "reportCallIssue", "why": "matches nothing"},
    ]
    cfg = tmp_path / "ports.json"
    cfg.write_text(json.dumps(config))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--firmware", str(root), "--config", str(cfg)],
                          capture_output=True, text=True, cwd=root)
    assert proc.returncode == 1
    assert "dac.py:1:21: [rp2]" not in proc.stdout
    assert "myotone-stale-accepted" in proc.stdout and "gone.py" in proc.stdout
