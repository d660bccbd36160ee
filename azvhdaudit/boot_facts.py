"""The boot configuration store as rules read it: decoded once, by the data path, never by a rule.

:class:`~azvhdaudit.image.Image` decodes the store it found (``\\Boot\\BCD`` or ``\\EFI\\Microsoft\\Boot\\BCD``,
:func:`azvhdaudit.bcd.decode_bcd`) when the audit context is built: the store becomes ``ctx.bcd``, a store that
cannot be decoded leaves its reason in ``ctx.facts.bcd_error``. A context built by hand with a BCD hive but no
decoded store (a caller's own :class:`~azvhdaudit.rules.base.AuditContext`) gets its store decoded here, once per
audit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from azvhdaudit.bcd import BCDStore, decode_bcd
from azvhdaudit.errors import AuditError

if TYPE_CHECKING:
    from azvhdaudit.rules.base import AuditContext

__all__ = ["bcd_of"]


def bcd_of(ctx: AuditContext) -> BCDStore | str | None:
    """The decoded BCD store of an audit; the reason it cannot be decoded (a ``str``); ``None`` when the image
    has no BCD hive (:meth:`RegistryView.why_unavailable` says why)."""
    if isinstance(ctx.bcd, BCDStore):
        return ctx.bcd
    if ctx.facts.bcd_error:
        return ctx.facts.bcd_error
    hive = ctx.registry.hive("BCD")
    if hive is None:
        return None

    def make() -> BCDStore | str:
        try:
            return decode_bcd(hive)
        except AuditError as err:
            return str(err)

    found: BCDStore | str = ctx.cached("bcd.store", make)
    return found
