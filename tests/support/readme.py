"""The README's bash examples, found and run as a user would paste them."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def bash_blocks(heading: str) -> list[str]:
    """The bash blocks under the README's `heading` (`## ...`), up to the next heading."""
    readme = (ROOT / "README.md").read_text()
    text = re.split(r"\n##+ ", readme.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def bash(command: str, cwd: Path, *, codes: tuple[int, ...] = (0,), timeout_s: float = 60) -> str:
    """`command`'s output; it must exit with one of `codes` (grep finding nothing: 1)."""
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=cwd, capture_output=True, text=True, timeout=timeout_s, check=False,
    )  # fmt: skip
    assert done.returncode in codes, f"{command}\nexit {done.returncode}: {done.stderr}"
    return done.stdout
