// The silicon tier's chip: an RP2040 (rp2040js, instruction by instruction, 125 MHz)
// running the official MicroPython UF2, stepped in lockstep by the Python side
// (host/myotone/silicon/chip.py), which owns virtual time and the analog plant.
//
// Channel: text lines, Python -> rig on fd --in, rig -> Python on fd --out.
//   in:  run T | rx HEX | pin GPIO 0|1|z | i2c ADDR 0|1 | hang 0|1 | adc CODE | reset | quit
//   out: pin T GPIO 0|1|z | i2c T ADDR HEX | adc? T CHANNEL | tx HEX | flash T erase|prog OFFSET LEN
//        | pin? T GPIO 0|1|z (an edge of a --sync-pins pin, answered `in [GPIO LEVEL DELAY_NS]...`)
//        | call T DURATION_NS K (the K-th --probe function, entry to return) | reset T REASON
//        | done T BUSY_NS | log TEXT     (BUSY_NS: the core's time not asleep, in total)
//   profile: `prof K` starts counting the core's cycles per instruction address (K >= 0: only
//   inside the K-th probe's call, interrupts nested in it included; -1: all); `prof?` answers
//   `pc ADDR CYCLES`... then `prof end` (and clears the counts)
// While the rig waits for `adc CODE` the chip stands still: the plant answers for the
// instant of the conversion. Likewise for an edge of a --sync-pins pin (the over-current
// latch's OC_CLEAR and OC_TEST): the plant answers with the inputs it drives, now or
// DELAY_NS later (the latch's Q, which sets ~10 us after OC_TEST rises).
//
// Fixes to rp2040js 1.4.1 gaps that would otherwise give false findings (issue 15):
//  1. PIO stepped on the simulated clock at its CLKDIV, delay cycles included (rp2040js runs
//     it on setTimeout, an instruction a step);
//  2. FIFO join (FJOIN_TX/RX) gives an 8-deep FIFO;
//  3. the CDC OUT endpoint read is held until the host sends (a NAK), not completed empty
//     every 10 us;
//  4. pull resistors: an undriven input reads its pull-up/pull-down;
//  5. an expired (or triggered) watchdog resets the chip: a fresh core and peripherals, the
//     same flash, WATCHDOG.REASON kept;
//  6. flash erase/program (the boot ROM's flash_range_erase/_program, which drive the SSI
//     rp2040js drops) are done on the flash array, with the chip stalled for the typical
//     W25Q16 time, and written through to the filesystem image file;
//  7. while the core sleeps with no alarm pending, time still advances (to the next PIO
//     step or the end of the slice).
// Not modelled: the XIP cache (every flash fetch is as fast as SRAM) and core 1: real
// silicon is somewhat slower than what this measures.
import fs from 'fs';
import { RP2040, Simulator, USBCDC, FIFO, ConsoleLogger, LogLevel } from 'rp2040js';

const SimulationClock = new Simulator().clock.constructor;   // not exported by itself

const FLASH_XIP = 0x10000000;
const CYCLE_NS = 8;                       // 125 MHz
const ERASE_NS_PER_SECTOR = 45_000_000;   // W25Q16JV sector erase, typical (datasheet: 45 ms)
const PROGRAM_NS_PER_PAGE = 400_000;      // page program, typical (0.4 ms per 256 bytes)
const BKPT_ERASE = 0xe0, BKPT_PROGRAM = 0xe1;
const WATCHDOG_REASON_TIMER = 1, WATCHDOG_REASON_FORCE = 2;

