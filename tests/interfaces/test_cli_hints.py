"""Each cause of an error gets the hint that fits it: a permission problem is not a damaged image, a missing
extra is not a bad file, a server that cannot be reached is not a missing file, an unreadable parent beside its
child is not a missing one, and a report that cannot be written is not a problem of the image.

Every cause is real: files without read permission (as an unprivileged user when the tests run as root), a
host name that cannot resolve, a port nobody listens on, fsspec made unimportable.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azvhdaudit.fleet import audit_many

NOBODY = 65534


def as_unprivileged(argv: list[str]) -> list[str]:
    """Run as a user that file permissions apply to (root reads everything)."""
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("these tests run as root and need setpriv (util-linux) to drop privileges")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *argv]


@pytest.fixture
def place(sample_path: Callable[[str], Path]) -> Iterator[Path]:
    """A directory every user can enter, with a sample, a differencing child and its parent beside it."""
    with tempfile.TemporaryDirectory(prefix="azvhdaudit-hints-") as where:
        root = Path(where)
        root.chmod(0o755)
        child = sample_path("gen1-azure-child.vhd")
        for name in ("gen1-azure.vhd", "gen1-azure-child.vhd"):
            shutil.copyfile(child.parent / name, root / name)
            (root / name).chmod(0o644)
        (root / "locked").mkdir(mode=0o755)  # owned by the test's user: not writable for the other one
        if os.geteuid() != 0:
            (root / "locked").chmod(0o555)
        yield root


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cli(*args: str, prelude: str = "pass") -> list[str]:
    code = f"import sys; {prelude}; from azvhdaudit.cli import main; sys.exit(main())"
    return [sys.executable, "-c", code, *args]


def permission(root: Path) -> list[str]:
    (root / "gen1-azure.vhd").chmod(0)
    return as_unprivileged(cli("audit", str(root / "gen1-azure.vhd")))


def parent_unreadable(root: Path) -> list[str]:
    (root / "gen1-azure.vhd").chmod(0)  # the parent, right beside its child
    return as_unprivileged(cli("audit", str(root / "gen1-azure-child.vhd")))


def missing_extra(root: Path) -> list[str]:
    return cli("audit", "http://127.0.0.1:1/os.vhd", prelude="sys.modules['fsspec'] = None")


def dns(root: Path) -> list[str]:
    return cli("audit", "http://no-such-host.invalid/os.vhd")


def refused(root: Path) -> list[str]:
    return cli("audit", f"http://127.0.0.1:{free_port()}/os.vhd")


def output_unwritable(root: Path) -> list[str]:
    return as_unprivileged(cli("audit", str(root / "gen1-azure.vhd"), "-o", str(root / "locked" / "r.html")))


def output_no_directory(root: Path) -> list[str]:
    return cli("audit", str(root / "gen1-azure.vhd"), "-o", str(root / "no-such-dir" / "r.html"))


def not_an_image(root: Path) -> list[str]:
    (root / "notes.txt").write_text("hello\n")
    return cli("audit", str(root / "notes.txt"))


def missing(root: Path) -> list[str]:
    return cli("audit", str(root / "nope.vhd"))


@pytest.mark.parametrize(
    ("make", "says", "hint"),
    [
        (
            permission,
            "gen1-azure.vhd: cannot be opened for reading: Permission denied",
            "fix the file's permissions: the user running azvhdaudit needs read access to it",
        ),
        (
            parent_unreadable,
            "Permission denied",
            "fix the parent's permissions: the user running azvhdaudit needs read access to it too",
        ),
        (missing_extra, "reading images from URLs needs fsspec", 'install the extra: pip install "azvhdaudit[remote]"'),
        (
            dns,
            "no-such-host.invalid/os.vhd: the server could not be reached: the host name does not resolve",
            "check the network: the URL's host name does not resolve here; a typo in the host, or no DNS",
        ),
        (
            refused,
            "the server could not be reached: connection refused",
            "check the network: nothing answers at the URL's host and port; is the server up, the port right?",
        ),
        (
            output_unwritable,
            "r.html: cannot write the report: Permission denied",
            "choose a place this user can write for -o",
        ),
        (
            output_no_directory,
            "r.html: cannot write the report: No such file or directory",
            "the directory for -o does not exist: create it, or write the report elsewhere",
        ),
        # causes whose class already said it right keep their hint
        (
            not_an_image,
            "notes.txt (6 bytes) has no VHDX, VHD, VMDK or QCOW2 signature",
            "give a VHD, VHDX, VMDK, QCOW2 or raw disk image",
        ),
        (missing, "nope.vhd: no such image file", "check the path"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_the_hint_fits_the_cause(place: Path, make: Callable[[Path], list[str]], says: str, hint: str) -> None:
    proc = subprocess.run(make(place), capture_output=True, text=True, timeout=120, cwd=place)
    assert proc.returncode == 2, proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith("azvhdaudit: error: ") and says in line
    assert line.endswith(f" ({hint})"), line


def test_a_fleet_report_carries_the_fitting_hint(place: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/os.vhd"
    (report,) = audit_many([url], workers=1)
    result = report.results[0]
    assert result.message.endswith(
        "the server could not be reached: connection refused: "
        f"Connect call failed ('127.0.0.1', {url.split(':')[2].split('/')[0]})"
    )
    assert result.remediation.startswith("Check the network: nothing answers")
