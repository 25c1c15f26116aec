"""``rp2.asm_pio`` for CPython: assemble PIO programs written as on MicroPython.

The behaviour (two passes, program object layout, encodings, error messages)
follows MicroPython's ``ports/rp2/modules/rp2.py`` (MIT licence,
Copyright (c) 2020-2021 Damien P. George); this is an independent
re-implementation of that behaviour, not a copy.

The decorated function yields the same 8-field program list MicroPython
produces, which ``StateMachine.init`` reads::

    [array('H', instructions), offset_pio0 (-1), offset_pio1 (-1),
     execctrl, shiftctrl, out_init, set_init, sideset_init]

What the assembler does *not* check, just like MicroPython: program length.
A program longer than the 32-word instruction memory assembles fine and
fails later when it is loaded (``OSError(ENOMEM)``, see ``pio_block``).

One deliberate difference: while the PIO function body runs, MicroPython
hides every module global.  Integer constants defined with ``const()`` are
still usable there on the device, because its compiler inlines them; CPython
cannot tell ``const()`` ints from plain ints, so int-valued globals stay
visible here.  Everything else is hidden, as on the device.
"""
from array import array

# Constants of rp2.PIO (values from MicroPython's rp2_pio.c).
IN_LOW, IN_HIGH, OUT_LOW, OUT_HIGH = 0, 1, 2, 3
SHIFT_LEFT, SHIFT_RIGHT = 0, 1
JOIN_NONE, JOIN_TX, JOIN_RX = 0, 1, 2
IRQ_SM0, IRQ_SM1, IRQ_SM2, IRQ_SM3 = 0x100, 0x200, 0x400, 0x800

# Indices into the program list.
PROG_DATA = 0
PROG_OFFSET_PIO0 = 1
PROG_OFFSET_PIO1 = 2
PROG_EXECCTRL = 3
PROG_SHIFTCTRL = 4
PROG_OUT_PINS = 5
PROG_SET_PINS = 6
PROG_SIDESET_PINS = 7
PROG_MAX_FIELDS = 8


class PIOASMError(Exception):
    pass


