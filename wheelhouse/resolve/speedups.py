"""The speed-ups of resolution, behind one seam, switched on or off together.

While pip resolves, a page tap keeps the index pages pip reads (the pinned path then checks
pip's answer against them instead of reading them again), guesses which files pip will ask
for next and prefetches them through the tap. While uv resolves, each file it reads metadata
from is downloaded at once (``AheadOfUv``). They change how fast a build is, never what it
gives: with ``WHEELHOUSE_NO_SPEEDUPS=1`` in the environment (or ``Speedups(enabled=False)``)
none of them runs, pip reads its indexes itself and every file is fetched after the resolver
is done; the wheelhouse is the same (tests/pipeline/test_speedups.py holds that).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from wheelhouse._base.pip_settings import PipSettings
from wheelhouse._base.targets import Target, surely_foreign
from wheelhouse.download.cache import Cache
from wheelhouse.inputs.requirements import InputSet

# Loaded only when a speed-up runs: a build with none of them (or resolving with uv) must not
# wait on the HTTP client and the pinned path's modules first.
if TYPE_CHECKING:
    from wheelhouse.download.fetch import Fetched
    from wheelhouse.resolve._pagetap import Page, PageTap
    from wheelhouse.resolve._prefetch import Prefetcher
    from wheelhouse.resolve._uv_ahead import AheadOfUv
    from wheelhouse.resolve.from_pins import Guesses

__all__ = ["NO_SPEEDUPS_ENV", "PipAids", "Speedups"]

logger = logging.getLogger(__name__)

# Set to 1 (or any value but 0) to switch every speed-up off.
NO_SPEEDUPS_ENV = "WHEELHOUSE_NO_SPEEDUPS"


@dataclass(frozen=True)
class PipAids:
    """What the speed-ups around one pip run give: the tap pip reads its indexes through
    (None: pip reads them itself), and the prefetcher that guessed pip's files (None: none)."""

    tap: PageTap | None = None
    prefetcher: Prefetcher | None = None
    _no_pages: dict[str, Page] = field(default_factory=dict, repr=False)

    @property
    def pages(self) -> Mapping[str, Page]:
        """The index pages pip read through the tap, by URL."""
        return self.tap.pages if self.tap is not None else self._no_pages

    @property
    def guesses(self) -> Guesses | None:
        return self.prefetcher.guesses if self.prefetcher is not None else None

    def given(self, filename: str) -> Fetched | None:
        """The prefetcher's verified copy of ``filename``, when it gave pip one."""
        return self.prefetcher.given.get(filename) if self.prefetcher is not None else None


@dataclass(frozen=True)
class Speedups:
    """The one switch for every speed-up of resolution."""

    enabled: bool = True

    @classmethod
    def from_environment(
        cls, enabled: bool = True, env: Mapping[str, str] | None = None
    ) -> Speedups:
        """On unless ``enabled`` is false or ``WHEELHOUSE_NO_SPEEDUPS`` is set (not to 0)."""
        value = (os.environ if env is None else env).get(NO_SPEEDUPS_ENV, "")
        return cls(enabled and value.strip() in ("", "0"))

    @contextlib.contextmanager
    def around_pip(
        self, pip: PipSettings, inputs: InputSet, target: Target, cache: Cache, *, jobs: int
    ) -> Iterator[PipAids]:
        """Around a pip run resolving ``inputs`` for the host (``target``): a tap that keeps
        the index pages pip reads (none when pip reads no http(s) index, or goes through a
        proxy), and with one http(s) index a prefetcher that downloads through it what pip
        will most likely ask for next. pip is not shown the wheels it could never install."""
        if not self.enabled:
            yield PipAids()
            return
        from wheelhouse._base._http import HttpClient
        from wheelhouse.resolve._pagetap import PageTap
        from wheelhouse.resolve._prefetch import Prefetcher
        from wheelhouse.resolve.from_pins import Guesses, Unguessable

        urls = pip.index_urls
        remote = [u for u in urls if urlsplit(u).scheme in ("http", "https")]
        # pip sends every request to its configured proxy, which cannot reach our loopback.
        if pip.proxy or not remote:
            yield PipAids()
            return
        client = HttpClient(pip, pool_size=jobs)
        # Guessed files come from the one index whose pages the tap reads for the guesses.
        ahead = len(remote) == 1
        # Files linked on other origins are asked without the indexes' credentials (pip sends
        # them to an index's own scheme, host and port only).
        elsewhere = HttpClient(pip.without_indexes(), pool_size=jobs)
        with PageTap(urls, client, ahead=ahead, hide=surely_foreign, elsewhere=elsewhere) as tap:
            if not ahead:
                yield PipAids(tap)
                return
            try:
                guesses = Guesses(inputs, pip, target, tap.pages)
            except Unguessable as exc:
                logger.info("nothing is fetched ahead of pip: %s", exc)
                yield PipAids(tap)
                return
            with Prefetcher(
                tap, guesses, remote[0], cache, pip=pip, allowed=inputs.hashes, jobs=jobs
            ) as prefetcher:
                prefetcher.start(inputs)
                yield PipAids(tap, prefetcher)

    @contextlib.contextmanager
    def around_uv(self, pip: PipSettings, cache: Cache, *, jobs: int) -> Iterator[AheadOfUv | None]:
        """Around a uv run: what downloads each file uv reads as uv reads it (None: off)."""
        if not self.enabled:
            yield None
            return
        from wheelhouse.resolve._uv_ahead import AheadOfUv

        with AheadOfUv(cache, pip=pip, jobs=jobs) as early:
            yield early
