// One long-lived real MicroPython VM (the official WebAssembly port) for the
// test suite.  Started once per pytest session by tests/mpvm.py.
//
//   node runner.mjs --root DIR [--allow-modules a,b,c] [--heapsize N] REL.py ...
//
// Copies each REL.py (relative to DIR) to /REL.py in the VM's filesystem, as
// mpremote would on a device (sys.path starts with '' = '/'), then serves
// requests, one JSON object per line on stdin:
//
//   {"id": 1, "op": "run", "code": "..."}   run code in a fresh __main__ dict
//   {"id": 2, "op": "reset"}                forget imported firmware modules
//
// and answers one JSON line per request on stdout:
//
//   {"id": 1, "ok": true,  "stdout": "..."}
//   {"id": 1, "ok": false, "stdout": "...", "exc_type": "ValueError",
//    "traceback": "Traceback (most recent call last): ..."}
//
// The first line written is {"ready": true, "version": "..."}.
//
// With --allow-modules, code run here (and firmware modules it imports) may
// import only those modules and the firmware's own; other imports raise
// ImportError, because the WebAssembly build freezes modules (abc, copy,
// datetime, functools, logging, ...) that the rp2/esp32 firmware lacks.

import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { dirname, join } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function parseArgs(argv) {
  const opts = { root: null, allow: null, heapsize: 1024 * 1024, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--root") opts.root = argv[++i];
    else if (a === "--allow-modules") opts.allow = argv[++i].split(",").filter(Boolean);
    else if (a === "--heapsize") opts.heapsize = parseInt(argv[++i], 10);
    else opts.files.push(a);
  }
  if (opts.files.length && !opts.root) throw new Error("files given without --root");
  return opts;
}

const opts = parseArgs(process.argv.slice(2));
let captured = [];
const mp = await loadMicroPython({
  heapsize: opts.heapsize,
  linebuffer: false,
  stdout: (bytes) => { for (const b of bytes) captured.push(b); },
  stderr: (bytes) => { for (const b of bytes) captured.push(b); },
});

// The WebAssembly port has no native emitter: there `@micropython.native` and `.viper` are a
// SyntaxError ("invalid micropython decorator"). Those decorator lines are blanked (line numbers
// kept): the function runs as bytecode, the same code at another speed -- what a port without
// native code would run. A viper function's ptr8/16/32(buf) casts become builtins that give the
// buffer itself (the firmware points them only at its own arrays). Nothing else is changed.
const NATIVE = /^[ \t]*@micropython\.(native|viper)[ \t]*$/gm;
const firmwareTop = new Set();
for (const rel of opts.files) {
  const dest = "/" + rel.split("\\").join("/");
  mp.FS.mkdirTree(dirname(dest));
  mp.FS.writeFile(dest, readFileSync(join(opts.root, rel), "utf8").replace(NATIVE, ""));
  firmwareTop.add(rel.split("/")[0].replace(/\.py$/, ""));
}

// The request wrapper runs in MicroPython.  The heap lock depth is restored
// to zero before any exception leaves it: an exception that reaches the
// JavaScript side with the heap still locked hangs the VM.  (heap_unlock()
// on an unlocked heap underflows, so read the depth first: heap_lock() then
// heap_unlock() returns the depth we started with.)
mp.runPython(`
import builtins, gc, micropython, sys

def _mpvm_pointer(buf):
    return buf
builtins.ptr8 = builtins.ptr16 = builtins.ptr32 = _mpvm_pointer

def _mpvm_unlock_all():
    micropython.heap_lock()
    n = micropython.heap_unlock()
    while n:
        n = micropython.heap_unlock()

def _mpvm_run(src):
    g = {"__name__": "__main__"}
    try:
        exec(compile(src, "<test>", "exec"), g)
    finally:
        _mpvm_unlock_all()

def _mpvm_reset(tops):
    for name in list(sys.modules):
        if name.split(".")[0] in tops:
            del sys.modules[name]
    gc.collect()

def _mpvm_guard_imports(allowed, tops):
    real_import = builtins.__import__
    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and globals is not None:
            importer = globals.get("__name__", "")
            if importer == "__main__" or importer.split(".")[0] in tops:
                top = name.split(".")[0]
                if top not in allowed and top not in tops:
                    raise ImportError("no module named '%s' on the rp2/esp32 firmware (the WebAssembly VM has it; the device does not)" % name)
        return real_import(name, globals, locals, fromlist, level)
    builtins.__import__ = guarded
`);

mp.globals.set("_mpvm_json", JSON.stringify({ tops: [...firmwareTop], allowed: opts.allow }));
mp.runPython(`
import json
_mpvm_cfg = json.loads(_mpvm_json)
_mpvm_tops = tuple(_mpvm_cfg["tops"])
if _mpvm_cfg["allowed"] is not None:
    _mpvm_guard_imports(set(_mpvm_cfg["allowed"]), _mpvm_tops)
del json, _mpvm_cfg, _mpvm_json
`);

function takeOutput() {
  const text = new TextDecoder().decode(new Uint8Array(captured));
  captured = [];
  return text;
}

function handle(req) {
  captured = [];
  try {
    if (req.op === "run") {
      mp.globals.set("_mpvm_src", req.code);
      mp.runPython("_mpvm_run(_mpvm_src)");
    } else if (req.op === "reset") {
      mp.runPython("_mpvm_reset(_mpvm_tops)");
    } else {
      return { id: req.id, ok: false, stdout: "", exc_type: "RunnerError", traceback: `unknown op ${req.op}` };
    }
    return { id: req.id, ok: true, stdout: takeOutput() };
  } catch (e) {
    if (e && e.name === "PythonError") {
      return { id: req.id, ok: false, stdout: takeOutput(), exc_type: e.type, traceback: e.message };
    }
    return { id: req.id, ok: false, stdout: takeOutput(), exc_type: "RunnerError", traceback: String(e && e.stack || e) };
  }
}

captured = [];
mp.runPython("print(sys.version, end='')");
process.stdout.write(JSON.stringify({ ready: true, version: takeOutput() }) + "\n");

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  if (!line.trim()) continue;
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    process.stdout.write(JSON.stringify({ id: null, ok: false, stdout: "", exc_type: "RunnerError", traceback: `bad request: ${e}` }) + "\n");
    continue;
  }
  process.stdout.write(JSON.stringify(handle(req)) + "\n");
}
