"""pip's settings, parsed once: pip's configuration with the command line's options on top.

A build reads pip's configuration (``_pip.pip_config()``: strings, as pip's files and
``PIP_*`` variables hold them) once, merges the command line's ``IndexOptions`` over it as pip
does, and passes the result down as one frozen ``PipSettings``. Nothing below that edge reads
pip's strings again: every rule for reading them (pip's truth values, its format control, its
index order, its timeout and retries) is in this module.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from wheelhouse._base.cooldown import CONFIG_PACKAGES, CONFIG_PRIOR_TO, Cooldown
from wheelhouse._base.urls import strip_credentials
from wheelhouse.errors import UsageError

__all__ = [
    "PYPI_SIMPLE",
    "BinaryOption",
    "Format",
    "FormatControl",
    "IndexOptions",
    "PipSettings",
    "config_flag",
    "format_control",
    "index_urls",
]

logger = logging.getLogger(__name__)

# One ``--no-binary VALUE`` or ``--only-binary VALUE`` as given: their order matters to pip.
BinaryOption = tuple[Literal["no-binary", "only-binary"], str]


@dataclass(frozen=True)
class IndexOptions:
    """The command line's index options (None means pip's default): passed to pip as given,
    and merged over pip's configuration by ``PipSettings.parse``."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    pre: bool = False
    # pip's format control from the command line, in the order given, and --prefer-binary.
    binary: tuple[BinaryOption, ...] = ()
    prefer_binary: bool = False
    # The release cooldown (--exclude-newer): carried to every stage in ``PipSettings``, its
    # times made absolute once, so pip, uv and our own checks agree.
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

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["index_url"] = self.index_url and strip_credentials(self.index_url)
        for name in ("extra_index_urls", "find_links"):
            shown[name] = tuple(strip_credentials(u) for u in shown[name])
        return "IndexOptions(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

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


PYPI_SIMPLE = "https://pypi.org/simple/"


def config_flag(config: Mapping[str, str], option: str) -> bool:
    """A boolean option of ``pip_config()``, true by pip's rule (its ``strtobool``: y, yes, t,
    true, on, 1, in any case); a value pip would refuse counts as false."""
    value = config.get(option, "")
    if not value:
        return False
    try:
        return bool(_strtobool(value))
    except ValueError:
        return False


def _strtobool(value: str) -> int:
    try:
        from pip._internal.utils.misc import strtobool
    except ImportError:  # pip moved it: its rule, as of pip 26
        lowered = value.lower()
        if lowered in ("y", "yes", "t", "true", "on", "1"):
            return 1
        if lowered in ("n", "no", "f", "false", "off", "0"):
            return 0
        raise ValueError(f"invalid truth value {value!r}") from None
    return strtobool(value)


def index_urls(config: Mapping[str, str]) -> list[str]:
    """The indexes pip reads, in its order: index-url (PyPI by default), then each extra
    index; none with no-index. ``config`` is ``pip_config()``, command-line options merged."""
    if config_flag(config, "no-index"):
        return []
    urls = [config.get("index-url") or PYPI_SIMPLE, *config.get("extra-index-url", "").split()]
    return list(dict.fromkeys(urls))


Format = Literal["binary", "source"]


@dataclass(frozen=True)
class FormatControl:
    """pip's ``--no-binary``/``--only-binary`` state: which projects may come from a wheel and
    which from an sdist. It follows pip's ``FormatControl`` (``models/format_control.py``)
    rule for rule; pip's own class is not imported because its module loads pip's rich-based
    exceptions (the pinned path runs without pip)."""

    no_binary: frozenset[str] = frozenset()
    only_binary: frozenset[str] = frozenset()

    def apply(self, option: Literal["no-binary", "only-binary"], value: str) -> FormatControl:
        """The state after one ``--no-binary VALUE`` or ``--only-binary VALUE`` (comma-separated
        names, ``:all:``, ``:none:``), as pip's ``handle_mutual_excludes`` changes it."""
        target = set(self.no_binary if option == "no-binary" else self.only_binary)
        other = set(self.only_binary if option == "no-binary" else self.no_binary)
        new = value.split(",")
        done = False
        while ":all:" in new:
            other.clear()
            target.clear()
            target.add(":all:")
            del new[: new.index(":all:") + 1]
            # Without a :none:, everything after :all: is covered by it.
            if ":none:" not in new:
                done = True
                break
        if not done:
            for name in new:
                if name == ":none:":
                    target.clear()
                    continue
                canonical = _canonical(name)
                other.discard(canonical)
                target.add(canonical)
        if option == "no-binary":
            return FormatControl(frozenset(target), frozenset(other))
        return FormatControl(frozenset(other), frozenset(target))

    def allowed(self, name: str) -> frozenset[Format]:
        """The formats pip may install ``name`` (a canonical name) from."""
        result: set[Format] = {"binary", "source"}
        if name in self.only_binary:
            result.discard("source")
        elif name in self.no_binary:
            result.discard("binary")
        elif ":all:" in self.only_binary:
            result.discard("source")
        elif ":all:" in self.no_binary:
            result.discard("binary")
        return frozenset(result)

    def __bool__(self) -> bool:
        return bool(self.no_binary or self.only_binary)

    def as_options(self) -> list[tuple[Literal["no-binary", "only-binary"], str]]:
        """Options that give this state from an empty one: the set holding ``:all:`` first, as
        pip would clear the other set when it comes later."""
        options: list[tuple[Literal["no-binary", "only-binary"], str]] = []
        for option, names in (("no-binary", self.no_binary), ("only-binary", self.only_binary)):
            if names:
                value = ",".join(sorted(names, key=lambda n: (n != ":all:", n)))
                options.append((option, value))  # type: ignore[arg-type]
        options.sort(key=lambda item: ":all:" not in item[1].split(","))
        return options