class PIOASMEmit:
    """Collects one program over two passes (0: labels and counts, 1: emit)."""

    def __init__(self, *, out_init=None, set_init=None, sideset_init=None,
                 side_pindir=False, in_shiftdir=SHIFT_LEFT, out_shiftdir=SHIFT_LEFT,
                 autopush=False, autopull=False, push_thresh=32, pull_thresh=32,
                 fifo_join=JOIN_NONE):
        shiftctrl = (fifo_join << 30 | (pull_thresh & 0x1F) << 25 | (push_thresh & 0x1F) << 20
                     | out_shiftdir << 19 | in_shiftdir << 18 | autopull << 17 | autopush << 16)
        self.prog = [array("H"), -1, -1, side_pindir << 29, shiftctrl,
                     out_init, set_init, sideset_init]
        self.labels = {}
        self.wrap_used = False
        if sideset_init is None:
            self.sideset_count = 0
        elif isinstance(sideset_init, int):
            self.sideset_count = 1
        else:
            self.sideset_count = len(sideset_init)
        self.sideset_opt = False
        self.delay_max = 31
        self.pass_ = 0
        self.num_instr = 0
        self.num_sideset = 0

    def start_pass(self, pass_):
        if pass_ == 1:
            if self.num_instr and not self.wrap_used:
                self.wrap()
            self.delay_max = 31
            if self.sideset_count:
                # Side-set is optional when some instruction has no .side().
                self.sideset_opt = self.num_sideset != self.num_instr
                if self.sideset_opt:
                    self.prog[PROG_EXECCTRL] |= 1 << 30
                    self.sideset_count += 1
                self.delay_max >>= self.sideset_count
        self.pass_ = pass_
        self.num_instr = 0
        self.num_sideset = 0

    # -- modifiers on the instruction just emitted ------------------------
    def __getitem__(self, delay):
        return self.delay(delay)

    def delay(self, delay):
        if self.pass_ > 0:
            if delay > self.delay_max:
                raise PIOASMError("delay too large")
            self.prog[PROG_DATA][-1] |= delay << 8
        return self

    def side(self, value):
        self.num_sideset += 1
        if self.pass_ > 0:
            if self.sideset_count == 0:
                raise PIOASMError("no sideset")
            if value >= (1 << self.sideset_count):
                raise PIOASMError("sideset too large")
            self.prog[PROG_DATA][-1] |= self.sideset_opt << 12 | value << (13 - self.sideset_count)
        return self

    # -- directives --------------------------------------------------------
    def wrap_target(self):
        self.prog[PROG_EXECCTRL] |= self.num_instr << 7

    def wrap(self):
        assert self.num_instr
        self.prog[PROG_EXECCTRL] |= (self.num_instr - 1) << 12
        self.wrap_used = True

    def label(self, label):
        if self.pass_ == 0:
            if label in self.labels:
                raise PIOASMError("duplicate label {}".format(label))
            self.labels[label] = self.num_instr

    # -- instructions ------------------------------------------------------
    def word(self, instr, label=None):
        self.num_instr += 1
        if self.pass_ > 0:
            address = 0
            if label is not None:
                if label not in self.labels:
                    raise PIOASMError("unknown label {}".format(label))
                address = self.labels[label]
            self.prog[PROG_DATA].append(instr | address)
        return self

    def nop(self):
        return self.word(0xA042)  # mov y, y

    def jmp(self, cond, label=None):
        if label is None:
            cond, label = 0, cond  # unconditional
        return self.word(cond << 5, label)

    def wait(self, polarity, src, index):
        if src == 6:
            src = 1  # "pin" (shares its value with the jmp condition)
        elif src != 0:
            src = 2  # "irq" (the irq instruction function itself is passed)
        return self.word(0x2000 | polarity << 7 | src << 5 | index)

    def in_(self, src, data):
        if not 0 < data <= 32:
            raise PIOASMError("invalid bit count {}".format(data))
        return self.word(0x4000 | src << 5 | data & 0x1F)

    def out(self, dest, data):
        if dest == 8:
            dest = 7  # exec
        if not 0 < data <= 32:
            raise PIOASMError("invalid bit count {}".format(data))
        return self.word(0x6000 | dest << 5 | data & 0x1F)

    def push(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20  # blocking unless noblock was given
        return self.word(0x8000 | value & 0x60)

    def pull(self, value=0, value2=0):
        value |= value2
        if not value & 1:
            value |= 0x20
        return self.word(0x8080 | value & 0x60)

    def mov(self, dest, src):
        if dest == 8:
            dest = 4  # exec
        return self.word(0xA000 | dest << 5 | src)

    def irq(self, mod, index=None):
        if index is None:
            mod, index = 0, mod
        return self.word(0xC000 | mod & 0x60 | index)

    def set(self, dest, data):
        return self.word(0xE000 | dest << 5 | data)


# Names visible inside a PIO function besides the instructions/directives.
_PIO_FUNCS = {
    "gpio": 0,  # wait source; "pin" -> 1 and "irq" -> 2 are translated in wait()
    "pins": 0, "x": 1, "y": 2, "null": 3, "pindirs": 4, "pc": 5, "status": 5,
    "isr": 6, "osr": 7, "exec": 8,
    "invert": lambda src: src | 0x08,
    "reverse": lambda src: src | 0x10,
    "not_x": 1, "x_dec": 2, "not_y": 3, "y_dec": 4, "x_not_y": 5, "pin": 6, "not_osre": 7,
    "noblock": 0x01, "block": 0x21, "iffull": 0x40, "ifempty": 0x40,
    "clear": 0x40,
    "rel": lambda index: index | 0x10,
}
_DIRECTIVES = ("wrap_target", "wrap", "label")
_INSTRUCTIONS = ("word", "nop", "jmp", "wait", "in_", "out", "push", "pull", "mov", "irq", "set")


def asm_pio(**kw):
    """Decorator: assemble the function body into a MicroPython program list."""
    emit = PIOASMEmit(**kw)

    def dec(f):
        gl = f.__globals__
        saved = dict(gl)
        names = {k: v for k, v in saved.items() if type(v) is int}  # const() stand-ins
        names.update(_PIO_FUNCS)
        for name in _DIRECTIVES + _INSTRUCTIONS:
            names[name] = getattr(emit, name)
        gl.clear()
        gl.update(names)
        try:
            emit.start_pass(0)
            f()
            emit.start_pass(1)
            f()
        finally:
            gl.clear()
            gl.update(saved)
        return emit.prog

    return dec


def asm_pio_encode(instr, sideset_count, sideset_opt=False):
    """Encode one instruction given as source text, as ``StateMachine.exec`` does.

    *sideset_count* includes the side-set enable bit when *sideset_opt*.
    """
    emit = PIOASMEmit()
    emit.sideset_count = sideset_count
    emit.sideset_opt = sideset_opt != 0
    emit.delay_max = 31 >> (emit.sideset_count + emit.sideset_opt)
    emit.pass_ = 1
    names = dict(_PIO_FUNCS)
    for name in _INSTRUCTIONS:
        names[name] = getattr(emit, name)
    names["jmp"] = None  # not supported by MicroPython's exec() either
    exec(instr, names)
    if len(emit.prog[PROG_DATA]) != 1:
        raise PIOASMError("expecting exactly 1 instruction")
    return emit.prog[PROG_DATA][0]
