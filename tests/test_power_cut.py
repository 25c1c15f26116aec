"""Power loss at random instants during every file the firmware writes.

SAFETY.md: files the firmware writes are written atomically; a power loss at
any instant leaves the old or the new content, never a broken file (and
never an unmountable filesystem). The firmware's own store functions run on
the littlefs image (tests/power_cut.py); the power goes at a random
program/erase operation of the write, half-done or not at all; the image is
remounted and read back with the firmware's own readers, after its own
boot-time recovery. >= 1000 trials in all; every 100th surviving image also
boots the whole firmware.

littlefs commits a file only when it is closed, so a single open-write-close
is old-or-new by construction; what the trials catch is a file written in
steps (the negative control at the end), state spread over several files
(the log ring and its sequence number), an image that no longer mounts, and
survivors the firmware's own readers cannot read.

Writers are found in the firmware as the issue says (`open(..., "w")`,
`os.rename`, ...); `test_every_writing_module_is_covered` fails when a module
writes files that no case below exercises.
"""
import json

import pytest

from myotone.emulator import Emulator
from power_cut import World, firmware_writers, run_trials

OLD_SETTINGS = {"button_ua": 200, "program": "lift"}
NEW_SETTINGS = {"button_ua": 350, "program": "contour", "pad": "x" * 300}


def _prog(label, pct):
    return {"description": "test " + label,
            "phases": [{"duration_s": 60, "current_pct": pct, "hz": 10, "phase_us": 40000, "gap_us": 200,
                        "label": label}]}


OLD_PROG, NEW_PROG = _prog("old", 50), _prog("new", 80)


def _head(n):
    return {"start_s": 1000 + n, "end_s": 1600 + n, "program": "lift", "faults": []}


def _body(n):
    """A record body as large as a 20-minute session's (320 samples of 4 series): several blocks."""
    series = ",".join(str(1000 + i) for i in range(320))
    return lambda f: f.write('"charge_uc": %d, "t": [%s], "ua": [%s], "ohm": [%s], "led": [%s]'
                             % (n, series, series, series, series))


def _log_records(fs, imp):
    """Every record on the flash parses with the firmware's readers; returns their numbers."""
    st = imp("myotone.store")
    st.recover()
    nums = st.log_numbers()
    for n in nums:
        rec = json.loads(st.log_text(n))
        assert rec["n"] == n and rec["program"] == "lift", rec
        assert st.log_head(n)["n"] == n
    return nums


# ---- the cases: (module, setup, action, check, trials) -------------------------------

def settings_case():
    def setup(imp):
        st = imp("myotone.store")
        st.recover()
        st.settings_save(OLD_SETTINGS)

    def action(imp):
        imp("myotone.store").settings_save(NEW_SETTINGS)

    def check(fs, imp):
        assert json.loads(fs.read_file("/settings.json")) in (OLD_SETTINGS, NEW_SETTINGS)
        st = imp("myotone.store")
        st.recover()
        assert st.settings_load() in (OLD_SETTINGS, NEW_SETTINGS)
        assert not fs.exists("/settings.json.tmp")
    return setup, action, check


def program_replace_case():
    def setup(imp):
        st = imp("myotone.store")
        st.recover()
        st.program_save("mine", OLD_PROG)

    def action(imp):
        imp("myotone.store").program_save("mine", NEW_PROG)

    def check(fs, imp):
        st = imp("myotone.store")
        st.recover()
        assert st.program_load("mine") in (OLD_PROG, NEW_PROG)
        assert st.program_names() == ["mine"]
    return setup, action, check


def program_new_case():
    def setup(imp):
        st = imp("myotone.store")
        st.recover()
        st.program_save("mine", OLD_PROG)

    def action(imp):
        imp("myotone.store").program_save("other", NEW_PROG)

    def check(fs, imp):
        st = imp("myotone.store")
        st.recover()
        assert st.program_load("mine") == OLD_PROG
        names = st.program_names()
        assert names in (["mine"], ["mine", "other"])
        if "other" in names:
            assert st.program_load("other") == NEW_PROG
    return setup, action, check


def log_append_case(existing):
    def setup(imp):
        st = imp("myotone.store")
        st.recover()
        for k in range(existing):
            st.log_append(_head(k), _body(k))

    def action(imp):
        imp("myotone.store").log_append(_head(99), _body(99))

    def check(fs, imp):
        nums = _log_records(fs, imp)
        old = list(range(1, existing + 1))
        new = (old + [existing + 1])[-imp("myotone.store").LOG_MAX:]
        # each file old or new: the new record whole or absent; the ring's oldest may already be gone
        assert nums in (old, new, old[1:], new), nums
    return setup, action, check


