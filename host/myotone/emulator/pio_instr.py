"""Instruction semantics of an RP2040 PIO state machine (mixin of ``StateMachineSim``).

Each handler gets the decoded fields of one instruction and the issue time
``t`` (ns) and returns ``_DONE``, ``_STALL`` (retry when an outside input
changes) or ``_RETRY`` (retry next cycle).  Encodings: RP2040 datasheet 3.4.
"""
from collections import deque
from typing import Any, Callable, Optional

M32 = 0xFFFFFFFF
_DONE, _STALL, _RETRY = True, False, None  # results of one instruction issue


def _reverse32(v):
    return int(format(v, "032b")[::-1], 2)


class PioInstructions:
    # State owned and initialised by StateMachineSim, declared here for readers.
    x: int
    y: int
    isr: int
    osr: int
    isr_count: int
    osr_count: int
    tx: deque
    rx: deque
    tx_depth: int
    rx_depth: int
    autopush: bool
    autopull: bool
    in_right: bool
    out_right: bool
    push_thresh: int
    pull_thresh: int
    status_sel: int
    status_n: int
    in_base: int
    jmp_pin: int
    out_base: int
    out_count: int
    set_base: int
    set_count: int
    sideset_base: int
    sideset_count: int
    side_pindir: int
    sm_index: int
    irq_flags: Any
    irq_handler: Optional[Callable[[int, int], None]]
    _levels: dict
    _dirs: dict
    _side_pins: frozenset
    _side_active: bool
    _pin_write: Callable
    _pin_read: Callable
    _pindir_write: Optional[Callable]
    _current: Any
    _irq_waiting: Any
    _next_pc: Optional[int]
    _new_exec: Any
    _decode: Callable

    # -- pins -----------------------------------------------------------------------
    def _write(self, base, count, value, t, table, callback, skip=()):
        # The pins of one instruction change in the same cycle: passed on falls first, then
        # rises (one instant), so no state in between -- both bridge pins high when `out
        # pins, 2` reverses the polarity -- appears that the chip never has.
        for rise in (0, 1):
            for i in range(count):
                pin, bit = (base + i) & 31, value >> i & 1
                if bit == rise and table.get(pin) != bit and pin not in skip:
                    table[pin] = bit
                    if callback is not None:
                        callback(pin, bit, t)

    def _write_pins(self, base, count, value, t, dirs=False):
        skip = self._side_pins if self._side_active else ()  # side-set wins on conflicts
        if dirs:
            self._write(base, count, value, t, self._dirs, self._pindir_write, skip)
        else:
            self._write(base, count, value, t, self._levels, self._pin_write, skip)

    def _side_set(self, value, t):
        if self.side_pindir:
            self._write(self.sideset_base, self.sideset_count, value, t, self._dirs, self._pindir_write)
        else:
            self._write(self.sideset_base, self.sideset_count, value, t, self._levels, self._pin_write)

    def _side_would_change(self, value):
        table = self._dirs if self.side_pindir else self._levels
        return any(table.get((self.sideset_base + i) & 31) != (value >> i & 1)
                   for i in range(self.sideset_count))

    def _read_pins(self, count):
        return sum((self._pin_read((self.in_base + i) & 31) & 1) << i for i in range(count))

    # -- instructions (each returns _DONE, _STALL or _RETRY) ---------------------------
    def _jmp(self, cond, addr, t):
        if cond == 0:
            take = True
        elif cond == 1:
            take = self.x == 0
        elif cond == 2:
            take, self.x = self.x != 0, (self.x - 1) & M32
        elif cond == 3:
            take = self.y == 0
        elif cond == 4:
            take, self.y = self.y != 0, (self.y - 1) & M32
        elif cond == 5:
            take = self.x != self.y
        elif cond == 6:
            take = bool(self._pin_read(self.jmp_pin) & 1)
        else:
            take = self.osr_count < self.pull_thresh
        if take:
            self._next_pc = addr
        return _DONE

    def _irq_index(self, index):
        return (index & 4) | ((index + self.sm_index) & 3) if index & 0x10 else index & 7

    def _wait(self, arg1, index, t):
        polarity, source = arg1 >> 2, arg1 & 3
        if source == 0:
            level = self._pin_read(index) & 1
        elif source == 1:
            level = self._pin_read((self.in_base + index) & 31) & 1
        elif source == 2:
            bit = 1 << self._irq_index(index)
            level = 1 if self.irq_flags.value & bit else 0
            if polarity and level:
                self.irq_flags.value &= ~bit  # wait 1 irq clears the flag
        else:
            raise ValueError("reserved wait source")
        return _DONE if level == polarity else _STALL

    def _in(self, source, count, t):
        count = count or 32
        if self.autopush and min(32, self.isr_count + count) >= self.push_thresh \
                and len(self.rx) >= self.rx_depth:
            return _STALL
        value = (self._read_pins(count) if source == 0 else self.x if source == 1
                 else self.y if source == 2 else self.isr if source == 6
                 else self.osr if source == 7 else 0) & ((1 << count) - 1)
        if self.in_right:
            self.isr = (self.isr >> count | value << (32 - count)) & M32
        else:
            self.isr = (self.isr << count | value) & M32
        self.isr_count = min(32, self.isr_count + count)
        if self.autopush and self.isr_count >= self.push_thresh:
            self.rx.append(self.isr)
            self.isr = self.isr_count = 0
        return _DONE

    def _out(self, dest, count, t):
        count = count or 32
        if self.autopull and self.osr_count >= self.pull_thresh:
            if not self.tx:
                return _STALL
            self.osr, self.osr_count = self.tx.popleft(), 0
            return _RETRY  # cannot refill and shift out in the same cycle
        if self.out_right:
            value, self.osr = self.osr & ((1 << count) - 1), self.osr >> count
        else:
            value, self.osr = self.osr >> (32 - count), (self.osr << count) & M32
        self.osr_count = min(32, self.osr_count + count)
        if dest == 0:
            self._write_pins(self.out_base, self.out_count, value, t)
        elif dest == 1:
            self.x = value
        elif dest == 2:
            self.y = value
        elif dest == 4:
            self._write_pins(self.out_base, self.out_count, value, t, dirs=True)
        elif dest == 5:
            self._next_pc = value & 31
        elif dest == 6:
            self.isr, self.isr_count = value, count
        elif dest == 7:
            self._new_exec = self._decode(value & 0xFFFF)
        return _DONE

    def _push(self, flags, _, t):
        if flags & 2 and self.isr_count < self.push_thresh:
            return _DONE  # iffull, not full yet
        if len(self.rx) < self.rx_depth:
            self.rx.append(self.isr)
        elif flags & 1:
            return _STALL
        self.isr = self.isr_count = 0  # noblock on a full FIFO drops the data
        return _DONE

    def _pull(self, flags, _, t):
        if flags & 2 and self.osr_count < self.pull_thresh:
            return _DONE  # ifempty, not empty yet
        if self.autopull and self.osr_count == 0:
            return _DONE  # with autopull, pull on a full OSR is a no-op
        if self.tx:
            self.osr = self.tx.popleft()
        elif flags & 1:
            return _STALL
        else:
            self.osr = self.x  # noblock on an empty FIFO copies X
        self.osr_count = 0
        return _DONE

    def _mov(self, dest, arg2, t):
        source, op = arg2 & 7, arg2 >> 3 & 3
        if source == 0:
            value = self._read_pins(32)
        elif source == 5:
            level = len(self.tx) if self.status_sel == 0 else len(self.rx)
            value = M32 if level < self.status_n else 0
        else:
            value = (0, self.x, self.y, 0, 0, 0, self.isr, self.osr)[source]
        if op == 1:
            value ^= M32
        elif op == 2:
            value = _reverse32(value)
        if dest == 0:
            self._write_pins(self.out_base, self.out_count, value, t)
        elif dest == 1:
            self.x = value
        elif dest == 2:
            self.y = value
        elif dest == 4:
            self._new_exec = self._decode(value & 0xFFFF)
        elif dest == 5:
            self._next_pc = value & 31
        elif dest == 6:
            self.isr, self.isr_count = value, 0
        elif dest == 7:
            self.osr, self.osr_count = value, 0
        return _DONE

    def _irq(self, mode, index, t):
        bit = 1 << self._irq_index(index)
        flags = self.irq_flags
        if self._irq_waiting is self._current:  # retry of "irq wait": done once cleared
            if flags.value & bit:
                return _STALL
            self._irq_waiting = None
            return _DONE
        if mode & 2:
            flags.value &= ~bit
            return _DONE
        flags.value |= bit
        if self.irq_handler is not None:
            self.irq_handler(t, self._irq_index(index))
        if mode & 1:
            self._irq_waiting = self._current
            return _STALL if flags.value & bit else _RETRY
        return _DONE

    def _set(self, dest, data, t):
        if dest == 0:
            self._write_pins(self.set_base, self.set_count, data, t)
        elif dest == 1:
            self.x = data
        elif dest == 2:
            self.y = data
        elif dest == 4:
            self._write_pins(self.set_base, self.set_count, data, t, dirs=True)
        return _DONE
