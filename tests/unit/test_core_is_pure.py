"""The core may import only the standard library's pure parts and value libraries."""

from __future__ import annotations

import ast
from pathlib import Path

import normwacht.core

ALLOWED = {
    "__future__", "collections", "dataclasses", "datetime", "enum", "typing", "re",
    "zoneinfo", "functools", "itertools", "math", "bisect", "heapq", "operator", "hashlib",
    "hmac", "base64", "pydantic", "pydantic_core", "holidays", "pyrsistent", "immutables",
    "normwacht",
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_does_no_io() -> None:
    core = Path(normwacht.core.__file__).parent
    offenders = {
        path.name: sorted(imported_roots(path) - ALLOWED) for path in sorted(core.rglob("*.py"))
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}