def log_delete_case():
    def setup(imp):
        st = imp("myotone.store")
        st.recover()
        for k in range(4):
            st.log_append(_head(k), _body(k))

    def action(imp):
        imp("myotone.store").log_delete()

    def check(fs, imp):
        nums = _log_records(fs, imp)
        assert nums == [1, 2, 3, 4][4 - len(nums):] or set(nums) <= {1, 2, 3, 4}
        # numbers are never reused, whatever was deleted before the cut
        assert imp("myotone.store").log_append(_head(5), _body(5)) == 5
    return setup, action, check


def calib_case():
    old = {"dac_gain": 1.02, "dac_offset_ua": -1.5, "adc_gain": 0.98, "adc_offset_ua": 2.0, "note": "old"}
    new = {"dac_gain": 0.97, "dac_offset_ua": 3.0, "adc_gain": 1.01, "adc_offset_ua": -0.5, "note": "new"}

    def setup(imp):
        imp("myotone.calib").save(old)

    def action(imp):
        imp("myotone.calib").save(new)

    def check(fs, imp):
        cal, source = imp("myotone.calib").load()
        assert source == "file" and cal in (old, new), (source, cal)
    return setup, action, check


CASES = {
    "settings": ("myotone/store.py", settings_case, 140),
    "program_replace": ("myotone/store.py", program_replace_case, 140),
    "program_new": ("myotone/store.py", program_new_case, 100),
    "log_append": ("myotone/store.py", lambda: log_append_case(3), 180),
    "log_append_ring_full": ("myotone/store.py", lambda: log_append_case(32), 160),
    "log_delete": ("myotone/store.py", log_delete_case, 120),
    "calib": ("myotone/store.py", calib_case, 160),     # calib.save() writes through store
}


def test_every_writing_module_is_covered():
    covered = {module for module, _, _ in CASES.values()}
    missing = set(firmware_writers()) - covered
    assert not missing, f"firmware modules write files that no power-cut case exercises: {missing}"


def test_one_module_writes_files():
    """One atomic file writer (store.write_atomic): logs, programs, settings and calibration."""
    assert set(firmware_writers()) == {"myotone/store.py"}


def test_there_are_at_least_1000_trials():
    assert sum(n for _, _, n in CASES.values()) >= 1000


@pytest.fixture(scope="module")
def world():
    w = World()
    yield w
    w.close()


@pytest.mark.parametrize("name", CASES)
def test_power_cut_during_write_leaves_old_or_new(world, name):
    module, make, trials = CASES[name]
    if module not in firmware_writers():
        pytest.skip(f"{module} does not write files in this firmware")
    setup, action, check = make()
    booted = []

    def check_and_sometimes_boot(fs, imp):
        check(fs, imp)
        if len(booted) % 100 == 0:                     # the whole firmware boots on what survived
            with Emulator(world.emu.board, fs=fs) as emu:
                emu.run_for(0.3)
                out = emu.read()
                assert b'"ev": "ready"' in out, out[-300:]
        booted.append(1)
    figures = run_trials(world, setup, action, check_and_sometimes_boot, trials, seed=hash(name) % 1000)
    assert figures["trials"] == trials and figures["cuts"] == trials, figures


def test_the_harness_catches_a_write_that_is_not_atomic(world):
    """Negative control. littlefs commits a file at close, so one open-write-close is already
    old-or-new; a file written in two steps is not, and the trials must say so."""
    old, new = b'{"v": "old"}', b'{"v": "new", "pad": "' + b"x" * 600 + b'"}'

    def device_open():                     # MicroPython's open() on the world's flash
        return world.emu.runtime.builtins["open"]

    def setup(imp):
        with device_open()("/two_steps.json", "wb") as f:
            f.write(old)

    def action(imp):
        op = device_open()
        with op("/two_steps.json", "wb") as f:
            f.write(new[:300])
        with op("/two_steps.json", "ab") as f:
            f.write(new[300:])

    def check(fs, imp):
        assert fs.read_file("/two_steps.json") in (old, new)

    with pytest.raises(AssertionError):
        run_trials(world, setup, action, check, 40, seed=1)
