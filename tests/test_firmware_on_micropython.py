"""The firmware's pure-logic modules run on real MicroPython, not just CPython."""

import pytest

from firmware_paths import FIRMWARE_DIR
from mpvm import pure_logic_modules

MODULES = pure_logic_modules(FIRMWARE_DIR)


def test_there_are_pure_logic_modules():
    assert MODULES, f"no pure-logic modules found under {FIRMWARE_DIR}"


@pytest.mark.parametrize("module", MODULES)
def test_pure_logic_module_imports_on_micropython(mpvm, module):
    mpvm.reset()  # import it afresh, not from an earlier test's import
    mpvm.run(f"import {module}")
