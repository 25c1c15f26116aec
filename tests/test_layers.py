"""The firmware's layers, read from its import graph and its calls (docs/architecture.md).

* Only the hal drivers and the wiring (hardware.py, safe_boot.py, app.py,
  boot.py, main.py) reach the hardware modules (machine, rp2, esp32) or
  the hal: core and app logic import no hardware, directly or through
  another module, so it runs on CPython, the MicroPython VM and a board
  alike.
* Only the output stage (stage.py) switches the output: outside it, the
  clamped DAC writer (output.py), the drivers and the wiring, no code calls
  a switching method on the DAC, the rail, the bridge or the pulse
  back-end (SAFETY.md "The output stage").
* The supervisor is no hub: it hands each part (report, service, the panel,
  the runner, the file commands, the checkpoints ...) the collaborators it
  needs, never itself, and no module but the wiring takes or reaches
  through a supervisor.
"""
import ast

import pytest
from pathlib import Path

from firmware_paths import FIRMWARE_DIR

HARDWARE = {"machine", "rp2", "esp32"}
WIRING = {"myotone.hardware", "myotone.safe_boot", "myotone.app", "boot", "main"}
STAGE = {"myotone.stage", "myotone.output"}       # the switch and the clamped DAC writer it uses
SWITCHING = {"enable", "rail_off", "bridge_off", "zero", "set_ua", "off", "start", "stop", "write", "value"}
OUTPUT_PARTS = ("output", "_out", "out", "pulse", "_pulse", "dac", "_dac", "hv", "_hv", "bridge", "_bridge")


def _modules():
    out = {}
    for path in sorted(FIRMWARE_DIR.rglob("*.py")):
        rel = path.relative_to(FIRMWARE_DIR).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return out


def _imports(name, tree, known):
    """Every module `name` imports, anywhere in the file (function-level imports too)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            found.add(base)
            for a in node.names:                         # from myotone import limits -> myotone.limits
                if f"{base}.{a.name}" in known:
                    found.add(f"{base}.{a.name}")
    return found


def _is_hal(name):
    return name.startswith("myotone.hal")


def test_only_hal_and_the_wiring_import_hardware():
    mods = _modules()
    graph = {name: _imports(name, tree, mods) for name, tree in mods.items()}
    assert "myotone.stage" in graph and any(_is_hal(n) for n in graph)
    direct = {n for n, deps in graph.items() if deps & HARDWARE}
    assert direct and all(_is_hal(n) or n in WIRING for n in direct), sorted(direct)
    for name in graph:
        if _is_hal(name) or name in WIRING:
            continue
        seen, stack = set(), [name]                     # what it reaches, transitively
        while stack:
            for dep in graph.get(stack.pop(), ()):
                if dep not in seen:
                    seen.add(dep)
                    stack.append(dep)
        bad = sorted(d for d in seen if d in HARDWARE or _is_hal(d) or d in WIRING)
        assert bad == [], f"{name} reaches hardware through {bad}"


def _receiver(node):
    """The last name of a call's receiver: `sup.stage.pulse.start()` -> 'pulse'."""
    v = node.func.value
    if isinstance(v, ast.Attribute):
        return v.attr
    if isinstance(v, ast.Name):
        return v.id
    return ""


def test_only_the_output_stage_switches_the_output():
    offenders = []
    for name, tree in _modules().items():
        if name in STAGE or name in WIRING or _is_hal(name):
            continue
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in SWITCHING and _receiver(node) in OUTPUT_PARTS):
                offenders.append(f"{name}:{node.lineno} {_receiver(node)}.{node.func.attr}()")
    assert offenders == [], offenders


def test_the_check_sees_a_violation():
    """The two checks are not vacuous: a core module importing machine, or a runner
    switching the rail itself, is found."""
    tree = ast.parse("import machine\nclass R:\n    def go(self, sup):\n        sup.output.enable()\n")
    assert "machine" in _imports("myotone.runner", tree, {})
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    assert any(c.func.attr in SWITCHING and _receiver(c) in OUTPUT_PARTS for c in calls)
    assert Path(FIRMWARE_DIR, "myotone", "stage.py").is_file()


def test_safety_numbers_are_named_only_in_limits():
    """The 1000 uA ceiling (and every other SAFETY.md number) is defined once, in
    limits.py: no other firmware module assigns a constant of the same name."""
    limits = _modules()["myotone.limits"]
    names = {t.id for node in limits.body if isinstance(node, ast.Assign) for t in node.targets
             if isinstance(t, ast.Name)}
    assert "ABS_CEILING_UA" in names
    again = []
    for name, tree in _modules().items():
        if name == "myotone.limits":
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign):
                again += [f"{name}.{t.id}" for t in node.targets if isinstance(t, ast.Name) and t.id in names]
    assert again == [], again


# ---- the supervisor is no shared-state hub ---------------------------------------------
HUB = "myotone.supervisor"
HUB_NAMES = {"sup", "supervisor", "_sup", "_supervisor"}
MAY_BUILTINS = {"getattr"}        # handle(): `cmd_` + name looked up on the supervisor itself


