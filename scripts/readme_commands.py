"""Print README's set-up commands (the ``sh`` blocks of its "Quick start" section), one per line.

python3 scripts/readme_commands.py      # what .ci/run runs, exactly as a reader pastes it
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start(text: str) -> list[str]:
    """The commands of the Quick start section's ``sh`` blocks, in order (one block, one command)."""
    section = re.search(r"^## Quick start\n(.*?)^## ", text, re.S | re.M)
    if section is None:
        raise SystemExit("README.md has no '## Quick start' section")
    commands = [block.strip() for block in re.findall(r"```sh\n(.*?)```", section.group(1), re.S)]
    for command in commands:
        if "\n" in command:
            raise SystemExit(f"README.md's Quick start blocks must be one line each: {command!r}")
    return commands


if __name__ == "__main__":
    print("\n".join(quick_start(README.read_text(encoding="utf-8"))))
    sys.exit(0)
