"""scripts/test.sh, README's second command: it installs only the missing Debian packages (apt-get update first,
through sudo only when not root), keeps an installed Node.js, installs Azurite only when absent.

The system commands it calls (dpkg-query, apt-get, sudo, id, npm, node) are replaced by small recording scripts
on a PATH that holds nothing else but bash and env, so every call the script makes is seen.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "test.sh"

SHIMS = {
    # installed packages are the lines of $FAKE_INSTALLED
    "dpkg-query": 'pkg="${@: -1}"; grep -qx "$pkg" "$FAKE_INSTALLED" && printf "install ok installed"; exit 0',
    "apt-get": 'echo "apt-get $*" >> "$FAKE_LOG"',
    "sudo": 'echo "sudo" >> "$FAKE_LOG"; exec "$@"',
    "id": 'echo "$FAKE_UID"',
    "npm": 'echo "npm $*" >> "$FAKE_LOG"',
    "node": "exit 0",
}


def make_repo(tmp_path: Path, *, shims: set[str], installed: list[str], azurite: bool = False) -> dict[str, str]:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, repo / "scripts" / "test.sh")
    if azurite:
        (repo / ".ci-node" / "node_modules" / ".bin").mkdir(parents=True)
        tool = repo / ".ci-node" / "node_modules" / ".bin" / "azurite-blob"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool_name in ("bash", "env", "dirname", "grep"):
        found = shutil.which(tool_name)
        assert found is not None
        (bin_dir / tool_name).symlink_to(found)
    for name in shims:
        shim = bin_dir / name
        shim.write_text("#!" + str(bin_dir / "bash") + "\n" + SHIMS[name] + "\n")
        shim.chmod(0o755)
    (tmp_path / "installed").write_text("".join(f"{p}\n" for p in installed))
    return {
        "PATH": str(bin_dir),
        "FAKE_INSTALLED": str(tmp_path / "installed"),
        "FAKE_LOG": str(tmp_path / "log"),
    }


def packages() -> list[str]:
    text = SCRIPT.read_text()
    block = text[text.index("packages=(") + len("packages=(") : text.index(")", text.index("packages=("))]
    return block.split()


def run(tmp_path: Path, env: dict[str, str], uid: int) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    proc = subprocess.run(
        [str(tmp_path / "repo" / "scripts" / "test.sh"), "--setup-only"],
        env={**env, "FAKE_UID": str(uid)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    log = tmp_path / "log"
    return proc, log.read_text().splitlines() if log.exists() else []


def test_the_package_list_is_the_one_ci_installs() -> None:
    assert "qemu-utils" in packages() and "chromium" in packages() and "npm" not in packages()
    assert "scripts/test.sh --setup-only" in (ROOT / ".ci" / "run").read_text()


def test_nothing_missing_installs_nothing(tmp_path: Path) -> None:
    env = make_repo(tmp_path, shims=set(SHIMS), installed=packages(), azurite=True)
    proc, log = run(tmp_path, env, uid=0)
    assert proc.returncode == 0, proc.stderr
    assert log == []
    assert "all 18 installed" in proc.stderr and "already in .ci-node" in proc.stderr


def test_as_root_no_sudo_update_first_only_the_missing(tmp_path: Path) -> None:
    have = [p for p in packages() if p not in ("mtools", "chromium")]
    env = make_repo(tmp_path, shims=set(SHIMS) - {"sudo"}, installed=have)
    proc, log = run(tmp_path, env, uid=0)
    assert proc.returncode == 0, proc.stderr
    assert log == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends mtools chromium",
        "npm install --prefix " + str(tmp_path / "repo" / ".ci-node") + " --no-save --no-audit --no-fund azurite@3",
    ]


def test_as_a_user_through_sudo_and_node_from_debian_when_there_is_none(tmp_path: Path) -> None:
    have = [p for p in packages() if p != "gdisk"]
    env = make_repo(tmp_path, shims=set(SHIMS) - {"node"}, installed=have, azurite=True)
    proc, log = run(tmp_path, env, uid=1000)
    assert proc.returncode == 0, proc.stderr
    assert log == [
        "sudo",
        "apt-get update -qq",
        "sudo",
        "apt-get install -y -qq --no-install-recommends gdisk nodejs npm",
    ]


def test_a_user_without_sudo_is_told_what_is_missing(tmp_path: Path) -> None:
    have = [p for p in packages() if p != "faketime"]
    env = make_repo(tmp_path, shims=set(SHIMS) - {"sudo"}, installed=have, azurite=True)
    proc, log = run(tmp_path, env, uid=1000)
    assert proc.returncode == 1 and log == []
    assert "missing and there is no sudo to install them: faketime" in proc.stderr


@pytest.mark.parametrize("uid", [0, 1000])
def test_an_installed_node_is_kept(tmp_path: Path, uid: int) -> None:
    env = make_repo(tmp_path, shims=set(SHIMS), installed=packages())
    proc, log = run(tmp_path, env, uid=uid)
    assert proc.returncode == 0, proc.stderr
    assert not any("apt-get" in line for line in log)
    assert [line.split()[:2] for line in log] == [["npm", "install"]]
    assert os.path.basename(log[0].split()[3]) == ".ci-node"
