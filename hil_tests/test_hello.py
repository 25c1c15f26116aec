"""hello, status and programs: the device says who it is and which limits it enforces."""

ABS_CEILING_UA = 1000                   # SAFETY.md: no board file can raise it
SESSION_MAX_S = 20 * 60
LED_MAX_S = 10 * 60                     # SAFETY.md: no program longer than 10 min of LED


def test_hello_names_the_board_and_its_limits(dut):
    r = dut.request("hello")
    assert r["protocol"] == 1
    assert isinstance(r["firmware"], str) and r["firmware"]
    assert r["board"] == dut.board["name"] and r["mcu"] == dut.board["mcu"]
    assert r["pulse_backend"] == dut.board["pulse"]["backend"]
    uid = r["unit_id"]                  # the flash ID (rp2, 8 bytes) or the MAC (esp32, 6), in hex
    assert len(uid) in (12, 16) and int(uid, 16) >= 0 and uid == uid.lower()
    lim = r["limits"]
    assert lim["ceiling_ua"] == ABS_CEILING_UA
    assert lim["max_ua"] == min(dut.board["limit_ua"], ABS_CEILING_UA)
    assert lim["min_ua"] == 10
    assert 0 < lim["soft_start_ua"] <= lim["max_ua"] * 0.02
    assert lim["session_max_s"] <= SESSION_MAX_S
    assert lim["hz"][0] >= 0.1 and lim["hz"][1] <= 1000
    assert lim["phase_us"][0] >= 20 and lim["phase_us"][1] <= 5_000_000
    assert r["reset_cause"] in ("power_on", "hard", "soft", "watchdog", "brownout", "deepsleep", "unknown")


def test_status_at_rest_is_idle_with_nothing_latched(dut):
    s = dut.status()
    assert s["state"] in ("idle", "done")
    assert s["fault"] is None and s["condition"] is None
    assert s["target_ua"] == 0
    assert 10 < s["temp_c"] < 41                # a bench at room temperature, thermistor connected


def test_every_program_fits_the_session_caps(dut):
    programs = dut.request("programs")["programs"]
    assert programs, "no built-in programs"
    lim = dut.request("hello")["limits"]
    assert lim.get("led_max_s", LED_MAX_S) <= LED_MAX_S
    for p in programs:
        assert 0 < p["duration_s"] <= lim["session_max_s"], p
        if p.get("led"):
            assert p["duration_s"] <= lim.get("led_max_s", LED_MAX_S), p
        if p.get("microcurrent", True):
            assert lim["hz"][0] <= p["hz"] <= lim["hz"][1], p
            assert lim["phase_us"][0] <= p["phase_us"] <= lim["phase_us"][1], p
