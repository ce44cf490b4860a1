"""Reading the catalogue and municipality files, with every mistake traced to its line.

The core (`normwacht.core.catalogue`) validates content; this module does the I/O
and turns pydantic's error locations back into `FILE:LINE` for the reviewer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from normwacht.core.catalogue import Catalogue, CatalogueSpec, Municipalities, cross_check

__all__ = ["CatalogueError", "Problem", "check", "default_paths", "load"]

Location = tuple[int | str, ...]


@dataclass(frozen=True)
class Problem:
    path: Path
    line: int | None
    where: str
    message: str

    def __str__(self) -> str:
        line = f":{self.line}" if self.line else ""
        where = f" {self.where}:" if self.where else ""
        return f"{self.path}{line}:{where} {self.message}"


class CatalogueError(ValueError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(map(str, problems)))
        self.problems = list(problems)


def default_paths() -> tuple[Path, Path]:
    """The packaged catalogue and municipalities files, or those the environment names."""
    data = resources.files("normwacht") / "data"
    catalogue = os.environ.get("NORMWACHT_CATALOGUE") or str(data / "catalogue.yaml")
    places = os.environ.get("NORMWACHT_MUNICIPALITIES") or str(data / "municipalities.yaml")
    return Path(catalogue), Path(places)


def _lines(node: yaml.Node, at: Location = ()) -> dict[Location, int]:
    """Line (1-based) of every mapping value and sequence item, by its location."""
    lines = {at: node.start_mark.line + 1}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            lines.update(_lines(value, (*at, key.value)))
            lines[(*at, key.value)] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines.update(_lines(item, (*at, index)))
    return lines


def _read(path: Path) -> tuple[Any, dict[Location, int]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CatalogueError([Problem(path, None, "", f"cannot read: {error.strerror}")]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        content = yaml.safe_load(text)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else None
        raise CatalogueError(
            [Problem(path, line, "", f"not valid YAML: {error.problem}")]
        ) from None
    return content, (_lines(node) if node is not None else {})


def _line(loc: Location, lines: Mapping[Location, int]) -> int | None:
    """The line of the deepest part of `loc` the file has a line for."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _problems(path: Path, error: ValidationError, lines: Mapping[Location, int]) -> list[Problem]:
    return [
        Problem(path, _line(tuple(d["loc"]), lines), ".".join(map(str, d["loc"])), d["msg"])
        for d in error.errors(include_url=False)
    ]


def load(catalogue_path: Path | None = None, municipalities_path: Path | None = None) -> Catalogue:
    """Read and validate both files; raises CatalogueError listing every problem with its line."""
    default_catalogue, default_places = default_paths()
    catalogue_path = catalogue_path or default_catalogue
    municipalities_path = municipalities_path or default_places
    spec, spec_lines = _read(catalogue_path)
    places, place_lines = _read(municipalities_path)
    problems: list[Problem] = []
    for document, path, lines in ((spec, catalogue_path, spec_lines),
                                  (places or {}, municipalities_path, place_lines)):  # fmt: skip
        validate = Municipalities if path is municipalities_path else CatalogueSpec
        try:
            validate.model_validate(document)
        except ValidationError as error:
            problems += _problems(path, error, lines)
    if problems:
        raise CatalogueError(problems)
    for at, message in cross_check(spec, places or {}):
        path, lines = (
            (municipalities_path, place_lines)
            if at[0] == "municipalities"
            else (catalogue_path, spec_lines)
        )
        problems.append(Problem(path, _line(at, lines), ".".join(map(str, at)), message))
    if problems:
        raise CatalogueError(problems)
    return Catalogue(spec, places)


def check(catalogue_path: Path, municipalities_path: Path | None = None) -> list[Problem]:
    """Every problem in the files; empty when they are valid."""
    try:
        load(catalogue_path, municipalities_path)
    except CatalogueError as error:
        return error.problems
    return []
