"""The core may import only the standard library's pure parts, value libraries, and itself."""

from __future__ import annotations

import ast
from pathlib import Path

import normwacht.core

ALLOWED = {
    "__future__", "collections", "dataclasses", "datetime", "enum", "typing", "re",
    "zoneinfo", "functools", "itertools", "math", "bisect", "heapq", "operator", "hashlib",
    "hmac", "base64", "pydantic", "pydantic_core", "holidays", "pyrsistent", "immutables",
}  # fmt: skip
CORE = "normwacht.core"
"""Of the project, only the core itself: the rest of `normwacht` reads files and databases."""
CORE_DIR = Path(normwacht.core.__file__).parent


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a file of `package` imports, relative imports resolved."""
    parts = package.split(".")
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            if node.module:
                modules.add(".".join([*base, node.module]))
            else:  # `from . import x`: each name may be a module
                modules.update(".".join([*base, alias.name]) for alias in node.names)
    return modules


def forbidden(source: str, package: str) -> list[str]:
    return sorted(
        module
        for module in imported_modules(source, package)
        if module.split(".")[0] not in ALLOWED
        and module != CORE
        and not module.startswith(CORE + ".")
    )


def test_core_does_no_io() -> None:
    offenders = {}
    for path in sorted(CORE_DIR.rglob("*.py")):
        package = ".".join([CORE, *path.parent.relative_to(CORE_DIR).parts])
        offenders[path.name] = forbidden(path.read_text(encoding="utf-8"), package)
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_check_sees_the_rest_of_the_project_and_relative_imports() -> None:
    source = (
        "import os.path\n"
        "from normwacht.catalogue_file import load\n"
        "from .. import db_cli\n"
        "from ..sources import common\n"
        "from . import events\n"
        "from .calendars import Calendar\n"
        "from normwacht.core.engine import apply\n"
    )
    assert forbidden(source, CORE) == [
        "normwacht.catalogue_file", "normwacht.db_cli", "normwacht.sources", "os.path",
    ]  # fmt: skip
