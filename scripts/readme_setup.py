"""Print the README's set-up commands, one a line, as a newcomer pastes them.

They are the ``sh`` blocks of the "Set up" section, comment lines left out; each block is
one command on one line. .ci/run runs them; tests/test_readme.py checks their shape.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def setup_commands(text: str) -> list[str]:
    """The commands of the section headed "Set up", in order."""
    section = re.search(r"^## Set up\n(.*?)(?=^## )", text, re.M | re.S)
    if section is None:
        raise SystemExit("README.md has no '## Set up' section")
    blocks = re.findall(r"^```sh\n(.*?)^```", section.group(1), re.M | re.S)
    commands = []
    for block in blocks:
        lines = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
        if len(lines) != 1:
            raise SystemExit(f"a set-up block is one command on one line, not: {lines}")
        commands.append(lines[0])
    return commands


if __name__ == "__main__":
    sys.stdout.write("".join(f"{c}\n" for c in setup_commands(README.read_text())))
