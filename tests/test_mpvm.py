"""The MicroPython VM used by the tests is real MicroPython and reports honestly.

These tests pin down the properties the firmware tests rely on: it is
MicroPython 1.29, heap_lock() makes any allocation raise MemoryError (so a
step function passing under heap_lock really allocates nothing), errors come
back as MicroPython tracebacks, and one Node process serves the whole session.
"""

import textwrap

import pytest

from mpvm import MicroPythonError, MicroPythonVM, VMCrashed
from firmware_paths import SAMPLE_FIRMWARE_DIR


def run(mpvm, code):
    return mpvm.run(textwrap.dedent(code))


def test_it_is_micropython_1_29(mpvm):
    out = run(mpvm, """
        import sys
        print(sys.implementation.name, sys.implementation.version[:2])
    """)
    assert out == "micropython (1, 29)\n"
    assert "MicroPython v1.29.0" in mpvm.version


def test_micropython_rejects_what_cpython_accepts(mpvm):
    with pytest.raises(MicroPythonError) as err:
        mpvm.run("def f(a, /, b):\n    pass\n")
    assert err.value.exc_type == "SyntaxError"


def test_allocation_under_heap_lock_raises_memoryerror(mpvm):
    # The VM's own verdict, checked inside MicroPython ...
    out = run(mpvm, """
        import micropython
        def alloc():
            return [1, 2, 3]
        result = None  # globals must exist before heap_lock: a new one grows the dict
        micropython.heap_lock()
        try:
            alloc()
            result = "allocated"
        except MemoryError:
            result = "MemoryError"
        finally:
            micropython.heap_unlock()
        print(result)
    """)
    assert out == "MemoryError\n"
    # ... and as seen by the client when the error escapes.
    with pytest.raises(MicroPythonError) as err:
        run(mpvm, """
            import micropython
            def alloc():
                return [1, 2, 3]
            micropython.heap_lock()
            alloc()
        """)
    assert err.value.exc_type == "MemoryError"


@pytest.mark.parametrize("expr, allocates", [
    ("[x]", True),                 # new list
    ("{1: x}", True),              # new dict
    ("'%d' % x", True),            # new string
    ("c.method", True),            # bound method object
    ("f * 2.0", True),             # float result (boxed)
    ("big * 8", True),             # int beyond 31-bit small int
    ("x * 2 + 3", False),          # small-int arithmetic
    ("c.method()", False),         # calling a method does not build a bound method
    ("c.kw(1, w=2)", False),       # keyword call of a Python function
    ("buf[1]", False),             # array item read
    ("(1, 2)", False),             # constant tuple
    ("{x}", True),                 # new set
    ("f'{x}'", True),              # f-string
    ("add_attr(c)", True),         # new instance attribute grows the instance dict
    ("loop(10)", False),           # for i in range(n) with small ints
    ("catch()", False),            # raise and catch an exception class
])
def test_what_allocates_under_heap_lock(mpvm, expr, allocates):
    # The table in docs/micropython.md comes from this test.
    out = run(mpvm, f"""
        import micropython
        from array import array
        class C:
            def method(self):
                return 1
            def kw(self, v, w=0):
                return v + w
        c = C()
        buf = array("H", (1, 2, 3))
        x = 1000
        f = 1.5
        big = 1 << 29
        def add_attr(obj):
            obj.new_attribute = 1
        def loop(n):
            s = 0
            for i in range(n):
                s += i
            return s
        def catch():
            try:
                raise ValueError
            except ValueError:
                return 1
        def probe(c, buf, x, f, big):
            return {expr}
        result = None  # globals must exist before heap_lock: a new one grows the dict
        micropython.heap_lock()
        try:
            probe(c, buf, x, f, big)
            result = "ok"
        except MemoryError:
            result = "MemoryError"
        finally:
            micropython.heap_unlock()
        print(result)
    """)
    assert out == ("MemoryError\n" if allocates else "ok\n"), expr


def test_heap_is_unlocked_after_an_error_escapes(mpvm):
    with pytest.raises(MicroPythonError):
        mpvm.run("import micropython\nmicropython.heap_lock()\nmicropython.heap_lock()\nraise ValueError('x')")
    assert mpvm.run("print([1] * 3)") == "[1, 1, 1]\n"


def test_traceback_names_the_failing_line(mpvm):
    with pytest.raises(MicroPythonError) as err:
        run(mpvm, """
            def inner():
                raise ValueError("boom")
            inner()
        """)
    e = err.value
    assert isinstance(e, AssertionError)
    assert e.exc_type == "ValueError"
    assert 'File "<test>", line 3, in inner' in e.traceback
    assert "ValueError: boom" in str(e)


def test_each_run_has_a_fresh_namespace(mpvm):
    mpvm.run("leftover = 1")
    with pytest.raises(MicroPythonError) as err:
        mpvm.run("print(leftover)")
    assert err.value.exc_type == "NameError"


def test_modules_the_device_lacks_cannot_be_imported(mpvm):
    # The WebAssembly build freezes abc, functools, ...; rp2/esp32 do not have them.
    for module in ("abc", "functools", "typing", "dataclasses"):
        with pytest.raises(MicroPythonError) as err:
            mpvm.run(f"import {module}")
        assert err.value.exc_type == "ImportError", module
    assert mpvm.run("import array, micropython, struct, sys, gc, math\nprint('ok')") == "ok\n"


def test_hardware_modules_are_not_in_the_vm(mpvm):
    with pytest.raises(MicroPythonError) as err:
        mpvm.run("import machine")
    assert err.value.exc_type == "ImportError"


def test_one_process_for_the_session(mpvm):
    before = mpvm._proc.pid
    for i in range(20):
        assert mpvm.run(f"print({i})") == f"{i}\n"
    assert mpvm._proc.pid == before and mpvm.starts == 1


def test_hung_code_times_out_and_the_vm_restarts():
    with MicroPythonVM(SAMPLE_FIRMWARE_DIR, timeout=20) as vm:
        with pytest.raises(VMCrashed, match="no answer"):
            vm.run("while True:\n    pass", timeout=1)
        assert vm.run("print('back')") == "back\n"
        assert vm.starts == 2
