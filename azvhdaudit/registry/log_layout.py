"""The on-disk layouts of a hive's base block and of a new-format transaction log entry, as construct structs.

References: M. Suhanov, *Windows registry file format specification* (github.com/msuhanov/regf), "Base block"
and "Format of transaction log files" (log entries, dirty page references).

Kept apart from :mod:`azvhdaudit.registry.logs` so that opening a clean hive never imports construct: only a
dirty hive's log replay parses with these (the base block of every hive is unpacked with ``struct`` as
:data:`BASE_BLOCK` lays it out, which the tests hold against this definition).
"""

from __future__ import annotations

from construct import Bytes, Int32ul, Int64ul, Padding, Struct

__all__ = ["BASE_BLOCK", "DIRTY_PAGE_REF", "DIRTY_PAGE_REF_SIZE", "LOG_ENTRY_HEADER", "LOG_ENTRY_HEADER_SIZE"]

# The first 512 bytes of a base block; the rest (reserved, boot type/recover) is not used on disk.
BASE_BLOCK = Struct(
    "signature" / Bytes(4),
    "primary_sequence" / Int32ul,
    "secondary_sequence" / Int32ul,
    "timestamp" / Int64ul,
    "major" / Int32ul,
    "minor" / Int32ul,
    "file_type" / Int32ul,
    "file_format" / Int32ul,
    "root_cell" / Int32ul,
    "hive_bins_size" / Int32ul,
    "clustering_factor" / Int32ul,
    "file_name" / Bytes(64),
    Padding(396),
    "checksum" / Int32ul,
)

LOG_ENTRY_HEADER = Struct(
    "signature" / Bytes(4),
    "size" / Int32ul,
    "flags" / Int32ul,
    "sequence" / Int32ul,
    "hive_bins_size" / Int32ul,
    "dirty_page_count" / Int32ul,
    "hash1" / Int64ul,
    "hash2" / Int64ul,
)
LOG_ENTRY_HEADER_SIZE = 40
DIRTY_PAGE_REF = Struct("offset" / Int32ul, "size" / Int32ul)
DIRTY_PAGE_REF_SIZE = 8
