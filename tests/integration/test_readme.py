"""The README's command-line examples print what the README says they print.

Each bash block of "On the command line" runs as a user would paste it, in a folder
of its own with this checkout's `.venv` (and `my-catalogue.yaml`, the catalogue a user
would check: the shipped one); the lines of the block written as `# output` must be
the last lines it prints.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.support.readme import ROOT, bash, bash_blocks

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("block", bash_blocks("## On the command line"))
def test_a_command_line_example_prints_what_the_readme_shows(block: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copy(ROOT / "normwacht" / "data" / "catalogue.yaml", tmp_path / "my-catalogue.yaml")
    shown = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# ")]
    assert shown, f"an example without the output it shows:\n{block}"
    printed = bash(block, tmp_path, timeout_s=120)
    assert printed.splitlines()[-len(shown) :] == shown
