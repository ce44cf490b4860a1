"""The README's command-line examples print what the README says they print.

Each bash block of "On the command line" runs as a user would paste it, in a folder
of its own with this checkout's `.venv` (and `my-catalogue.yaml`, the catalogue a user
would check: the shipped one); the lines of the block written as `# output` must be
the last lines it prints.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def blocks(heading: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    text = re.split(r"\n##+ ", readme.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]
    return re.findall(r"```bash\n(.*?)```", text, re.S)


@pytest.mark.parametrize("block", blocks("## On the command line"))
def test_a_command_line_example_prints_what_the_readme_shows(block: str, tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    shutil.copy(ROOT / "normwacht" / "data" / "catalogue.yaml", tmp_path / "my-catalogue.yaml")
    shown = [line.removeprefix("# ") for line in block.splitlines() if line.startswith("# ")]
    assert shown, f"an example without the output it shows:\n{block}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-len(shown) :] == shown
