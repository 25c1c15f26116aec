"""rp2.asm_pio re-implementation: encodings, program layout, errors."""
import pytest

from myotone.emulator import pio_asm as PIO
from myotone.emulator.pio_asm import PIOASMError, asm_pio, asm_pio_encode

NAME_ONLY_GLOBAL = "hidden while a PIO function body runs"
COUNT_BITS = 30  # an int global, as ``COUNT_BITS = const(30)`` would be on the device


def pulse_player_program():
    @asm_pio(out_init=(PIO.OUT_LOW, PIO.OUT_LOW), set_init=(PIO.OUT_LOW, PIO.OUT_LOW),
             out_shiftdir=PIO.SHIFT_RIGHT)
    def pulse_player():
        wrap_target()
        pull(block)
        out(pins, 2)
        out(x, 30)
        label("countdown")
        jmp(x_dec, "countdown")
        set(pins, 0)
        wrap()
    return pulse_player


def test_pulse_player_program_object_has_micropython_shape():
    prog = pulse_player_program()
    assert len(prog) == 8
    assert prog[0].typecode == "H"
    # pull block / out pins,2 / out x,30 / jmp x--,3 / set pins,0
    assert list(prog[0]) == [0x80A0, 0x6002, 0x603E, 0x0043, 0xE000]
    assert prog[1:3] == [-1, -1]                 # not loaded in PIO0/PIO1 yet
    assert prog[3] == 4 << 12 | 0 << 7           # wrap top 4, wrap bottom 0
    assert prog[4] == 1 << 19                    # out shift right, thresholds 32 (=0)
    assert prog[5:] == [(2, 2), (2, 2), None]


def test_squarewave_matches_datasheet_encoding():
    # RP2040 datasheet / pioasm output: e081 e101 e000 0001
    @asm_pio(set_init=PIO.OUT_LOW)
    def squarewave():
        set(pindirs, 1)
        label("again")
        set(pins, 1)[1]
        set(pins, 0)
        jmp("again")
    assert list(squarewave[0]) == [0xE081, 0xE101, 0xE000, 0x0001]


def test_ws2812_with_sideset_matches_pioasm():
    # pico-examples ws2812.pio (.side_set 1): 6221 1123 1400 a442
    @asm_pio(sideset_init=PIO.OUT_LOW, out_shiftdir=PIO.SHIFT_LEFT, autopull=True, pull_thresh=24)
    def ws2812():
        wrap_target()
        label("bitloop")
        out(x, 1).side(0)[2]
        jmp(not_x, "do_zero").side(1)[1]
        jmp("bitloop").side(1)[4]
        label("do_zero")
        nop().side(0)[4]
        wrap()
    assert list(ws2812[0]) == [0x6221, 0x1123, 0x1400, 0xA442]
    assert ws2812[3] & (1 << 30) == 0            # side-set not optional
    assert ws2812[4] == 24 << 25 | 1 << 17


def test_pull_mov_jmp_from_pioasm():
    # set pindirs,1 / pull block / mov x,osr / set pins,1 [1] / set pins,0 / jmp x--,3
    @asm_pio(set_init=PIO.OUT_LOW)
    def blink_n():
        set(pindirs, 1)
        pull()
        mov(x, osr)
        label("loop")
        set(pins, 1).delay(1)
        set(pins, 0)
        jmp(x_dec, "loop")
    assert list(blink_n[0]) == [0xE081, 0x80A0, 0xA027, 0xE101, 0xE000, 0x0043]


@pytest.mark.parametrize("src, word", [
    ("wait(1, gpio, 5)", 0x2085),
    ("wait(0, pin, 2)", 0x2022),
    ("wait(1, irq, rel(2))", 0x20D2),
    ("irq(block, 0)", 0xC020),
    ("irq(clear, 1)", 0xC041),
    ("irq(rel(0))", 0xC010),
    ("push(iffull, noblock)", 0x8040),
    ("push()", 0x8020),
    ("pull(ifempty)", 0x80E0),
    ("pull(noblock)", 0x8080),
    ("mov(x, invert(y))", 0xA02A),
    ("mov(isr, reverse(osr))", 0xA0D7),
    ("mov(exec, x)", 0xA081),
    ("out(exec, 16)", 0x60F0),
    ("in_(pins, 32)", 0x4000),
    ("nop()", 0xA042),
    ("set(x, 5)", 0xE025),
])
def test_single_instruction_encodings(src, word):
    assert asm_pio_encode(src, 0) == word


def test_optional_sideset_sets_enable_bit_and_side_en():
    @asm_pio(sideset_init=PIO.OUT_LOW)
    def prog():
        nop().side(1)
        nop()[7]
    # .side_set 1 opt: "nop side 1" = b842, "nop [7]" = a742
    assert list(prog[0]) == [0xB842, 0xA742]
    assert prog[3] & (1 << 30)


def test_wrap_target_and_implicit_wrap():
    @asm_pio()
    def prog():
        set(x, 1)
        wrap_target()
        set(y, 2)
        nop()
    assert prog[3] == (2 << 12) | (1 << 7)


def test_unknown_label():
    with pytest.raises(PIOASMError, match="unknown label nowhere"):
        @asm_pio()
        def prog():
            jmp("nowhere")


def test_duplicate_label():
    with pytest.raises(PIOASMError, match="duplicate label a"):
        @asm_pio()
        def prog():
            label("a")
            nop()
            label("a")


def test_delay_too_large_without_and_with_sideset():
    with pytest.raises(PIOASMError, match="delay too large"):
        @asm_pio()
        def prog():
            nop()[32]

    @asm_pio()
    def ok():
        nop()[31]
    assert ok[0][0] == 0xBF42

    with pytest.raises(PIOASMError, match="delay too large"):
        @asm_pio(sideset_init=(PIO.OUT_LOW, PIO.OUT_LOW))  # 2 side-set bits leave 3 for delay
        def prog2():
            nop().side(0)[8]


def test_sideset_errors():
    with pytest.raises(PIOASMError, match="no sideset"):
        @asm_pio()
        def prog():
            nop().side(1)
    with pytest.raises(PIOASMError, match="sideset too large"):
        @asm_pio(sideset_init=PIO.OUT_LOW)
        def prog2():
            nop().side(2)


@pytest.mark.parametrize("body", ["out(x, 0)", "out(x, 33)", "in_(x, 0)", "in_(pins, 33)"])
def test_invalid_bit_count(body):
    namespace = {"asm_pio": asm_pio}
    with pytest.raises(PIOASMError, match="invalid bit count"):
        exec("@asm_pio()\ndef prog():\n    " + body, namespace)


def test_too_many_instructions_still_assemble():
    # MicroPython's assembler does not check the length; loading fails later
    # with OSError(ENOMEM) (tested with the simulator and the rp2 shim).
    @asm_pio()
    def long_prog():
        for _ in range(33):
            nop()
    assert len(long_prog[0]) == 33


def test_globals_are_hidden_then_restored():
    with pytest.raises(NameError):
        @asm_pio()
        def prog():
            set(x, len(NAME_ONLY_GLOBAL))
    assert NAME_ONLY_GLOBAL.startswith("hidden")   # restored even after an error
    assert globals()["asm_pio"] is asm_pio

    @asm_pio()
    def uses_const():
        out(x, COUNT_BITS)
    assert uses_const[0][0] == 0x603E


def test_asm_pio_encode_jmp_not_supported():
    with pytest.raises(TypeError):
        asm_pio_encode("jmp(0)", 0)
    with pytest.raises(PIOASMError, match="exactly 1"):
        asm_pio_encode("nop(); nop()", 0)
