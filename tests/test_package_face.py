"""The package face: every error of the library's hierarchy can be caught as ``azvhdaudit.<Name>``."""

from __future__ import annotations

import azvhdaudit
from azvhdaudit import errors


def test_every_error_is_exported_by_the_package() -> None:
    classes = [getattr(errors, name) for name in errors.__all__ if isinstance(getattr(errors, name), type)]
    assert classes, "errors.__all__ lists no classes"
    missing = [cls.__name__ for cls in classes if getattr(azvhdaudit, cls.__name__, None) is not cls]
    unlisted = [cls.__name__ for cls in classes if cls.__name__ not in azvhdaudit.__all__]
    assert (missing, unlisted) == ([], [])
