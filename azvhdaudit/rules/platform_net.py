"""Azure Boost networking, KMS and DHCP (Azure platform advice; rules declared in this module)."""

from __future__ import annotations
