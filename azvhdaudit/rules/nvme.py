"""NVMe disk controller readiness (Azure platform requirement; rules declared in this module)."""

from __future__ import annotations
