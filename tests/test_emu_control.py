"""The emulator's side channel (load, faults, unit tolerances of a served board),
and lockstep waits for a time already reached."""
import pytest

from myotone.emulator import Emulator
from myotone.emulator.control import ControlClient, serve_control
from myotone.link import EmuTransport


@pytest.fixture
def served_emu():
    emu = Emulator("pico-mcp4725")
    url = serve_control(emu)
    emu.serve_realtime(5.0)
    client = ControlClient(url)
    yield emu, client
    client.close()
    emu.close()


def test_side_channel_sets_the_load_faults_and_tolerances(served_emu):
    emu, c = served_emu
    c.set_load(r_series_ohm=500, r_parallel_ohm=0)
    assert emu.plant.load.dc_ohm() == 500
    c.set_plant(dac_gain=0.95)
    assert emu.plant.dac_gain == 0.95
    c.set_fault("electrode_off")
    p = c.plant()
    assert p["load"]["contact"] == "off" and p["dac_code"] == 0 and p["hv_on"] == 0 and p["dac_gain"] == 0.95
    c.set_fault("electrode_off", False)
    assert c.plant()["load"]["contact"] == "good"


def test_side_channel_errors_are_replies_not_crashes(served_emu):
    _, c = served_emu
    with pytest.raises(ValueError, match="unknown load field"):
        c.set_load(volts=3)
    with pytest.raises(ValueError, match="unknown fault"):
        c.set_fault("lightning")
    with pytest.raises(ValueError, match="unknown plant field"):
        c.set_plant(limit_ua=5000)
    with pytest.raises(ValueError, match="unknown op"):
        c.request("reboot")
    assert c.plant()["ok"]
    with pytest.raises(ValueError, match="not an emulator control URL"):
        ControlClient("socket://127.0.0.1:1")


def test_lockstep_wait_for_a_time_already_reached_returns(emu):
    emu.run_for(0.1)
    t = emu.clock.now_ns
    emu.clock.run_until(t, timeout_s=2)          # used to wait for a park that never came
    emu.clock.run_until(t - 1000, timeout_s=2)
    assert emu.clock.now_ns == t


def test_emu_transport_tiny_timeouts_return():
    tr = EmuTransport()
    try:
        tr.readline(0.3)
        t = tr.emulator.clock.now_ns
        assert tr.readline(1e-12) is None         # rounds below 1 ns: still advances, never spins
        assert tr.emulator.clock.now_ns > t
    finally:
        tr.close()
