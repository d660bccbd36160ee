"""Results files of several sections, each written by its own benchmark (``## Latency``, ``## Cold start``)."""

from __future__ import annotations

from pathlib import Path


def write_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` (starting with ``heading``) into ``path`` in place of the section of that heading, keeping
    the sections that follow it; appended when the file has none."""
    text = path.read_text() if path.exists() else ""
    if heading in text:
        head, _, rest = text.partition(heading)
        following = rest.find("\n## ")
        text = head + section + ("\n" + rest[following + 1 :] if following >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
