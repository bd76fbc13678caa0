"""The platforms a wheelhouse is built for; today the host, described with ``packaging``."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property

from packaging import tags
from packaging.markers import default_environment

__all__ = ["HOST", "Target"]


@dataclass(frozen=True)
class Target:
    """A Python and platform that wheels are chosen and built for."""

    name: str

    @cached_property
    def tags(self) -> tuple[tags.Tag, ...]:
        return tuple(tags.sys_tags())

    @property
    def key(self) -> str:
        """Identifies the wheels an sdist builds into for this target, for the build cache."""
        best = self.tags[0]
        return f"{best.interpreter}-{best.abi}-{best.platform}"

    @property
    def environment(self) -> dict[str, str]:
        return {key: str(value) for key, value in default_environment().items()}

    @property
    def python(self) -> str:
        return sys.executable


HOST = Target("host")