def _takes_or_reaches_the_hub(tree):
    """Where a module takes a supervisor or reaches through one: a parameter named for it,
    an attribute chain through such a name (`sup.x`, `self._sup.x`), an import of the
    supervisor module or of the wiring that holds the running one (app.supervisor)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None and arg.arg in HUB_NAMES:
                    found.append(f"{node.lineno}: parameter {arg.arg}")
        elif isinstance(node, ast.Attribute):
            v = node.value
            if ((isinstance(v, ast.Name) and v.id in HUB_NAMES)
                    or (isinstance(v, ast.Attribute) and v.attr in HUB_NAMES)):
                found.append(f"{node.lineno}: .{node.attr} through {ast.unparse(v)}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name in (HUB, "myotone.app")]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = {f"{node.module}.{a.name}" for a in node.names} | {node.module}
            found += [f"{node.lineno}: imports {n}" for n in sorted(names) if n in (HUB, "myotone.app")]
    return found


def _hands_itself_out(tree):
    """Where the supervisor gives another object itself: `self` passed to a call (but
    getattr), stored into something else, or returned."""
    found = []

    def is_self(n):
        return isinstance(n, ast.Name) and n.id == "self"

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.id if isinstance(node.func, ast.Name) else ""
            if name not in MAY_BUILTINS and (any(is_self(a) for a in node.args)
                                             or any(is_self(k.value) for k in node.keywords)):
                found.append(f"{node.lineno}: {ast.unparse(node.func)}(self)")
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and is_self(node.value):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Return) and is_self(node.value):
            found.append(f"{node.lineno}: return self")
    return found


def test_no_module_takes_or_reaches_into_the_supervisor():
    """report, service, the panel, the runner, the file commands, the checkpoints ... are
    built with narrow collaborators: none takes the supervisor, and it never hands itself out."""
    mods = _modules()
    assert HUB in mods and {"myotone.report", "myotone.service", "myotone.standalone"} <= set(mods)
    offenders = []
    for name, tree in mods.items():
        if name in (HUB, "myotone.app", "main"):     # the hub, the wiring that builds it, main.py runs it
            continue
        offenders += [f"{name}:{f}" for f in _takes_or_reaches_the_hub(tree)]
    offenders += [f"{HUB}:{f}" for f in _hands_itself_out(mods[HUB])]
    assert offenders == [], offenders


def test_the_hub_check_sees_a_violation():
    """Not vacuous: yesterday's shapes -- a report function taking `sup`, a panel keeping the
    supervisor it was given, a supervisor passing itself -- are each found."""
    reaching = ast.parse(
        "def status(sup):\n    return sup.session.state\n"
        "class Panel:\n    def __init__(self, owner):\n        self._sup = owner\n"
        "    def poll(self, now):\n        return self._sup.fault\n"
        "from myotone.supervisor import Supervisor\n")
    found = _takes_or_reaches_the_hub(reaching)
    assert any("parameter sup" in f for f in found) and any(".session through sup" in f for f in found)
    assert any(".fault through self._sup" in f for f in found) and any("myotone.supervisor" in f for f in found)
    hub = ast.parse(
        "class Supervisor:\n"
        "    def __init__(self):\n        self.panel = Panel(self.stop)\n        self.files.owner = self\n"
        "    def cmd_status(self, args):\n        return report.status(self)\n"
        "    def cmd_board(self, args):\n        return service.board(board=self)\n"
        "    def handle(self, cmd):\n        return getattr(self, 'cmd_' + cmd)\n")
    out = _hands_itself_out(hub)
    assert len(out) == 3 and not any("getattr" in f or "Panel" in f for f in out), out


@pytest.mark.parametrize("module, name", [("myotone.supervisor", "Supervisor"), ("myotone.session", "Session"),
                                          ("myotone.output", "Output"), ("myotone.stage", "OutputStage"),
                                          ("myotone.monitor", "Monitor")])
def test_the_classes_the_tick_stores_to_have_no_properties(module, name):
    """On MicroPython a class with a property makes every `self.x = ...` look x up in the class's
    table first, and the bookkeeping tick stores to these objects on every call: with two
    properties the Supervisor's tick cost ~50 us more on the chip (docs/architecture.md); with
    six, Session.step's one store of its target made the step 49 us instead of ~30."""
    tree = _modules()[module]
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name]
    decorated = [f"{f.name} @{ast.unparse(d)}" for f in cls.body if isinstance(f, ast.FunctionDef)
                 for d in f.decorator_list if "property" in ast.unparse(d) or "setter" in ast.unparse(d)]
    assert decorated == []


def _imports_at_call_time(tree):
    """(function, module) for every import of a hardware module inside a function."""
    found = []
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                found += [(fn.name, n) for n in names if n.split(".")[0] in HARDWARE]
    return found


def test_no_function_imports_a_hardware_module_when_called():
    """machine is an extensible built-in module on MicroPython: `import machine` in a function
    searches the filesystem (littlefs) at every call before taking the built-in -- 1 to 8 ms on
    the RP2040; PioPulse.finish(), run by the bookkeeping tick at the end of every session, did
    so. Hardware modules are imported once, at module level, or their functions passed in (the
    wiring, at boot, may import a driver module lazily: only hardware modules are checked)."""
    found = {name: _imports_at_call_time(tree) for name, tree in _modules().items()}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_call_time_import_check_sees_a_violation():
    tree = ast.parse("def finish(self):\n    import machine\n    machine.disable_irq()\n")
    assert _imports_at_call_time(tree) == [("finish", "machine")]
