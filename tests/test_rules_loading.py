"""The rule catalogue skips a rule module whose file is absent, and never swallows an import error inside one."""

from __future__ import annotations

import subprocess
import sys

_HIDE = """
import importlib.abc, importlib.machinery, sys

class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name != "azvhdaudit.rules.marketplace":
            return None
        if MODE == "absent":
            _absent(name)
        return importlib.machinery.ModuleSpec(name, Broken())

class Broken(importlib.abc.Loader):
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        raise ModuleNotFoundError("No module named 'a_missing_dependency'", name="a_missing_dependency")

def _absent(name):
    raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, Hide())
"""


def _run(mode: str) -> subprocess.CompletedProcess[str]:
    code = f"MODE = {mode!r}\n{_HIDE}\nimport azvhdaudit.rules as rules\nprint(','.join(rules.loaded_modules()))\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_an_absent_rule_module_is_skipped() -> None:
    done = _run("absent")
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.strip().split(",")
    assert "marketplace" not in loaded and {"disk", "secureboot", "vm"} <= set(loaded)


def test_an_import_error_inside_a_rule_module_propagates() -> None:
    done = _run("broken")
    assert done.returncode != 0
    assert "ModuleNotFoundError" in done.stderr and "a_missing_dependency" in done.stderr
