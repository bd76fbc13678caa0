"""The fence around pip's command line, its environment, and reading its configuration.

pip has no stable Python API, so what depends on how pip runs lives here; what its settings
mean once read (``pip_config()``'s strings) is ``pip_settings``'s, which parses them once.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import io
import logging
import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from wheelhouse._base import _pip_ahead
from wheelhouse._base._subprocess import Completed, run

__all__ = [
    "OptionLine",
    "RequirementFileError",
    "RequirementLine",
    "config_fingerprint",
    "hide_credentials",
    "offline_env",
    "online_env",
    "pip_command",
    "pip_config",
    "read_requirement_file",
    "read_requirement_options",
    "remove_netrc_files",
    "run_pip",
]

logger = logging.getLogger(__name__)

# Set on every pip run: never prompt (a prompt would hang a build), never nag about versions.
_QUIET = {"PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def pip_command(python: str | Path | None = None) -> list[str]:
    """The argv prefix that runs pip for ``python`` (default: the interpreter running us)."""
    if python is None or str(python) == sys.executable:
        # -P keeps a "pip" folder in the current directory from shadowing pip (Python >= 3.11,
        # which this interpreter is; another one may be older).
        return [sys.executable, "-P", "-m", "pip"]
    return [str(python), "-m", "pip"]


def online_env(
    base: Mapping[str, str] | None = None, *, urls: Sequence[str] = (), indexes: bool = True
) -> dict[str, str]:
    """The environment for pip runs that reach the index: the user's configuration is kept,
    but no URL pip is given carries credentials.

    pip writes its index URLs on the command line of the pip it starts to install an sdist's
    build requirements (``-i URL``), where every local user reads them (``ps``). So the index
    and find-links URLs of pip's configuration (``PIP_*`` variables and pip.conf), and
    ``urls`` (those the caller gives pip itself, which it must give without credentials:
    ``hide_credentials``), lose their ``user:password`` here, and pip (and uv) read them from
    a netrc file of our own that ``NETRC`` names, in a directory only this user can enter,
    holding the user's own netrc entries too. With ``indexes=False`` the caller replaces the
    configuration's indexes itself (with URLs that need no credentials).
    """
    env = dict(os.environ if base is None else base)
    env.update(_QUIET)
    keys = ("index-url", "extra-index-url", "find-links") if indexes else ("find-links",)
    config = pip_config()
    found: list[tuple[str, str, str]] = []
    for key in keys:
        values = config.get(key, "").split()
        if any(_credentials(v) for v in values):
            env["PIP_" + key.upper().replace("-", "_")] = " ".join(
                _hidden(v, found) for v in values
            )
    for url in urls:
        _hidden(url, found)
    if found:
        env["NETRC"] = str(_netrc_file(found, env))
    return env


def hide_credentials(url: str) -> str:
    """``url`` without ``user:password``: pip is given it so, and finds them in
    ``online_env(urls=[url])``'s netrc file."""
    return _hidden(url, [])


def _credentials(url: str) -> tuple[str, str, str] | None:
    """(host, login, password) of ``url``'s userinfo, decoded; None without one."""
    from urllib.parse import unquote, urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or "@" not in parts.netloc or not host:
        return None
    return host, unquote(parts.username or ""), unquote(parts.password or "")


def _hidden(url: str, found: list[tuple[str, str, str]]) -> str:
    """``url`` without its credentials, which are added to ``found`` when netrc can hold
    them (one login per host; a value netrc cannot write keeps them in the URL)."""
    from urllib.parse import urlsplit, urlunsplit

    creds = _credentials(url)
    if creds is None:
        return url
    host, login, password = creds
    known = {h: (lg, pw) for h, lg, pw in found}
    if (host in known and known[host] != (login, password)) or not all(
        _NETRC_TOKEN.fullmatch(v) for v in (host, login, password)
    ):
        # netrc holds one login per host, with a password, and plain tokens only.
        return url
    if host not in known:
        found.append(creds)
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