const args = Object.fromEntries(process.argv.slice(2).map((a) => a.replace(/^--/, '').split('=')));
const bootrom = fs.readFileSync(args.bootrom);
const uf2 = fs.readFileSync(args.uf2);
const fsPath = args.fs;
const fsOffset = Number(args['fs-offset'] ?? 0xa0000);
// functions whose calls are timed (`call T DURATION_NS K`, K: the probe's index), outermost only
// (a call ends at its return address at its entry's stack depth, not where an interrupt nested
// inside it passes the same address)
const probes = args.probe ? args.probe.split(',').map(Number) : [];
const syncPins = new Set(args['sync-pins'] ? args['sync-pins'].split(',').map(Number) : []);
const flash = new Uint8Array(2 * 1024 * 1024).fill(0xff);
for (let off = 0; off + 512 <= uf2.length; off += 512) {
  const b = uf2.subarray(off, off + 512);
  if (b.readUInt32LE(0) !== 0x0a324655 || b.readUInt32LE(4) !== 0x9e5d5157) continue;
  const addr = b.readUInt32LE(12), size = b.readUInt32LE(16);
  if (addr >= FLASH_XIP && addr + size <= FLASH_XIP + flash.length) flash.set(b.subarray(32, 32 + size), addr - FLASH_XIP);
}
const fsFd = fs.openSync(fsPath, 'r+');
flash.set(fs.readFileSync(fsPath), fsOffset);

// ---- the channel ------------------------------------------------------------------------
const IN = Number(args.in), OUT = Number(args.out);
let outBuf = [];
const send = (line) => { outBuf.push(line); if (outBuf.length > 256) flush(); };
function flush() {
  if (!outBuf.length) return;
  const data = Buffer.from(outBuf.join('\n') + '\n');
  outBuf = [];
  let off = 0;
  while (off < data.length) off += fs.writeSync(OUT, data, off);
}
let inPending = '';
const inChunk = Buffer.alloc(65536);
function readLine() {
  for (;;) {
    const nl = inPending.indexOf('\n');
    if (nl >= 0) { const line = inPending.slice(0, nl); inPending = inPending.slice(nl + 1); return line; }
    let n;
    try { n = fs.readSync(IN, inChunk, 0, inChunk.length, null); }
    catch (e) { if (e.code === 'EAGAIN') continue; throw e; }
    if (n === 0) process.exit(0);
    inPending += inChunk.toString('latin1', 0, n);
  }
}

// ---- the chip ---------------------------------------------------------------------------
const external = new Map();               // GPIO -> true/false driven from outside (absent: floating)
const i2cPresent = new Map([[0x60, true]]);
let mcu, clock, cdc, usbHeld, stallUntil, machines, pioNext, resetPending, hung;

function boot(reason) {
  const now = clock ? clock.nanos : 0;
  clock = new SimulationClock();
  clock.nanosCounter = now;
  mcu = new RP2040(clock);
  mcu.logger = new ConsoleLogger(LogLevel.Error);
  mcu.loadBootrom(new Uint32Array(bootrom.buffer, bootrom.byteOffset, bootrom.length / 4));
  mcu.flash.set(flash);                   // loadBootrom's reset blanked it
  watchdog().reason = reason;
  patchRom();
  wireUsb();
  wirePins();
  wireI2c();
  wirePio();
  mcu.adc.onADCRead = (channel) => {
    flush();
    send(`adc? ${Math.round(clock.nanos)} ${channel}`);
    flush();
    const reply = readLine().split(' ');     // adc CODE [GPIO LEVEL]...: inputs the plant drives
    mcu.adc.channelValues[channel] = Number(reply[1]) & 0xfff;
    for (let k = 2; k + 1 < reply.length; k += 2) drive(Number(reply[k]), reply[k + 1] === '1');
    mcu.adc.currentChannel = channel;
    mcu.adc.sampleAlarm.schedule(mcu.adc.sampleTime * 1000);
  };
  watchdog().onWatchdogTrigger = () => {   // 5. rp2040js re-fires an expired watchdog forever
    const wd = watchdog();
    wd.alarm.enable = false;
    wd.timer.enable = false;
    resetPending = wd.reason;
  };
  stallUntil = 0;
  resetPending = 0;
  hung = false;
  callRet.fill(-1);
  mcu.core.PC = FLASH_XIP;                 // boot2 at the start of flash, as the boot ROM jumps there
}

// 6. the boot ROM's flash_range_erase / flash_range_program, done on the array
function watchdog() { return mcu.peripherals[0x40058]; }

