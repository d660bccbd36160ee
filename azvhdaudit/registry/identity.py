"""Is a hive the hive it is named? Checked before the absence of a key in it is taken to mean anything.

A file copied in as ``SOFTWARE`` may be any hive (a SAM hive, a user's NTUSER.DAT) or a damaged one: every
key a rule looks for is then absent, and a rule that passes on "key absent" would pass on nothing. Each
system hive has root keys no other hive has (what ``reg load`` shows under the hive's root on any Windows):

- SYSTEM: ``Select`` and at least one ``ControlSet00n``;
- SOFTWARE: ``Microsoft``, with ``Classes`` or ``Microsoft\\Windows NT`` or ``Microsoft\\Windows`` beside it;
- SAM: ``SAM``; SECURITY: ``Policy``; BCD: ``Objects``.

The base block's file name (offset 0x30), where Windows set it, must not name another hive either.

References: M. Suhanov, *Windows registry file format specification* ("Base block": the file name field);
Microsoft, "Registry Hives" (learn.microsoft.com/windows/win32/sysinfo/registry-hives).
"""

from __future__ import annotations

from azvhdaudit.errors import RegistryError
from azvhdaudit.registry.model import Hive, RegKey

__all__ = ["HIVE_FILES", "identity_problem"]

#: file names of the hives Windows keeps (config\\*, the user hives, the boot store)
HIVE_FILES = (
    "SYSTEM",
    "SOFTWARE",
    "SAM",
    "SECURITY",
    "DEFAULT",
    "COMPONENTS",
    "DRIVERS",
    "ELAM",
    "BBI",
    "USERDIFF",
    "NTUSER.DAT",
    "USRCLASS.DAT",
    "BCD",
)

#: per hive: root subkeys that must all be present, then alternatives of which one must be present
_PROOF: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "SYSTEM": (("Select",), ()),
    "SOFTWARE": (("Microsoft",), ("Classes", "Microsoft\\Windows NT", "Microsoft\\Windows")),
    "SAM": (("SAM",), ()),
    "SECURITY": (("Policy",), ()),
    "BCD": (("Objects",), ()),
}


def _named(file_name: str) -> str:
    """The last component of a base block file name, upper-cased (``SOFTWARE`` for ``...\\Config\\SOFTWARE``)."""
    return file_name.replace("/", "\\").rstrip("\\").rsplit("\\", 1)[-1].strip().upper()


def _control_sets(root: RegKey) -> list[str]:
    """The ControlSet00n keys found: the one ``Select\\Current`` names, and ControlSet001 to 003 (looked up by
    name, so that one damaged root subkey elsewhere does not hide them)."""
    numbers = [1, 2, 3]
    select = root.find("Select")
    current = select.value("Current") if select is not None else None
    if current is not None and isinstance(current.data, int) and 0 < current.data < 1000:
        numbers.insert(0, current.data)
    return [f"ControlSet{n:03d}" for n in dict.fromkeys(numbers) if root.find(f"ControlSet{n:03d}") is not None]


def identity_problem(hive: Hive, name: str) -> str | None:
    """Why ``hive`` cannot be taken for the ``name`` hive, in words; ``None`` when it proves it is.

    Hives of other names (``SYSTEM_B``, a test's own) are not checked. The root key's subkeys are looked up
    (a few cells); a root that cannot be read is a reason too.
    """
    name = name.upper()
    proof = _PROOF.get(name)
    if proof is None:
        return None
    named = _named(getattr(hive, "file_name", "") or "")
    if named and named in HIVE_FILES and named != name:
        return f"its base block names it {named} ({hive.file_name!r})"
    required, alternatives = proof
    try:
        root = hive.root()
        missing = [key for key in required if root.find(key) is None]
        has_alternative = not alternatives or any(root.find(key) is not None for key in alternatives)
        control_sets = _control_sets(root) if name == "SYSTEM" else ["n/a"]
    except RegistryError as err:
        return f"its root key cannot be read ({err})"
    if not control_sets:
        missing.append("ControlSet00n")
    if missing or not has_alternative:
        wanted = missing + ([" or ".join(alternatives)] if not has_alternative else [])
        try:
            present = ", ".join(root.subkey_names()[:12]) or "none"
        except RegistryError:
            present = "unreadable"
        return f"its root key has no {' and no '.join(wanted)} subkey (root subkeys: {present})"
    return None