_NETRC_TOKEN = re.compile(r"[^\s\"'\\#]+")
_NETRC_FILES: dict[str, Path] = {}
_NETRC_LOCK = threading.Lock()


def _netrc_file(found: Sequence[tuple[str, str, str]], env: Mapping[str, str]) -> Path:
    """A 0600 netrc file in a 0700 directory, removed when we exit: ``found``'s logins, then
    the machines of the user's own netrc (``$NETRC`` or ``~/.netrc``) that ``found`` lacks."""
    import atexit
    import netrc
    import tempfile

    lines = [f"machine {h} login {lg} password {pw}" for h, lg, pw in found]
    ours = {h for h, _, _ in found}
    named = env.get("NETRC")
    for candidate in (named,) if named else ("~/.netrc", "~/_netrc"):
        try:
            theirs = netrc.netrc(os.path.expanduser(candidate))
        except (OSError, netrc.NetrcParseError):
            continue
        default = None
        for host, (login, account, password) in theirs.hosts.items():
            entry = [("login", login), ("account", account), ("password", password)]
            words = " ".join(f"{k} {_netrc_quoted(v)}" for k, v in entry if v)
            if host == "default":
                default = f"default {words}"
            elif host not in ours:
                lines.append(f"machine {_netrc_quoted(host)} {words}")
        if default:
            lines.append(default)  # last: every reader takes it as the fallback
        break
    text = "\n".join(lines) + "\n"
    with _NETRC_LOCK:
        path = _NETRC_FILES.get(text)
        if path is not None and path.exists():
            return path
        directory = Path(tempfile.mkdtemp(prefix="wheelhouse-netrc-"))  # 0700
        atexit.register(remove_netrc_files)
        path = directory / "netrc"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        _NETRC_FILES[text] = path
        return path


def remove_netrc_files() -> None:
    """Remove the netrc files ``online_env`` made (at exit: the CLI's ``os._exit`` skips
    ``atexit``, so it calls this itself)."""
    with _NETRC_LOCK:
        for path in _NETRC_FILES.values():
            shutil.rmtree(path.parent, ignore_errors=True)
        _NETRC_FILES.clear()


