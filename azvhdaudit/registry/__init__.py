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
from azvhdaudit.registry.open import BACKENDS, DEFAULT_BACKEND, open_hive, open_hive_file

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
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
    "open_hive",
    "open_hive_file",
    "split_path",
]