function patchRom() {
  const rom = new Uint8Array(mcu.bootrom.buffer);
  const half = (a) => rom[a] | (rom[a + 1] << 8);
  const table = half(0x14);
  for (let p = table; half(p); p += 4) {
    const code = String.fromCharCode(rom[p], rom[p + 1]);
    const fn = half(p + 2) & ~1;
    if (code === 'RE' || code === 'RP') {
      const bkpt = 0xbe00 | (code === 'RE' ? BKPT_ERASE : BKPT_PROGRAM);
      rom[fn] = bkpt & 0xff; rom[fn + 1] = bkpt >> 8;
    }
  }
  mcu.onBreak = (code) => {
    const r = mcu.core.registers;
    if (code === BKPT_ERASE) {
      const off = r[0] >>> 0, len = r[1] >>> 0;
      flash.fill(0xff, off, off + len);
      mcu.flash.fill(0xff, off, off + len);
      persist(off, len);
      stallUntil = clock.nanos + ERASE_NS_PER_SECTOR * Math.ceil(len / 4096);
      send(`flash ${Math.round(clock.nanos)} erase ${off} ${len}`);
    } else if (code === BKPT_PROGRAM) {
      const off = r[0] >>> 0, src = r[1] >>> 0, len = r[2] >>> 0;
      for (let i = 0; i < len; i++) {
        const v = flash[off + i] & mcu.readUint8(src + i);   // NOR: programming only clears bits
        flash[off + i] = v; mcu.flash[off + i] = v;
      }
      persist(off, len);
      stallUntil = clock.nanos + PROGRAM_NS_PER_PAGE * Math.ceil(len / 256);
      send(`flash ${Math.round(clock.nanos)} prog ${off} ${len}`);
    } else {
      send(`log breakpoint ${code} at ${(r[15] - 2).toString(16)}`);
      return;
    }
    mcu.core.PC = r[14] & ~1;            // return to the caller
  };
}

function persist(off, len) {
  const start = Math.max(off, fsOffset), end = Math.min(off + len, flash.length);
  if (end > start) fs.writeSync(fsFd, flash, start, end - start, start - fsOffset);
}

// 3. the host side of USB CDC, with the OUT read held until the host sends (as a NAK would);
// what the host sends waits in hostQueue while the 512-byte FIFO is full (USB flow control)
let hostQueue = [], hostHead = 0;
function wireUsb() {
  cdc = new USBCDC(mcu.usbCtrl);
  usbHeld = null;
  hostQueue = []; hostHead = 0;             // a reset drops what the host had sent
  cdc.onSerialData = (data) => send(`tx ${Buffer.from(data).toString('hex')}`);
  mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
    if (endpoint !== cdc.outEndpoint) return;
    usbHeld = { endpoint, size };
    pump();
  };
}
function pump() {
  while (hostHead < hostQueue.length && !cdc.txFIFO.full) cdc.sendSerialByte(hostQueue[hostHead++]);
  if (hostHead === hostQueue.length) { hostQueue = []; hostHead = 0; }
  if (!usbHeld || cdc.txFIFO.empty) return;
  const { endpoint, size } = usbHeld;
  usbHeld = null;
  const n = Math.min(size, cdc.txFIFO.itemCount);
  const buffer = new Uint8Array(n);
  for (let i = 0; i < n; i++) buffer[i] = cdc.txFIFO.pull();
  mcu.usbCtrl.endpointReadDone(endpoint, buffer);
  while (hostHead < hostQueue.length && !cdc.txFIFO.full) cdc.sendSerialByte(hostQueue[hostHead++]);
}
function hostSends(bytes) {
  for (const b of bytes) hostQueue.push(b);
  pump();
}