def _canonical(name: str) -> str:
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(name))


def format_control(config: Mapping[str, str]) -> FormatControl:
    """The format control that ``config`` (``pip_config()``, command-line options merged with
    ``IndexOptions.over``) sets. Of ``no-binary`` and ``only-binary``, the one holding
    ``:all:`` is applied first: applied second, it would clear the other, making it moot."""
    state = FormatControl()
    options: list[tuple[Literal["no-binary", "only-binary"], str]] = [
        ("no-binary", config.get("no-binary", "")),
        ("only-binary", config.get("only-binary", "")),
    ]
    options.sort(key=lambda item: ":all:" not in item[1].split(","))
    for option, value in options:
        if value:
            state = state.apply(option, value)
    return state


@dataclass(frozen=True)
class PipSettings:
    """pip's settings for a run: pip's configuration with the command line's options on top,
    each read once into its type.

    URLs may carry ``user:password``: the repr shows them without (``strip_credentials``).
    """

    # None: pip's default (PyPI). In pip's order, without repeats.
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    no_index: bool = False
    pre: bool = False
    prefer_binary: bool = False
    require_hashes: bool = False
    formats: FormatControl = FormatControl()
    # Constraint files pip's configuration names (paths or URLs, as written).
    constraints: tuple[str, ...] = ()
    # The release cooldown, the command line's over the configuration's (absolute times).
    cooldown: Cooldown | None = None
    cert: str | None = None
    client_cert: str | None = None
    proxy: str | None = None
    no_proxy_env: bool = False
    # None: the HTTP client's default.
    retries: int | None = None
    timeout: float = 15.0
    trusted_hosts: tuple[str, ...] = ()
    # The option names pip's configuration sets: the pinned path refuses those only pip honours.
    configured: frozenset[str] = frozenset()
    # The command line's options alone: what pip is given on its own command line (it reads
    # its configuration itself).
    command_line: IndexOptions = field(default_factory=IndexOptions)

    @classmethod
    def parse(
        cls, config: Mapping[str, str], command_line: IndexOptions | None = None
    ) -> PipSettings:
        """``config`` (``_pip.pip_config()``) with ``command_line`` on top, as pip combines
        its configuration and its command line."""
        options = command_line if command_line is not None else IndexOptions()
        merged = options.over(config)
        return cls(
            index_url=merged.get("index-url") or None,
            extra_index_urls=tuple(dict.fromkeys(merged.get("extra-index-url", "").split())),
            find_links=tuple(dict.fromkeys(merged.get("find-links", "").split())),
            no_index=config_flag(merged, "no-index"),
            pre=config_flag(merged, "pre"),
            prefer_binary=config_flag(merged, "prefer-binary"),
            require_hashes=config_flag(merged, "require-hashes"),
            formats=format_control(merged),
            constraints=tuple(config.get("constraint", "").split()),
            cooldown=options.cooldown
            if options.cooldown is not None
            else Cooldown.from_config(config),
            cert=config.get("cert") or None,
            client_cert=config.get("client-cert") or None,
            proxy=config.get("proxy") or None,
            no_proxy_env=config_flag(config, "no-proxy-env"),
            retries=_retries(config.get("retries")),
            timeout=_timeout(config.get("timeout") or config.get("default-timeout")),
            trusted_hosts=tuple(config.get("trusted-host", "").split()),
            configured=frozenset(config),
            command_line=options,
        )

    @classmethod
    def read(cls, command_line: IndexOptions | None = None) -> PipSettings:
        """pip's configuration here (``pip_config()``) with ``command_line`` on top."""
        from wheelhouse._base._pip import pip_config

        return cls.parse(pip_config(), command_line)

    @property
    def index_urls(self) -> list[str]:
        """The indexes pip reads, in its order: the index (PyPI by default), then each extra
        index; none with no-index."""
        if self.no_index:
            return []
        return list(dict.fromkeys([self.index_url or PYPI_SIMPLE, *self.extra_index_urls]))

    def without_indexes(self) -> PipSettings:
        """These settings with no index URLs: a client made from them sends no index's
        credentials anywhere."""
        return dataclasses.replace(self, index_url=None, extra_index_urls=())

    def __repr__(self) -> str:
        shown = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "configured"
        }
        shown["index_url"] = self.index_url and strip_credentials(self.index_url)
        for name in ("extra_index_urls", "find_links"):
            shown[name] = tuple(strip_credentials(u) for u in shown[name])
        shown["proxy"] = self.proxy and strip_credentials(self.proxy)
        return "PipSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"


def _retries(value: str | None) -> int | None:
    # As pip's option parser would take it, but a value it refuses means the default.
    if not value:
        return None
    try:
        return max(0, int(value))
    except ValueError:
        return None


def _timeout(value: str | None) -> float:
    if not value:
        return 15.0
    try:
        return float(value)
    except ValueError:
        logger.warning("pip's timeout %r is not a number; %s s is used", value, 15.0)
        return 15.0
