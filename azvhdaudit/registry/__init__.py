"""Registry access: one view over the hives of an image, with two interchangeable backends."""

from azvhdaudit.registry.memory import MemoryHive, MemoryKey
from azvhdaudit.registry.model import (
    Hive,
    HiveState,
    RegData,
    RegistryView,
    RegKey,
    RegType,
    RegValue,
    decode_value,
    split_path,
)

__all__ = [
    "Hive",
    "HiveState",
    "MemoryHive",
    "MemoryKey",
    "RegData",
    "RegKey",
    "RegType",
    "RegValue",
    "RegistryView",
    "decode_value",
    "split_path",
]
