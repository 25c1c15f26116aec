"""The emulator compiles each firmware source once per process: boots and soft resets that
import the same files reuse the code; a changed file is compiled again and its new code runs."""
from emu_repl import RawRepl
from myotone.emulator import runtime


def test_a_soft_reset_reuses_the_code_and_a_changed_file_is_compiled_again(monkeypatch):
    compiled = []
    real_compile = compile
    monkeypatch.setattr(runtime, "compile", lambda src, name, *a, **kw: (compiled.append(name),
                                                                       real_compile(src, name, *a, **kw))[1],
                        raising=False)
    repl = RawRepl()
    try:
        repl.emu.fs.write_file("/cachemod.py", b"X = 41 + 1\n")
        assert repl.value("__import__('cachemod').X") == 42
        repl.soft_reset()
        assert repl.value("__import__('cachemod').X") == 42
        assert compiled.count("cachemod.py") == 1                 # the second import reused the code
        repl.emu.fs.write_file("/cachemod.py", b"X = 7\n")
        repl.soft_reset()
        assert repl.value("__import__('cachemod').X") == 7        # never stale
        assert compiled.count("cachemod.py") == 2
        repl.emu.fs.write_file("/cachemod.py", b"X = (\n")
        repl.soft_reset()
        out, err = repl.exec("import cachemod")
        assert "SyntaxError" in err                               # errors are reported, not kept
    finally:
        repl.close()
