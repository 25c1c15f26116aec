#!/usr/bin/env python3
"""Type-check the firmware against the official MicroPython stubs, per port.

Each port (rp2, esp32) has its own stub directory, ``.stubs/<port>``, made by
``pip install --target`` of the pinned ``micropython-<port>-stubs`` package
(``--install-stubs`` does that, idempotently).  pyright is run once per port
with that directory as its *only* typeshed/stdlib and with an empty fake
virtualenv, so nothing from the host CPython leaks in: ``machine.DAC`` checked
as rp2, or ``import dataclasses`` anywhere, is an error.

Which files are checked for which port: see ``tools/firmware_ports.json`` and
docs/micropython.md.  In short, a file that imports ``rp2`` is rp2-only, one
that imports ``esp32``/``esp`` is esp32-only, anything else is checked for
every port; ``overrides`` in the JSON file fix the cases this rule gets wrong.

A few things the stubs cannot express are checked here as extra rules
(reported with rule names starting ``myotone-``):

* ``myotone-esp32-hard-timer``: ``Timer(..., hard=True)`` / ``.init(...,
  hard=True)`` in a file checked for esp32.  The esp32 stubs accept ``hard``
  but the esp32 port raises ``ValueError: hard Timers are not implemented``.
* ``myotone-runtime-import``: importing a module that the stubs provide for
  type checking only (``typing``, ``__future__``, ``abc``, ``enum``, ...: the
  stubs' stdlib/ minus ``STDLIB_ON_DEVICE``) and that does not exist on the
  device, unless the import is guarded by
  ``if TYPE_CHECKING:``/``if False:`` or a ``try: ... except ImportError``.

Diagnostics pyright cannot get right are dropped: undefined names, bad calls
and ``[delay]`` subscripts inside ``@rp2.asm_pio`` functions, whose PIO
assembler names (``set``, ``pins``, ``jmp`` ...) the decorator injects at run
time; and the rules in INFERENCE_NOISE_RULES are off for all firmware.  Known
findings listed under ``accepted`` in firmware_ports.json do not fail the check.

Exit status: 0 clean, 1 errors found, 2 setup problem (stubs or pyright missing).
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIRMWARE = REPO / "firmware"
DEFAULT_CONFIG = REPO / "tools" / "firmware_ports.json"
DEFAULT_STUBS_ROOT = REPO / ".stubs"

# Pinned stub packages, one directory per port.  The stub version names the
# MicroPython release it describes (1.29.0); .postN is the stub build.
STUB_REQUIREMENTS = {
    "rp2": ["micropython-rp2-stubs==1.29.0.post1", "micropython-stdlib-stubs==1.29.0.post2"],
    "esp32": ["micropython-esp32-stubs==1.29.0.post1", "micropython-stdlib-stubs==1.29.0.post2"],
}
PIN_MARKER = ".myotone-stubs-pin"

# The stub packages' stdlib/ folder mixes modules the firmware really has with
# typeshed modules that are there only so annotations type-check (typing,
# __future__, abc, enum ...).  These are the real ones; the rest of stdlib/ is
# type-only.  Top-level modules of a stub package are all on the device.
STDLIB_ON_DEVICE = {
    "_asyncio", "array", "asyncio", "builtins", "collections", "io", "json", "os", "re", "ssl", "struct", "sys",
}

# pyright rules turned off for the whole firmware (see pyright_config).
INFERENCE_NOISE_RULES = (
    "reportOperatorIssue", "reportIndexIssue", "reportOptionalSubscript", "reportOptionalMemberAccess",
    "reportOptionalIterable", "reportOptionalCall", "reportOptionalOperand", "reportOptionalContextManager",
)

# pyright rules that the PIO assembler DSL inside @asm_pio functions trips.
ASM_PIO_NOISE = {
    "reportUndefinedVariable", "reportCallIssue", "reportArgumentType", "reportIndexIssue", "reportOptionalSubscript",
}


class SetupError(Exception):
    """The checker cannot run (stubs or pyright missing); not a firmware error."""


@dataclass(frozen=True)
class Diagnostic:
    path: Path
    line: int  # 1-based
    col: int  # 1-based
    port: str
    severity: str
    message: str
    rule: str

    def format(self, root: Path) -> str:
        try:
            shown = self.path.relative_to(root)
        except ValueError:
            shown = self.path
        message = self.message.replace("\n", "\n    ")
        rule = f" ({self.rule})" if self.rule else ""
        return f"{shown}:{self.line}:{self.col}: [{self.port}] {self.severity}: {message}{rule}"


# --------------------------------------------------------------------------
# Configuration: which file for which port
# --------------------------------------------------------------------------


def load_config(path: Path = DEFAULT_CONFIG) -> dict:
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    for key in ("ports", "port_modules", "overrides"):
        if key not in config:
            raise SetupError(f"{path}: missing key {key!r}")
    for entry in config.setdefault("accepted", []):
        if not entry.get("file") or not entry.get("rule") or not entry.get("why"):
            raise SetupError(f"{path}: every 'accepted' entry needs file, rule and why: {entry}")
    return config


def discover(firmware_dir: Path) -> list[Path]:
    return sorted(p for p in firmware_dir.rglob("*.py") if "__pycache__" not in p.parts)


def imported_top_modules(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def ports_for(path: Path, firmware_dir: Path, config: dict) -> list[str]:
    rel = path.relative_to(firmware_dir).as_posix()
    for pattern, ports in config["overrides"].items():
        if fnmatch.fnmatchcase(rel, pattern):
            unknown = set(ports) - set(config["ports"])
            if unknown:
                raise SetupError(f"firmware_ports.json: {pattern}: unknown ports {sorted(unknown)}")
            return list(ports)
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported = imported_top_modules(tree)
    matched = [port for port in config["ports"] if imported & set(config["port_modules"].get(port, ()))]
    if len(matched) > 1:
        raise SetupError(
            f"{rel} imports the port modules of {matched}; say which ports it is for "
            f"in tools/firmware_ports.json 'overrides'"
        )
    return matched or list(config["ports"])


def plan(firmware_dir: Path, config: dict, files: list[Path] | None = None) -> dict[str, list[Path]]:
    """Map each port to the files checked for it."""
    chosen = files if files is not None else discover(firmware_dir)
    by_port: dict[str, list[Path]] = {port: [] for port in config["ports"]}
    for path in chosen:
        for port in ports_for(path, firmware_dir, config):
            by_port[port].append(path)
    return by_port


# --------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------


def stubs_dir(port: str, stubs_root: Path) -> Path:
    return stubs_root / port


def _module_names(folder: Path) -> set[str]:
    names = set()
    for entry in folder.iterdir():
        if entry.is_file() and entry.name.endswith(".pyi"):
            names.add(entry.name[:-4])
        elif entry.is_dir() and (entry / "__init__.pyi").exists():
            names.add(entry.name)
    names.discard("__builtins__")
    return names


def stub_modules(stubs: Path) -> tuple[set[str], set[str]]:
    """(modules the port's firmware has, modules that exist only in the stubs)."""
    if not (stubs / "stdlib").is_dir():
        raise SetupError(f"{stubs} is not an installed MicroPython stub package; run\n"
                         f"    python tools/typecheck_firmware.py --install-stubs")
    device = _module_names(stubs) - {"_mpy_shed"}
    stdlib = _module_names(stubs / "stdlib")
    device |= stdlib & STDLIB_ON_DEVICE
    type_only = (stdlib - STDLIB_ON_DEVICE) | {"_mpy_shed"}
    return device, type_only - device


def stubs_current(port: str, stubs_root: Path) -> bool:
    marker = stubs_dir(port, stubs_root) / PIN_MARKER
    want = "\n".join(STUB_REQUIREMENTS[port])
    return marker.is_file() and marker.read_text(encoding="utf-8").strip() == want


def install_stubs(ports: list[str], stubs_root: Path, python: str = sys.executable) -> None:
    """pip install --target each port's pinned stubs; no-op when already pinned."""
    for port in ports:
        if stubs_current(port, stubs_root):
            continue
        target = stubs_dir(port, stubs_root)
        if target.exists():
            shutil.rmtree(target)
        cmd = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               "--target", str(target), *STUB_REQUIREMENTS[port]]
        print("+", " ".join(cmd), file=sys.stderr)
        subprocess.run(cmd, check=True)
        (target / PIN_MARKER).write_text("\n".join(STUB_REQUIREMENTS[port]) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------
# pyright
# --------------------------------------------------------------------------


def pyright_config(firmware_dir: Path, stubs: Path, venv_root: Path) -> dict:
    return {
        # The stub package is laid out like typeshed (stdlib/, stubs/) plus the
        # port's own modules (machine.pyi, rp2/ ...) at its top level.
        "typeshedPath": str(stubs),
        "stubPath": str(stubs),
        "extraPaths": [str(firmware_dir)],
        # An empty virtualenv: no host site-packages on the search path.
        "venvPath": str(venv_root),
        "venv": "empty",
        "pythonVersion": "3.11",
        "pythonPlatform": "Linux",
        "typeCheckingMode": "standard",
        "reportMissingModuleSource": "none",
        # The gate checks the firmware against each port's API, not the type
        # soundness of untyped code: pyright infers unions for the return of
        # dynamic validators (board.py's _need) and cannot follow run-time
        # protocols (prepare() before start()), so these rules only add noise.
        **{rule: "none" for rule in INFERENCE_NOISE_RULES},
    }


def run_pyright(port: str, files: list[Path], firmware_dir: Path, stubs_root: Path) -> list[Diagnostic]:
    if not files:
        return []
    stubs = stubs_dir(port, stubs_root)
    if not stubs_current(port, stubs_root):
        raise SetupError(
            f"stubs for {port} are missing or not the pinned version in {stubs}; run\n"
            f"    {Path(sys.executable).name} tools/typecheck_firmware.py --install-stubs"
        )
    try:
        import pyright  # noqa: F401  (the PyPI wrapper, which bundles pyright's JS)
    except ImportError as exc:
        raise SetupError("pyright is not installed in this Python; pip install 'pyright==1.1.414'") from exc
    if shutil.which("node") is None:
        raise SetupError("pyright needs Node.js ('node' on PATH)")

    with tempfile.TemporaryDirectory(prefix=f"myotone-pyright-{port}-") as tmp:
        root = Path(tmp)
        (root / "empty" / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
        # MicroPython builtins (const, ptr8 ...) are declared in __builtins__.pyi,
        # which pyright only reads from the execution root.
        builtins_pyi = stubs / "__builtins__.pyi"
        if builtins_pyi.exists():
            shutil.copy(builtins_pyi, root / "__builtins__.pyi")
        config_path = root / "pyrightconfig.json"
        config_path.write_text(json.dumps(pyright_config(firmware_dir, stubs, root), indent=2), encoding="utf-8")
        env = dict(os.environ, PYRIGHT_PYTHON_IGNORE_WARNINGS="1", PYRIGHT_PYTHON_GLOBAL_NODE="1")
        proc = subprocess.run(
            [sys.executable, "-m", "pyright", "--outputjson", "-p", str(config_path), *map(str, files)],
            cwd=root, capture_output=True, text=True, env=env,
        )
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise SetupError(f"pyright failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}") from exc

    diags = []
    for d in report.get("generalDiagnostics", []):
        if d["severity"] not in ("error", "warning"):
            continue
        start = d["range"]["start"]
        diags.append(Diagnostic(
            path=Path(d["file"]), line=start["line"] + 1, col=start["character"] + 1, port=port,
            severity=d["severity"], message=d["message"], rule=d.get("rule", ""),
        ))
    return diags


# --------------------------------------------------------------------------
# What pyright cannot see
# --------------------------------------------------------------------------


def _decorator_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def asm_pio_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(_decorator_name(d) == "asm_pio" for d in node.decorator_list):
                lines.update(range(node.body[0].lineno, (node.end_lineno or node.lineno) + 1))
    return lines


def drop_known_noise(diags: list[Diagnostic], trees: dict[Path, ast.AST]) -> list[Diagnostic]:
    kept = []
    cache: dict[Path, set[int]] = {}
    for d in diags:
        tree = trees.get(d.path.resolve())
        if tree is not None and d.rule in ASM_PIO_NOISE:
            if d.path not in cache:
                cache[d.path] = asm_pio_lines(tree)
            if d.line in cache[d.path]:
                continue
        kept.append(d)
    return kept


def _is_true(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is True


def _guarded_import_lines(tree: ast.AST) -> set[int]:
    """Lines inside `if TYPE_CHECKING:`/`if False:` or a try that catches ImportError."""
    lines: set[int] = set()

    def span(stmts):
        for s in stmts:
            lines.update(range(s.lineno, (s.end_lineno or s.lineno) + 1))

    for node in ast.walk(tree):
        if isinstance(node, ast.If):
            test = node.test
            name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else None
            if name == "TYPE_CHECKING" or (isinstance(test, ast.Constant) and test.value is False):
                span(node.body)
        elif isinstance(node, ast.Try):
            for handler in node.handlers:
                caught = handler.type
                names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
                if caught is None or any(_decorator_name(n) in ("ImportError", "Exception") for n in names if n):
                    span(node.body)
    return lines


def extra_rules(path: Path, tree: ast.AST, port: str, type_only: set[str]) -> list[Diagnostic]:
    diags = []
    guarded = _guarded_import_lines(tree)
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module.split(".")[0]]
        for module in modules:
            if module in type_only and node.lineno not in guarded:
                diags.append(Diagnostic(
                    path, node.lineno, node.col_offset + 1, port, "error",
                    f'"{module}" exists only in the type stubs, not on the {port} firmware; '
                    f"guard it with `if TYPE_CHECKING:` (imported in a try/except ImportError) or drop it",
                    "myotone-runtime-import",
                ))
        if port == "esp32" and isinstance(node, ast.Call):
            callee = _decorator_name(node.func)
            if callee in ("Timer", "init"):
                for kw in node.keywords:
                    if kw.arg == "hard" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        if callee == "init" and not _is_true(kw.value):
                            continue  # .init(hard=<expr>) on some other object: too vague to flag
                        diags.append(Diagnostic(
                            path, node.lineno, node.col_offset + 1, port, "error",
                            "esp32 machine.Timer has no hard callbacks: the port raises "
                            "ValueError('hard Timers are not implemented'); the esp32 stubs do not say so",
                            "myotone-esp32-hard-timer",
                        ))
    return diags


# --------------------------------------------------------------------------
# Accepted findings
# --------------------------------------------------------------------------


def _accepts(entry: dict, d: Diagnostic, firmware_dir: Path) -> bool:
    try:
        rel = d.path.resolve().relative_to(firmware_dir).as_posix()
    except ValueError:
        return False
    return (fnmatch.fnmatchcase(rel, entry["file"]) and d.rule == entry["rule"]
            and entry.get("port", d.port) == d.port and entry.get("match", "") in d.message)


def split_accepted(diags: list[Diagnostic], config: dict, firmware_dir: Path,
                   ports: list[str], complete: bool) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(diagnostics that count, diagnostics an 'accepted' entry explains).

    When the whole firmware was checked (`complete`), an entry for a checked
    port that explains nothing is itself an error, so the list cannot rot.
    """
    entries = config.get("accepted", [])
    used = [False] * len(entries)
    counted, accepted = [], []
    for d in diags:
        for i, entry in enumerate(entries):
            if _accepts(entry, d, firmware_dir):
                used[i] = True
                accepted.append(d)
                break
        else:
            counted.append(d)
    if complete:
        for entry, was_used in zip(entries, used):
            if not was_used and entry.get("port", ports[0]) in ports:
                counted.append(Diagnostic(
                    firmware_dir / entry["file"], 1, 1, entry.get("port", "*"), "error",
                    f"accepted entry no longer matches anything, remove it from firmware_ports.json: {entry}",
                    "myotone-stale-accepted",
                ))
    return counted, accepted


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------


def check(firmware_dir: Path, *, config: dict, stubs_root: Path, ports: list[str] | None = None,
          files: list[Path] | None = None) -> list[Diagnostic]:
    firmware_dir = firmware_dir.resolve()
    files = [f.resolve() for f in files] if files is not None else None
    by_port = plan(firmware_dir, config, files)
    trees = {p: ast.parse(p.read_text(encoding="utf-8"), filename=str(p))
             for paths in by_port.values() for p in paths}
    diags: list[Diagnostic] = []
    for port, paths in by_port.items():
        if ports and port not in ports:
            continue
        found = run_pyright(port, paths, firmware_dir, stubs_root)
        diags += drop_known_noise(found, trees)
        type_only = stub_modules(stubs_dir(port, stubs_root))[1]
        for p in paths:
            diags += extra_rules(p, trees[p], port, type_only)
    return sorted(diags, key=lambda d: (str(d.path), d.line, d.col, d.port))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--firmware", type=Path, default=DEFAULT_FIRMWARE, help="firmware root (default: firmware/)")
    ap.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    ap.add_argument("--stubs-root", type=Path, default=DEFAULT_STUBS_ROOT)
    ap.add_argument("--port", action="append", help="check only this port (repeatable)")
    ap.add_argument("--install-stubs", action="store_true", help="install the pinned stubs, then exit")
    ap.add_argument("--show-accepted", action="store_true", help="also print the findings 'accepted' explains")
    ap.add_argument("--plan", action="store_true", help="print which files are checked for which port, then exit")
    ap.add_argument("files", nargs="*", type=Path, help="check only these files (under --firmware)")
    args = ap.parse_args(argv)

    try:
        config = load_config(args.config)
        ports = args.port or config["ports"]
        if args.install_stubs:
            install_stubs(ports, args.stubs_root)
            return 0
        if not args.firmware.is_dir():
            raise SetupError(f"no firmware directory at {args.firmware}")
        if args.plan:
            for port, paths in plan(args.firmware.resolve(), config,
                                    [f.resolve() for f in args.files] or None).items():
                for p in paths:
                    print(f"{port}\t{p.relative_to(args.firmware.resolve()).as_posix()}")
            return 0
        diags = check(args.firmware, config=config, stubs_root=args.stubs_root, ports=ports,
                      files=args.files or None)
    except SetupError as exc:
        print(f"typecheck_firmware: {exc}", file=sys.stderr)
        return 2
    diags, accepted = split_accepted(diags, config, args.firmware.resolve(), ports,
                                     complete=not args.files and set(ports) == set(config["ports"]))
    for d in diags:
        print(d.format(Path.cwd()))
    if args.show_accepted:
        for d in accepted:
            print("accepted: " + d.format(Path.cwd()))
    errors = sum(d.severity == "error" for d in diags)
    print(f"typecheck_firmware: {errors} error(s), {len(diags) - errors} warning(s), "
          f"{len(accepted)} accepted (tools/firmware_ports.json) for ports {', '.join(ports)}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
