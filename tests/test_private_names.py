"""No module of the package reaches into another module's private names (issue 21 item 6):
a private name may change without notice, so a cross-module use is a hidden coupling."""
import ast
from pathlib import Path

import hwgptbench

PACKAGE = Path(hwgptbench.__file__).parent


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def cross_module_private_uses(source: str) -> list[str]:
    """Private names imported from another module, or read as `module._name` of an imported module."""
    tree = ast.parse(source)
    modules, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"from {node.module or '.'} import {alias.name} (line {node.lineno})")
                else:
                    modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            modules.update((a.asname or a.name).split(".")[0] for a in node.names)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and _private(node.attr) and isinstance(node.value, ast.Name)
                and node.value.id in modules):
            found.append(f"{node.value.id}.{node.attr} (line {node.lineno})")
    return found


def test_the_check_finds_an_injected_private_use():
    assert cross_module_private_uses("from . import cost\ncost._check_shape(1, 2)\n")
    assert cross_module_private_uses("from .run import _versions\n")
    assert not cross_module_private_uses("from . import cost\ncost.check_shape(1, 2)\n")


def test_no_module_uses_another_modules_private_names():
    bad = {str(p.relative_to(PACKAGE)): uses for p in sorted(PACKAGE.rglob("*.py"))
           if (uses := cross_module_private_uses(p.read_text(encoding="utf-8")))}
    assert not bad, bad