// 4. pins: outputs reported with their time; inputs read what drives them or their pull
function wirePins() {
  for (const pin of mcu.gpio) {
    const check = pin.checkForUpdates.bind(pin);
    pin.checkForUpdates = () => { resolveInput(pin); check(); };
    pin.addListener((state) => {
      const v = state === 1 ? '1' : state === 0 ? '0' : 'z';
      if (!syncPins.has(pin.index)) { send(`pin ${Math.round(clock.nanos)} ${pin.index} ${v}`); return; }
      flush();
      send(`pin? ${Math.round(clock.nanos)} ${pin.index} ${v}`);
      flush();
      const reply = readLine().split(' ');   // in [GPIO LEVEL DELAY_NS]...
      for (let k = 1; k + 2 < reply.length; k += 3) {
        const gpio = Number(reply[k]), level = reply[k + 1] === '1', delay = Number(reply[k + 2]);
        if (delay <= 0) drive(gpio, level);
        else later(gpio, level, delay);
      }
    });
    resolveInput(pin);
  }
}
// an input the plant drives: now, or at an alarm (a later answer for the same pin replaces it)
const pending = new Map();                // GPIO -> its alarm
function drive(gpio, level) {
  external.set(gpio, level);
  resolveInput(mcu.gpio[gpio]);
}
function later(gpio, level, delayNs) {
  let alarm = pending.get(gpio);
  if (!alarm || alarm.clock !== clock) {  // a boot made a new clock
    alarm = clock.createAlarm(() => drive(gpio, alarm.level));
    pending.set(gpio, alarm);
  }
  alarm.level = level;
  alarm.schedule(delayNs);
}
function resolveInput(pin) {
  // the pad's input buffer reads the pin's level: what the chip drives when its output is
  // enabled (GPIO, PIO, PWM: rp2040js read only the outside), else the outside or the pull
  const ext = external.get(pin.index);
  const level = pin.outputEnable ? pin.outputValue : ext !== undefined ? ext : pin.pullupEnabled ? true : false;
  if (level !== pin.rawInputValue) pin.setInputValue(level);
}

// MCP4725 (and any device on the bus): ACK while present; each write transaction reported at STOP
function wireI2c() {
  for (const [bus, i2c] of mcu.i2c.entries()) {
    let addr = -1, bytes = [];
    i2c.onStart = () => i2c.completeStart();
    i2c.onConnect = (address) => {
      addr = address; bytes = [];
      i2c.completeConnect(bus === 0 && !!i2cPresent.get(address));
    };
    i2c.onWriteByte = (value) => { bytes.push(value); i2c.completeWrite(true); };
    i2c.onReadByte = () => i2c.completeRead(0xff);
    i2c.onStop = () => {
      if (bytes.length) send(`i2c ${Math.round(clock.nanos)} ${addr} ${Buffer.from(bytes).toString('hex')}`);
      bytes = [];
      i2c.completeStop();
    };
  }
}

// 1, 2. PIO on the simulated clock, at each state machine's divider; joined FIFOs 8 deep
function wirePio() {
  machines = [];
  pioNext = Infinity;
  for (const pio of mcu.pio) {
    pio.run = () => {};                  // never on setTimeout: stepped below
    for (const sm of pio.machines) {
      sm.nextNs = Infinity;
      const write = sm.writeUint32.bind(sm);
      sm.writeUint32 = (offset, value) => {
        const joins = sm.shiftCtrl >>> 30;
        write(offset, value);
        if (offset === 0x08 && (value >>> 30) !== joins) join(sm, value >>> 30);
        if (offset === 0x10) sm.pio.checkChangedPins();   // SMx_INSTR (sm.exec): its pin writes show
      };
    }
    const write = pio.writeUint32.bind(pio);
    pio.writeUint32 = (offset, value) => { write(offset, value); if (offset === 0) enabledChanged(); };
  }
}
function join(sm, joins) {
  sm.txFIFO = new FIFO(joins & 1 ? 8 : joins & 2 ? 0 : 4);
  sm.rxFIFO = new FIFO(joins & 2 ? 8 : joins & 1 ? 0 : 4);
}
function periodNs(sm) {
  const div = (sm.clockDivInt || 65536) + sm.clockDivFrac / 256;
  return div * CYCLE_NS;
}
function enabledChanged() {
  const now = clock.nanos;
  machines = [];
  for (const pio of mcu.pio) for (const sm of pio.machines) {
    if (sm.enabled) {
      if (sm.nextNs === Infinity) sm.nextNs = now + periodNs(sm);
      machines.push(sm);
    } else sm.nextNs = Infinity;
  }
  pioNext = Math.min(Infinity, ...machines.map((m) => m.nextNs));
}
function stepPio(upTo) {
  while (pioNext <= upTo) {
    const t = pioNext;
    if (t > clock.nanos) clock.tick(t - clock.nanos);
    let next = Infinity;
    for (const sm of machines) {
      if (sm.nextNs <= t) {               // one instruction, then its delay cycles (a stall: 1 cycle)
        const c0 = sm.cycles;
        sm.step();
        sm.pio.checkChangedPins();
        sm.nextNs += Math.max(1, sm.cycles - c0) * periodNs(sm);
      }
      if (sm.nextNs < next) next = sm.nextNs;
    }
    pioNext = next;
  }
}
function advanceTo(t) {
  if (pioNext <= t) stepPio(t);
  if (t > clock.nanos) clock.tick(t - clock.nanos);
}

