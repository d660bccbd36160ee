"""Shared set-up of the coverage-guided harnesses (atheris / libFuzzer).

References: atheris (https://github.com/google/atheris) and libFuzzer's options
(https://llvm.org/docs/LibFuzzer.html). Each harness feeds bytes to one entry point and lets only
the library's own :class:`~azvhdaudit.errors.AuditError` through; anything else is a crash, which
libFuzzer saves as ``crash-<sha1>`` for a regression test.

Seeds are generated, not committed: :func:`seed_dir` builds them from the base images of
tests/hardening/hardkit.py into ``$AZVHDAUDIT_FUZZ_WORK`` (default ``/tmp/azvhdaudit-fuzz``).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for extra in (REPO, REPO / "tests" / "hardening"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

WORK = Path(os.environ.get("AZVHDAUDIT_FUZZ_WORK", "/tmp/azvhdaudit-fuzz"))


def bases():  # type: ignore[no-untyped-def]
    import hardkit

    return hardkit.build_bases(WORK / "bases")


def hive_key_offset(blob: bytes, path: str) -> int | None:
    """The cell offset (relative to the hive bins) of the key at ``path`` in the intact hive ``blob``."""
    import io

    from azvhdaudit.registry.open import open_hive

    key = open_hive(io.BytesIO(blob), "SYSTEM", source="seed").key(path)
    return None if key is None else int(key.offset)  # type: ignore[attr-defined]


def seed_dir(kind: str) -> Path:
    """A directory of seed inputs for one harness (built on first use)."""
    out = WORK / "seeds" / kind
    if out.exists() and any(out.iterdir()):
        return out
    out.mkdir(parents=True, exist_ok=True)
    b = bases()
    if kind == "container":
        import subprocess

        tiny = WORK / "tiny.raw"
        with open(tiny, "wb") as fh:
            fh.write(bytes(range(256)) * 4096)  # 1 MiB with a pattern
        for name, args in (
            ("fixed.vhd", ["-O", "vpc", "-o", "subformat=fixed"]),
            ("dynamic.vhd", ["-O", "vpc", "-o", "subformat=dynamic"]),
            ("dynamic.vhdx", ["-O", "vhdx", "-o", "subformat=dynamic,block_size=1M"]),
            ("image.qcow2", ["-O", "qcow2"]),
        ):
            subprocess.run(["qemu-img", "convert", "-f", "raw", *args, str(tiny), str(out / name)], check=True)
        shutil.copyfile(b.path("chain1/gen1-azure-child.vhd"), out / "child.vhd")
    elif kind == "layout":
        for name in ("gen1.raw", "gen2.raw"):
            with open(b.path(name), "rb") as fh:
                (out / name).write_bytes(fh.read(64 * 1024))
    elif kind in ("hive", "bcd"):
        names = ["BCD"] if kind == "bcd" else ["SYSTEM", "SOFTWARE", "BCD"]
        for name in names:
            shutil.copyfile(b.hive_files[name], out / name)
    elif kind == "pe":
        for pe in b.pe_files[:4]:
            shutil.copyfile(pe, out / pe.name)
    elif kind == "audit":
        (out / "seed").write_bytes(bytes(16))
    elif kind == "chains":
        for mode in range(5):  # the modes of fuzz_chains.py: FAT, EBR, hive lists, foreign hives, special files
            for k in range(4):
                (out / f"mode{mode}-{k}").write_bytes(bytes([mode]) + bytes((k * 37 + i) % 256 for i in range(64)))
    else:
        raise ValueError(kind)
    return out


def main(test_one_input, kind: str) -> None:  # type: ignore[no-untyped-def]
    """Run libFuzzer over ``test_one_input``; the seed directory is appended to the corpus dirs."""
    import atheris

    args = list(sys.argv)
    if not any(not a.startswith("-") for a in args[1:]):
        corpus = WORK / "corpus" / kind
        corpus.mkdir(parents=True, exist_ok=True)
        args += [str(corpus), str(seed_dir(kind))]
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()