def _netrc_quoted(value: str) -> str:
    if _NETRC_TOKEN.fullmatch(value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for an offline install: no pip or uv configuration can leak in.

    ``pip --isolated`` still reads ``PIP_CONFIG_FILE`` and the global pip.conf, so the only way
    to ignore every configuration file is to point ``PIP_CONFIG_FILE`` at the null device and
    drop every ``PIP_*`` variable.
    """
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(("PIP_", "UV_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_CONFIG"] = "1"
    env.update(_QUIET)
    return env


def run_pip(
    args: list[str],
    *,
    env: Mapping[str, str],
    python: str | Path | None = None,
    cwd: Path | None = None,
    abort: threading.Event | None = None,
    on_stdout: Callable[[str], None] | None = None,
) -> Completed:
    """Run pip with ``args``; the caller decides what a failure means. ``on_stdout`` gets
    each line pip prints as it prints it (its progress)."""
    return run([*pip_command(python), *args], env=env, cwd=cwd, abort=abort, on_stdout=on_stdout)


# The pip command whose configuration section applies: the resolver runs `pip install
# --dry-run --report`, so `[install]` is what pip itself reads for a build.
RESOLVING_COMMAND = "install"


def pip_config(command: str = RESOLVING_COMMAND) -> dict[str, str]:
    """pip's effective configuration for ``pip <command>``, merged as pip's option parser does.

    Keys are option names (``global.cert`` and ``:env:.cert`` both become ``cert``). pip
    (``ConfigOptionParser._get_ordered_configuration_items``) reads ``[global]``, then the
    command's own section, then ``PIP_*`` variables, each over the one before, and ignores
    other commands' sections and empty values; which file wins within a section is pip's
    ``Configuration`` (site over user over global files, ``PIP_CONFIG_FILE`` last).
    """
    rank = {"global": 0, command: 1, ":env:": 2}
    found: dict[str, tuple[int, str]] = {}
    for key, value in _config_items():
        section, _, option = key.partition(".")
        if section not in rank or not option or not value:
            continue
        if option not in found or found[option][0] <= rank[section]:
            found[option] = (rank[section], str(value))
    return {option: value for option, (_, value) in found.items()}


def _environment_only() -> list[tuple[str, object]] | None:
    """pip's configuration when ``PIP_CONFIG_FILE`` is ``os.devnull``, else None.

    pip then reads no configuration file at all (its documented way to ignore them), only its
    ``PIP_*`` variables: pip's ``Configuration._load_environment_vars``, redone without
    loading pip (0.1 s of CPU a build). A test holds it to pip's.
    """
    if not _pip_ahead.files_ignored():
        return None
    found: dict[str, object] = {}
    for key, value in os.environ.items():
        if not key.startswith("PIP_"):
            continue
        name = key[4:].lower()
        if name in ("version", "help"):  # pip's ENV_NAMES_IGNORED
            continue
        found[":env:." + name.replace("_", "-").removeprefix("--")] = value
    return list(found.items())


def _config_items() -> list[tuple[str, object]]:
    """``section.option`` pairs in pip's load order, read by pip's own configuration loader.

    In-process it costs a fraction of running ``pip config list`` (0.15 s), which would sit
    at the start of every build; the subprocess remains the fallback. What a child started
    with the command read (``_pip_ahead``) is taken instead, once, when it can stand.
    """
    environment = _environment_only()
    if environment is not None:
        return environment
    ahead = _pip_ahead.take()
    if ahead is not None:
        return ahead
    try:
        from pip._internal.configuration import Configuration

        configuration = Configuration(isolated=False)
        configuration.load()
        return [(k, v) for _, values in configuration.items() for k, v in values.items()]
    except Exception:  # pip internals moved, or pip.conf is malformed: ask pip itself
        logger.debug("reading pip's configuration in-process failed", exc_info=True)
    # Not online_env(), which reads this configuration.
    result = run_pip(["config", "list"], env={**os.environ, **_QUIET})
    if not result.ok:
        return []
    items: list[tuple[str, object]] = []
    for line in result.stdout.splitlines():
        key, sep, raw = line.partition("=")
        if not sep:
            continue
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw.strip("'\"")
        items.append((key, value))
    return items


@dataclass(frozen=True)
class RequirementLine:
    """One requirement line of a requirements or constraints file, as pip reads it."""

    requirement: str
    path: Path
    line: int
    constraint: bool
    editable: bool
    hashes: dict[str, tuple[str, ...]]


class RequirementFileError(Exception):
    """pip could not read a requirements file; the message is pip's own."""


_COMES_FROM = re.compile(r"^-[rc] (?P<path>.+) \(line (?P<line>\d+)\)$")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logging.disable(previous)


def read_requirement_file(path: Path, *, constraint: bool) -> list[RequirementLine]:
    """Parse ``path`` with pip's own parser: comments, continuations, options, nested -r/-c.

    pip's parser is the reference for this syntax, and pip-tools reads requirement files the
    same way; its internals are imported here only, and only when a file must be read.
    """
    plain = _read_plain(path, constraint)
    if plain is not None:
        return plain
    return list(_parsed(path, constraint)[0])  # a copy: the parse is kept


def read_requirement_options(path: Path, *, constraint: bool) -> list[OptionLine]:
    """The option lines (``--pre``, ``-i URL``, ...) of ``path`` and of the files it includes,
    as pip's parser reads them: continuations joined, comments dropped, ``${VAR}`` expanded,
    nested ``-r``/``-c`` followed (those lines themselves are not listed). Paths are absolute.

    The file is parsed once for this and ``read_requirement_file`` together.
    """
    if _read_plain(path, constraint) is not None:
        return []  # no option can be on a plain line
    return list(_parsed(path, constraint)[1])


@dataclass(frozen=True)
class OptionLine:
    """An option line of a requirements or constraints file: where, and the options it sets
    (long names, e.g. ``("--index-url",)``)."""

    path: Path
    line: int
    options: tuple[str, ...]


_Parsed = tuple[list[RequirementLine], list[OptionLine]]
# (absolute path, constraint) -> (every file read and its bytes, what pip's parser made of
# them). pip's parser builds an option parser per line (tens of ms for a hashed lock file);
# a build reads its inputs, then the pinned path reads their options: one parse serves both.
_PARSED: dict[tuple[str, bool], tuple[tuple[tuple[Path, bytes | None], ...], _Parsed]] = {}


def _parsed(path: Path, constraint: bool) -> _Parsed:
    key = (str(path.absolute()), constraint)
    cached = _PARSED.get(key)
    if cached is not None and all(_bytes_of(p) == data for p, data in cached[0]):
        return cached[1]
    try:
        # pip's session (requests and all, 55 ms to import) is needed only when a file
        # includes another by URL: try without it first.
        result = _read_requirement_file(path, constraint, _NoSession())
    except _NeedsSession:
        from pip._internal.network.session import PipSession

        with PipSession() as session:
            result = _read_requirement_file(path, constraint, session)
    files = {path, *(line.path for line in result[0]), *(line.path for line in result[1])}
    if len(_PARSED) > 64:
        _PARSED.clear()
    _PARSED[key] = (tuple((p, _bytes_of(p)) for p in files), result)
    return result


def _bytes_of(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# A line pip's parser takes as it is: a name, extras, version specifiers and a marker; no
# option, continuation, URL, path or ${VAR}. Files of such lines (what pip-compile and
# uv pip compile write without hashes) skip importing pip's parser, a tenth of a cold build.
_PLAIN = re.compile(
    r"[A-Za-z0-9][A-Za-z0-9._-]*\s*(\[[\w.,\s-]*\])?[\s\w.*+!<>=~,-]*(;[^#@\\${}]*)?"
)
_COMMENT = re.compile(r"(^|\s+)#.*$")  # pip's own COMMENT_RE


def _read_plain(path: Path, constraint: bool) -> list[RequirementLine] | None:
    """The file's lines as pip's parser reads them, or None when pip's parser is needed."""
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = _COMMENT.sub("", raw).strip()
        if not line:
            continue
        if not _PLAIN.fullmatch(line):
            return None
        try:
            Requirement(line)
        except InvalidRequirement:
            return None  # pip's parser words the error
        lines.append(RequirementLine(line, path, number, constraint, False, {}))
    return lines


class _NeedsSession(Exception):
    pass


class _NoSession:
    def __getattr__(self, name: str) -> object:
        raise _NeedsSession(name)


def _read_requirement_file(
    path: Path, constraint: bool, session: object
) -> tuple[list[RequirementLine], list[OptionLine]]:
    from pip._internal.exceptions import InstallationError
    from pip._internal.req.req_file import (
        RequirementsFileParser,
        get_line_parser,
        handle_line,
    )

    lines: list[RequirementLine] = []
    options: list[OptionLine] = []
    try:
        # optparse prints "Usage: ..." to stderr before pip's parser raises, and pip logs an
        # undecodable file's fallback through the root logger: keep both out of our output.
        with _quiet():
            # What pip's parse_requirements does, keeping the option lines it drops.
            parser = RequirementsFileParser(session, get_line_parser(None))  # type: ignore[arg-type]
            for parsed_line in parser.parse(str(path), constraint):
                if getattr(parsed_line, "requirement", None) is None:
                    found = _options_set(parsed_line.opts)
                    where = Path(parsed_line.filename).absolute()
                    options.append(OptionLine(where, parsed_line.lineno, found))
                    continue
                parsed = handle_line(parsed_line, options=None, finder=None, session=session)  # type: ignore[arg-type]
                if parsed is None:
                    continue
                match = _COMES_FROM.match(parsed.comes_from or "")
                source = Path(match["path"]) if match else path
                lineno = int(match["line"]) if match else 0
                per_line = parsed.options or {}
                lines.append(
                    RequirementLine(
                        requirement=parsed.requirement,
                        path=source,
                        line=lineno,
                        constraint=parsed.constraint,
                        editable=parsed.is_editable,
                        hashes={k: tuple(v) for k, v in per_line.get("hashes", {}).items()},
                    )
                )
    except InstallationError as exc:
        raise RequirementFileError(str(exc)) from exc
    except RecursionError as exc:
        # pip >= 24 says "recursively references itself"; older pips recurse until they die.
        raise RequirementFileError(
            "recursively references itself through -r/-c (a file includes itself, perhaps "
            "through another)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise RequirementFileError(
            f"cannot be decoded ({exc.reason} at byte {exc.start}); save it as UTF-8"
        ) from exc
    return lines, options


def _options_set(values: object) -> tuple[str, ...]:
    """The long names of the options pip's line parser set in ``values`` (not defaults)."""
    from pip._internal.req.req_file import build_parser

    parser = build_parser()
    defaults = parser.get_default_values()
    defaults.index_url = None  # as pip's line parser starts each line
    names: list[str] = []
    for option in parser.option_list:
        dest = option.dest
        if dest is None or getattr(values, dest, None) == getattr(defaults, dest, None):
            continue
        if dest == "format_control":
            # --no-binary and --only-binary share one destination.
            control = getattr(values, dest)
            if option.get_opt_string() == "--no-binary" and not control.no_binary:
                continue
            if option.get_opt_string() == "--only-binary" and not control.only_binary:
                continue
        names.append(option.get_opt_string())
    return tuple(dict.fromkeys(names))


def config_fingerprint() -> str:
    """A digest of everything that configures pip here, without running pip (it takes 0.3 s).

    It covers every ``PIP_*`` variable and the bytes of each configuration file at the places
    pip documents (site, user, global, ``PIP_CONFIG_FILE``, the active virtualenv). It reads
    this process's environment only: platformdirs finds the user's files through it.
    """
    source = os.environ
    digest = hashlib.sha256()
    for key in sorted(k for k in source if k.startswith("PIP_")):
        digest.update(f"{key}={source[key]}\n".encode())
    for path in _config_files(source):
        try:
            digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
        except OSError:
            continue
    return digest.hexdigest()


def _config_files(env: Mapping[str, str]) -> list[Path]:
    """The configuration files pip reads, on every platform, and ``PIP_CONFIG_FILE``.

    pip's ``configuration.get_configuration_files`` and its ``utils.appdirs``, redone over the
    platformdirs we already import: importing pip's own modules would cost the no-op rebuild,
    which this fingerprint exists to keep fast, more than the rest of its checks.
    A test holds this list to pip's.
    """
    import platformdirs

    if sys.platform == "darwin":
        site_dirs = platformdirs.site_data_dir("pip", appauthor=False, multipath=True)
        global_dirs = site_dirs.split(os.pathsep)
    elif sys.platform == "win32":
        global_dirs = [platformdirs.site_config_dir("pip", appauthor=False, multipath=True)]
    else:
        site_dirs = platformdirs.site_config_dir("pip", appauthor=False, multipath=True)
        global_dirs = [*site_dirs.split(os.pathsep), "/etc"]
    user_dir = platformdirs.user_config_dir("pip", appauthor=False, roaming=True)
    if sys.platform == "darwin" and not os.path.isdir(user_dir):
        user_dir = os.path.expanduser("~/.config/pip")
    legacy = os.path.join(os.path.expanduser("~"), "pip" if sys.platform == "win32" else ".pip")
    name = "pip.ini" if sys.platform == "win32" else "pip.conf"
    files = [Path(d) / name for d in global_dirs if d]
    files += [Path(legacy) / name, Path(user_dir) / name, Path(sys.prefix) / name]
    if env.get("PIP_CONFIG_FILE"):
        files.append(Path(env["PIP_CONFIG_FILE"]))
    if env.get("VIRTUAL_ENV"):
        files.append(Path(env["VIRTUAL_ENV"]) / name)
    return files
