"""Audit images under a ``sys.addaudithook`` hook and report every write-like event (run as a script).

Usage: python readonly_probe.py MODE PATH [PATH ...]  (MODE: ``audit``, ``open_image``, ``audit-no-lsa``,
``selftest``: write PATH, to show the hook sees it)

Prints one JSON object: ``violations`` (write-mode opens, file creation, renames, copies, removals,
writable mmaps), ``opened`` (every path opened, and with what), ``hives`` (the hive names passed to
the library's ``open_hive``, per image) and ``errors`` (an image whose audit raised). An audit hook
cannot be removed, hence the separate process.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | getattr(os, "O_TMPFILE", 0)
#: events that create, change or remove a file system entry
MUTATING = {
    "os.mkdir",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.utime",
    "os.symlink",
    "os.link",
    "os.chflags",
    "os.lchflags",
    "os.setxattr",
    "os.removexattr",
    "os.mkfifo",
    "os.mknod",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.copystat",
    "shutil.copytree",
    "shutil.rmtree",
    "shutil.move",
    "shutil.make_archive",
    "shutil.unpack_archive",
    "tempfile.mkstemp",
    "tempfile.mkdtemp",
    "sqlite3.connect",
}


def main(argv: list[str]) -> int:
    mode, paths = argv[1], argv[2:]
    import azvhdaudit
    import azvhdaudit.engine
    import azvhdaudit.image
    import azvhdaudit.registry.open as reg_open

    violations: list[str] = []
    opened: list[list[object]] = []
    hives: dict[str, list[str]] = {}
    current = {"image": ""}

    real_open_hive = reg_open.open_hive

    def recording_open_hive(fh, name, **kw):  # type: ignore[no-untyped-def]
        hives.setdefault(current["image"], []).append(str(name))
        return real_open_hive(fh, name, **kw)

    reg_open.open_hive = recording_open_hive  # type: ignore[assignment]

    def hook(event: str, args: tuple) -> None:  # type: ignore[type-arg]
        if event == "open":
            path, fmode, flags = args
            wrote = (isinstance(fmode, str) and any(c in fmode for c in "wax+")) or (
                isinstance(flags, int) and flags & WRITE_FLAGS
            )
            opened.append([str(path), fmode, flags])
            if wrote:
                violations.append(f"open({path!r}, mode={fmode!r}, flags={flags!r})")
        elif event in MUTATING:
            violations.append(f"{event}{args!r}")
        elif event == "mmap.__new__":
            import mmap

            if args[2] == mmap.ACCESS_WRITE:
                violations.append(f"writable mmap of fd {args[0]}")

    sys.addaudithook(hook)
    errors: dict[str, str] = {}
    if mode == "selftest":  # the hook must see a write, or the tests built on it prove nothing
        with open(paths[0], "wb") as fh:
            fh.write(b"x")
        os.mkdir(paths[0] + ".d")
        paths = []
    for path in paths:
        current["image"] = path
        try:
            hives.setdefault(path, [])
            if mode == "open_image":
                with azvhdaudit.open_image(path, require_windows=False) as image:
                    hives[path + "#view"] = sorted(image.registry.hives)
                    image.bcd  # noqa: B018 - decode the boot store too
            else:
                with_lsa = mode == "audit-with-lsa"
                try:
                    azvhdaudit.audit(path, with_lsa=with_lsa)
                except azvhdaudit.NoWindowsVolumeError:  # a data disk sample
                    azvhdaudit.audit(path, with_lsa=with_lsa, role="data")
        except azvhdaudit.AuditError as err:
            errors[path] = f"{type(err).__name__}: {err}"
        except Exception:
            errors[path] = traceback.format_exc()
    print(json.dumps({"violations": violations, "opened": opened, "hives": hives, "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
