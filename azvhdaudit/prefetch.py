"""Read ahead for the rules of a remote audit: the reads of independent rules fetched together.

Each rule reads its evidence one range at a time, each read deciding the next (a key's subkey list, then the
subkey, then its values; a file's record, then its data). On a local image that costs nothing; on a remote
one every read that misses the cache is a network round trip, and the rules' chains add up one after the
other. :func:`read_ahead` runs the rules first under :func:`azvhdaudit.batch.gather`: the chains advance side
by side, one round trip per step for all rules together, and the engine then runs the rules as always, every
read served from the cache. The rules' outcomes here are discarded, so the report is the same bytes as without
it; on a local image (or with ``AZVHDAUDIT_BATCH=0``) nothing runs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import Any

from azvhdaudit.batch import gather, is_remote

__all__ = ["read_ahead"]

log = logging.getLogger(__name__)


def _sources(ctx: Any) -> list[Any]:
    return [files for files in (getattr(ctx, "files", None), getattr(ctx, "boot_files", None)) if files is not None]


def read_ahead(ctx: Any, rules: Iterable[Any]) -> int:
    """Run ``rules`` (each with a ``check(ctx)``) side by side on a remote image so that their reads are
    fetched together; return the rounds run (0 on a local image). Outcomes and errors are discarded: the
    caller runs the rules afterwards and meets them there."""
    if not any(is_remote(files) for files in _sources(ctx)):
        return 0
    rounds = gather([functools.partial(rule.check, ctx) for rule in rules])
    log.debug("read ahead for the rules in %d rounds", rounds)
    return rounds
