"""The lockstep clock: zero-length runs return at once."""
import time

from myotone.emulator import Emulator


def test_running_to_the_time_it_already_is_returns_at_once():
    with Emulator("pico-mcp4725") as emu:
        emu.run_for(0.5)
        now_ns = emu.clock.now_ns
        t = time.monotonic()
        emu.clock.run_until(now_ns, timeout_s=5.0)
        emu.clock.run_until(now_ns - 1, timeout_s=5.0)
        emu.run_until(emu.now_s)
        assert time.monotonic() - t < 2.0 and emu.clock.now_ns == now_ns
        emu.run_for(0.1)                      # and it still moves on
        assert emu.clock.now_ns == now_ns + 100_000_000
