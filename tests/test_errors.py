"""Every error wheelhouse raises for a user to read is defined in wheelhouse/errors.py."""

from __future__ import annotations

import importlib
import pkgutil

import wheelhouse
from wheelhouse import errors


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return found


def test_every_wheelhouse_error_lives_in_errors_py() -> None:
    for module in pkgutil.walk_packages(wheelhouse.__path__, "wheelhouse."):
        if not module.name.startswith("wheelhouse.cli"):
            importlib.import_module(module.name)
    elsewhere = sorted(
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in _subclasses(errors.WheelhouseError)
        if cls.__module__ != errors.__name__
    )
    assert elsewhere == []
    assert all(
        name in errors.__all__
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.WheelhouseError)
    )