// ---- the run loop -----------------------------------------------------------------------
let busyNs = 0;
const callT0 = probes.map(() => 0), callRet = probes.map(() => -1), callSp = probes.map(() => 0);     // busy: executing instructions or stalled on flash
let profK = null;                         // null: not profiling; -1: every instruction; K: in probe K
const profCycles = new Map();             // instruction address -> cycles spent there
function run(until) {
  while (clock.nanos < until) {
    if (resetPending) { const reason = resetPending; boot(reason); send(`reset ${Math.round(clock.nanos)} ${reason === WATCHDOG_REASON_FORCE ? 'force' : 'watchdog'}`); continue; }
    const core = mcu.core;
    if (stallUntil > clock.nanos) { const t0 = clock.nanos; advanceTo(Math.min(stallUntil, until)); busyNs += clock.nanos - t0; continue; }
    if (core.waiting || hung) {
      // 7. asleep (or hung: the core stopped, timers and the watchdog run on): on to the
      // next alarm, PIO step, or the end of the slice
      let next = until;
      if (clock.nextAlarm && clock.nextAlarm.nanos < next) next = clock.nextAlarm.nanos;
      advanceTo(Math.max(next, clock.nanos + 1));
      continue;
    }
    for (let k = 0; k < probes.length; k++) {
      const pc = core.PC;
      if (pc === probes[k] && callRet[k] < 0) { callT0[k] = clock.nanos; callRet[k] = core.registers[14] & ~1; callSp[k] = core.SP; }
      else if (pc === callRet[k] && core.SP >= callSp[k]) { send(`call ${Math.round(callT0[k])} ${Math.round(clock.nanos - callT0[k])} ${k}`); callRet[k] = -1; }
    }
    const pc = core.PC;
    const cycles = core.executeInstruction();
    if (profK !== null && (profK < 0 || callRet[profK] >= 0)) profCycles.set(pc, (profCycles.get(pc) ?? 0) + cycles);
    const t = clock.nanos + cycles * CYCLE_NS;
    busyNs += cycles * CYCLE_NS;
    if (pioNext <= t) stepPio(t);
    clock.tick(t - clock.nanos);
  }
}

boot(0);
send('log ready');
flush();
for (;;) {
  const line = readLine();
  const [cmd, a, b] = line.split(' ');
  if (cmd === 'run') { run(Number(a)); send(`done ${Math.round(clock.nanos)} ${busyNs}`); flush(); }
  else if (cmd === 'rx') hostSends(Buffer.from(a, 'hex'));
  else if (cmd === 'pin') {
    const gpio = Number(a);
    if (b === 'z') external.delete(gpio); else external.set(gpio, b === '1');
    resolveInput(mcu.gpio[gpio]);
  }
  else if (cmd === 'hang') hung = a === '1';
  else if (cmd === 'prof') { profK = Number(a); profCycles.clear(); }
  else if (cmd === 'prof?') {
    for (const [pc, c] of profCycles) send(`pc ${pc} ${c}`);
    send('prof end'); flush();
    profK = null; profCycles.clear();
  }
  else if (cmd === 'i2c') i2cPresent.set(Number(a), b === '1');
  else if (cmd === 'reset') { boot(0); send(`reset ${Math.round(clock.nanos)} power`); flush(); }
  else if (cmd === 'quit') { flush(); process.exit(0); }
}
