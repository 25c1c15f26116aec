"""Ctrl-C (what mpremote sends) and a soft reset leave the output safe and the device serving.

On an ESP32 the task watchdog cannot be stopped from MicroPython: after
Ctrl-C following a session it resets the board within watchdog_ms, into the
safe state (docs/safety.md, known limits). Both outcomes are safe; the tests
accept either and check the output on the rig.
"""
import pytest


def test_ctrl_c_breaks_into_the_repl_and_a_soft_reset_serves_again(dut):
    dut.run_to_setpoint(300)
    dut.interrupt()
    ready = dut.soft_reset()
    assert ready["board"] == dut.board["name"]
    dut.wait(1.5)                  # an ESP32 may reset once more (its watchdog): let it
    st = dut.status()
    assert st["state"] == "idle" and st["fault"] is None        # nothing resumes after a reset
    dut.run_to_setpoint(100)                                      # and it works as before


@pytest.mark.rig
def test_ctrl_c_and_soft_reset_leave_the_output_safe(dut):
    dut.run_to_setpoint(300)
    t_int = dut.now_s()
    dut.interrupt()
    cut = dut.rig.cut_s(t_int)
    assert cut is not None and dut.rig.output_safe()
    dut.soft_reset()
    dut.wait(2.0)                 # nothing left running (timer, PWM, pulse), nor started by the reset
    assert dut.rig.capture(cut).max_abs_ua == 0 and dut.rig.output_safe()
