"""Options for a build, gathered once from the command line into one frozen object."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from wheelhouse._base._pip import format_control
from wheelhouse._base.cooldown import CONFIG_PACKAGES, CONFIG_PRIOR_TO, Cooldown
from wheelhouse._base.targets import HOST, Target
from wheelhouse.errors import UsageError

__all__ = ["RESOLVERS", "BinaryOption", "BuildSettings", "IndexOptions", "Resolver", "default_jobs"]

# Who resolves loose requirements for the host: pip (the default, pip's own answer) or uv
# (much faster; its answer then goes through the pinned path, as a pip-compile output would).
Resolver = Literal["pip", "uv"]
RESOLVERS: tuple[Resolver, ...] = ("pip", "uv")

# One ``--no-binary VALUE`` or ``--only-binary VALUE`` as given: their order matters to pip.
BinaryOption = tuple[Literal["no-binary", "only-binary"], str]


def default_jobs() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True)
class IndexOptions:
    """pip's own index options, passed through to pip as given (None means pip's default)."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False
    # pip's format control from the command line, in the order given, and --prefer-binary.
    binary: tuple[BinaryOption, ...] = ()
    prefer_binary: bool = False
    # The release cooldown (--exclude-newer): carried to every stage inside pip's settings
    # (``over``) with its times made absolute once, so pip, uv and our own checks agree.
    cooldown: Cooldown | None = None

    def __post_init__(self) -> None:
        # pip takes a URL without a scheme for a path that does not exist, and crashes on it
        # (or, for find-links, ignores it): the value is checked where it is given.
        if self.index_url:
            _check_location("--index-url", self.index_url)
        for url in self.extra_index_urls:
            _check_location("--extra-index-url", url)
        for link in self.find_links:
            _check_location("--find-links", link)

    def over(self, config: Mapping[str, str]) -> dict[str, str]:
        """pip's settings (``pip_config()`` keys) with these options on top, as pip combines
        its configuration with its command line: URLs given here replace or extend them."""
        merged = dict(config)
        if self.index_url:
            merged["index-url"] = self.index_url
        for key, values in (
            ("extra-index-url", self.extra_index_urls),
            ("find-links", self.find_links),
        ):
            if values:
                merged[key] = " ".join(dict.fromkeys([*merged.get(key, "").split(), *values]))
        if self.pre:
            merged["pre"] = "true"
        if self.prefer_binary:
            merged["prefer-binary"] = "true"
        if self.binary:
            # pip applies its configuration's values first and the command line's on top.
            state = format_control(merged)
            for option, value in self.binary:
                state = state.apply(option, value)
            merged.pop("no-binary", None)
            merged.pop("only-binary", None)
            merged.update(state.as_options())
        if self.cooldown is not None:
            # The command line's cooldown replaces one in pip's configuration.
            for key in (CONFIG_PRIOR_TO, CONFIG_PACKAGES):
                merged.pop(key, None)
            merged.update(self.cooldown.as_config())
        return merged

    def over_env(self, env: Mapping[str, str]) -> dict[str, str]:
        """``env`` with these options as ``PIP_*`` variables, for pip runs we do not start
        ourselves (``build --sdist`` of a local project, in its own isolated environment)."""
        keys = ("index-url", "extra-index-url", "find-links", "pre")
        names = {key: "PIP_" + key.upper().replace("-", "_") for key in keys}
        current = {key: env[var] for key, var in names.items() if var in env}
        merged = self.over(current)
        return {**env, **{names[key]: merged[key] for key in keys if key in merged}}

    def pip_args(self) -> list[str]:
        args: list[str] = []
        if self.index_url:
            args += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.pre:
            args.append("--pre")
        for option, value in self.binary:
            # "=": a value may start with ":" or look like an option to a reader.
            args.append(f"--{option}={value}")
        if self.prefer_binary:
            args.append("--prefer-binary")
        if self.cooldown is not None:
            if self.cooldown.packages:
                raise UsageError(
                    "--exclude-newer-package needs --resolver uv here: pip's "
                    "--uploaded-prior-to has no per-project form",
                    hint="add --resolver uv, or pin the requirements (the pinned path applies "
                    "per-project cooldowns itself)",
                )
            config = self.cooldown.as_config()
            if CONFIG_PRIOR_TO in config:
                args.append(f"--uploaded-prior-to={config[CONFIG_PRIOR_TO]}")
        return args


_SCHEMES = ("http", "https", "file")
# A host name (with a dot, or localhost) or address, and an optional port: what a URL whose
# scheme was left out starts with.
_HOST = re.compile(r"^(localhost|\[[0-9a-fA-F:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)(:\d+)?$")


def _check_location(option: str, value: str) -> None:
    """An index URL or find-links value pip can use: an http(s) or file URL, or (as pip
    allows) a local path that exists; a usage error naming the option otherwise."""
    scheme = urlsplit(value).scheme.lower()
    if scheme in _SCHEMES or Path(os.path.expanduser(value)).exists():
        return
    if "://" not in value and _HOST.match(value.split("/", 1)[0]):
        raise UsageError(
            f"{option} {value!r} is not a URL; did you mean {'https://' + value!r}?",
            hint="an index URL starts with https:// (or http:// for a server you trust)",
        )
    if scheme and "://" in value:
        raise UsageError(
            f"{option} {value!r} is not a URL pip can read (its scheme {scheme!r} is not "
            "http, https or file)",
            hint=f"give {option} an https:// URL or a local directory",
        )
    if option == "--find-links":
        return  # a directory to be: pip, and the pinned path, say when it is missing
    raise UsageError(
        f"{option} {value!r} is not a URL, and no such directory exists",
        hint=f"give {option} an https:// URL or an existing directory",
    )


@dataclass(frozen=True)
class BuildSettings:
    """Everything ``wheelhouse build`` needs to know."""

    requirements: tuple[Path, ...]
    output: Path
    constraints: tuple[Path, ...] = ()
    index: IndexOptions = field(default_factory=IndexOptions)
    cache_dir: Path | None = None
    keep_sdists: bool = False
    # PEP 740: keep each downloaded file's provenance where its index page names one.
    provenance: bool = True
    jobs: int = field(default_factory=default_jobs)
    refresh: bool = False
    targets: tuple[Target, ...] = (HOST,)
    resolver: Resolver = "pip"
    # Optional dependencies and PEP 735 groups taken from a pyproject.toml or lock input.
    extras: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
