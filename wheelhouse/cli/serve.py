"""`wheelhouse serve`: a wheelhouse's index over HTTP, or a caching proxy of upstream indexes."""

import hashlib
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from wheelhouse._base.words import count
from wheelhouse.cli._app import (
    EXIT_CODES,
    _StderrHandler,
    _UserFormatter,
    app,
    setup_logging,
    state,
    wheelhouse_dir,
)
from wheelhouse.cli.build import ExcludeNewer, ExcludeNewerPackage, NoUploadTime
from wheelhouse.errors import InvalidWheelhouseError, UsageError

if TYPE_CHECKING:
    from wheelhouse.serve._asgi import ServeLimits
    from wheelhouse.upload.settings import UploadSettings

# `--upstream` given without a URL: the indexes pip is configured with.
_PIP_INDEXES = ":pip:"


def bare_upstream(args: list[str]) -> list[str]:
    """``args`` with a bare ``--upstream`` (last, or before another option) given its
    "pip's indexes" value: click options cannot take an optional value, typer's docs say."""
    if "serve" not in args:
        return args
    out = []
    for i, arg in enumerate(args):
        out.append(arg)
        following = args[i + 1] if i + 1 < len(args) else None
        if arg == "--upstream" and (following is None or following.startswith("-")):
            out.append(_PIP_INDEXES)
    return out


@app.command(epilog=EXIT_CODES)
def serve(
    ctx: typer.Context,
    directories: Annotated[
        Optional[list[Path]],  # noqa: UP045
        typer.Argument(
            metavar="[DIR ...]",
            help="Wheelhouses to serve [default: $WHEELHOUSE_DIR, else ./wheelhouse]. With "
            "--upstream, each answers alone for the projects it has.",
            show_default=False,
        ),
    ] = None,
    upstream: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--upstream",
            metavar="[URL]",
            help="Proxy this index (repeatable; the first that has a project answers for it). "
            "Without a URL: pip's index-url, then its extra-index-urls, with pip's TLS, proxy "
            "and credential settings.",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--store",
            metavar="DIR|s3://BUCKET/PREFIX",
            help="Where the proxy keeps pages, files and metadata "
            "[default: the wheelhouse cache's proxy/ folder]. An s3:// bucket is shared by "
            "any number of proxies (each downloads a file only if no other does).",
            show_default=False,
        ),
    ] = None,
    endpoint_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--endpoint-url",
            help="Proxy: the S3 endpoint of an s3:// --store (MinIO, Ceph, SeaweedFS...) "
            "[default: $AWS_ENDPOINT_URL, else AWS].",
            show_default=False,
        ),
    ] = None,
    lease_timeout: Annotated[
        float,
        typer.Option(
            "--lease-timeout",
            min=0.1,
            help="Proxy with an s3:// --store: seconds after which another proxy's download "
            "that has not finished counts as dead and is taken over.",
        ),
    ] = 60.0,
    ttl: Annotated[
        float,
        typer.Option("--ttl", min=0, help="Seconds before a page is revalidated upstream."),
    ] = 600.0,
    offline: Annotated[
        bool, typer.Option("--offline", help="Proxy: serve only what the store holds.")
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Proxy: seconds upstream has to answer a request."),
    ] = 15.0,
    workers: Annotated[
        int, typer.Option("--workers", min=1, help="Proxy: worker processes sharing the store.")
    ] = 1,
    forwarded_allow_ips: Annotated[
        str,
        typer.Option(
            "--forwarded-allow-ips",
            metavar="IPS",
            help="Proxy: peers (comma-separated addresses or networks, or *) whose "
            "X-Forwarded-Proto, -Host and -Prefix say how clients reach the proxy; pages "
            "link files by that URL, else by the request's Host.",
        ),
    ] = "127.0.0.1",
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port.")] = 8000,
    header_timeout: Annotated[
        float,
        typer.Option(
            "--header-timeout",
            min=0.1,
            help="Seconds a client has to send a request's headers (and again its body) "
            "before its connection is closed.",
        ),
    ] = 10.0,
    upload: Annotated[
        bool,
        typer.Option(
            "--upload",
            help="The (first) DIR is a private index that accepts uploads from twine and "
            "'uv publish' by the users of --users; it is created when it does not exist. "
            "With --upstream, its projects are never served from upstream.",
        ),
    ] = False,
    users: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--users",
            metavar="FILE",
            help="With --upload: the htpasswd file (bcrypt entries) of the users who may "
            "upload; manage it with 'wheelhouse users'.",
            show_default=False,
        ),
    ] = None,
    max_upload_size: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-upload-size",
            min=1,
            metavar="BYTES",
            help="With --upload: the largest file accepted (413 past it) [default: 1 GiB].",
            show_default=False,
        ),
    ] = None,
    anonymous_read: Annotated[
        bool,
        typer.Option(
            "--anonymous-read/--no-anonymous-read",
            help="With --upload: whether reading the server needs no account.",
        ),
    ] = True,
    config: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--config",
            metavar="FILE",
            help="A TOML file naming the private indexes, their users and rights, and the "
            "upstreams (instead of DIR, --upload, --users and --upstream); see "
            "docs/team-index.md.",
            show_default=False,
        ),
    ] = None,
    max_connections: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--max-connections",
            min=1,
            help="Open connections per process; past it, the one waiting longest for a "
            "request is closed [default: from the open-file limit, a third of it].",
            show_default=False,
        ),
    ] = None,
    exclude_newer: ExcludeNewer = None,
    exclude_newer_package: ExcludeNewerPackage = None,
    no_upload_time: NoUploadTime = None,
    osv: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--osv",
            metavar="FILE",
            help="Proxy: answer the OSV API's POST /v1/query (pip-audit -s osv --osv-url) "
            "from this OSV snapshot (see 'wheelhouse audit fetch').",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve a wheelhouse's index and files over HTTP (PEP 503/691) until Ctrl-C, or with
    --upstream a caching proxy of package indexes (PEP 503/691/658) for a team or CI fleet."""
    from wheelhouse.serve._asgi import ServeLimits

    limits = ServeLimits(header_timeout=header_timeout, max_connections=max_connections)
    given = list(directories or [])
    private: UploadSettings | None = None
    indexes: tuple[UploadSettings, ...] = ()  # each under /<name>/ (a configuration file's)
    if config is not None:
        if given or upstream is not None or upload or users is not None:
            raise UsageError(
                "--config names the indexes: give no DIR, --upstream, --upload or --users",
                hint="put them in the configuration file",
            )
        from wheelhouse.upload.config import read_config

        configured = read_config(config)
        private, indexes = configured.private, configured.privates
        if private is None:
            raise UsageError(f"the configuration {str(config)!r} names no private index")
        given = [private.directory]
        upstream = list(configured.upstreams) or None
    elif upload != (users is not None):
        raise UsageError(
            "--upload and --users go together",
            hint="serve DIR --upload --users FILE (create FILE with 'wheelhouse users add')",
        )
    elif upload and not given:
        raise UsageError(
            "--upload needs the private index's directory", hint="serve DIR --upload ..."
        )
    elif upload and users is not None:
        from wheelhouse.upload import settings
        from wheelhouse.upload.config import tokens_path

        users = users.absolute()
        private = settings.UploadSettings(
            directory=given[0].absolute(),
            users=users,
            tokens=tokens_path(users),
            anonymous_read=anonymous_read,
            max_file=max_upload_size,
        )
    if upstream is None:
        proxy_only = _given(ctx, _PROXY_ONLY)
        if proxy_only:
            raise UsageError(
                f"{_and(proxy_only)} {'applies' if len(proxy_only) == 1 else 'apply'} "
                "to the proxy only",
                hint="add --upstream (with a URL, or alone for pip's index)",
            )
        if len(given) > 1:
            raise UsageError(
                "without --upstream, serve takes one wheelhouse directory",
                hint="add --upstream to proxy an index with several local wheelhouses",
            )
        from wheelhouse.serve.static import serve as run_serve

        where = wheelhouse_dir(given[0] if given else None)
        if private is None:  # a private index's directory is made by its first upload
            _check_servable(where)
        with _log_as_a_server():
            run_serve(
                where,
                host,
                port,
                limits=limits,
                upload=private,
                indexes=indexes,
                ready=lambda url: typer.echo(
                    f"serving {where} at {url} (Ctrl-C to stop)", err=True
                ),
            )
        return
    guards = _proxy_guards(exclude_newer, exclude_newer_package or [], no_upload_time, osv)
    with _log_as_a_server():
        _serve_proxy(
            given, upstream, store, endpoint_url, lease_timeout, ttl, offline, timeout,
            workers, host, port, limits, private, forwarded_allow_ips, guards, indexes,
        )  # fmt: skip


# The options that only the proxy reads, by parameter name, as a user spells them.
_PROXY_ONLY = {
    "offline": "--offline",
    "store": "--store",
    "endpoint_url": "--endpoint-url",
    "lease_timeout": "--lease-timeout",
    "ttl": "--ttl",
    "timeout": "--timeout",
    "workers": "--workers",
    "forwarded_allow_ips": "--forwarded-allow-ips",
    "exclude_newer": "--exclude-newer",
    "exclude_newer_package": "--exclude-newer-package",
    "no_upload_time": "--no-upload-time",
    "osv": "--osv",
}


def _proxy_guards(
    exclude_newer: str | None, packages: list[str], no_upload_time: str | None, osv: Path | None
) -> dict[str, Any]:
    """The proxy's guards (docs/proxy.md), checked here so a bad value is a usage error, as
    ProxySettings fields."""
    from wheelhouse._base.cooldown import Cooldown

    cooldown = Cooldown.from_options(exclude_newer, packages, no_upload_time or "refuse")
    if cooldown is None and no_upload_time is not None:
        raise UsageError("--no-upload-time applies to a cooldown: give --exclude-newer too")
    if osv is not None and not osv.is_file():
        raise UsageError(
            f"--osv {str(osv)!r} is not a file",
            hint="fetch the snapshot with 'wheelhouse audit fetch -o FILE'",
        )
    return {
        "exclude_newer": exclude_newer,
        "exclude_newer_packages": tuple(packages),
        "no_upload_time": no_upload_time or "refuse",
        "osv": str(osv.absolute()) if osv is not None else None,
    }


def _given(context: typer.Context, options: dict[str, str]) -> list[str]:
    """The ``options`` the command line set (even to their default), as a user spells them."""
    given = []
    for name, spelled in options.items():
        source = context.get_parameter_source(name)
        if source is not None and source.name != "DEFAULT":
            given.append(spelled)
    return given


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _check_servable(where: Path) -> None:
    """Refuse, with the line that fits, a directory that the static server cannot serve."""
    from wheelhouse.house.index import HTML_PAGE, INDEX_DIR
    from wheelhouse.house.manifest import MANIFEST_NAME

    if not where.exists():
        raise InvalidWheelhouseError(
            f"{str(where)!r} does not exist",
            hint="name the wheelhouse to serve, or build one with "
            "'wheelhouse build -r requirements.txt -o DIR'",
        )
    if not where.is_dir():
        raise InvalidWheelhouseError(
            f"{str(where)!r} is not a directory",
            hint="name the wheelhouse directory to serve",
        )
    if (where / INDEX_DIR / HTML_PAGE).is_file() or (where / MANIFEST_NAME).is_file():
        return  # served as is, or the server says its index is missing and how to write it
    wheels = sum(1 for p in where.glob("*.whl") if p.is_file())
    if wheels:
        raise InvalidWheelhouseError(
            f"{str(where)!r} is not a wheelhouse (it has no {MANIFEST_NAME}): it holds "
            f"{count(wheels, 'wheel')} and no package index",
            hint=f"install from it with 'pip install --no-index --find-links {where} NAME', "
            f"or make a wheelhouse of it with 'wheelhouse build -r requirements.txt "
            f"--find-links {where} -o DIR'",
        )
    raise InvalidWheelhouseError(
        f"{str(where)!r} is not a wheelhouse (it has no {MANIFEST_NAME})",
        hint="build one with 'wheelhouse build -r requirements.txt -o DIR'",
    )


class _ServerFormatter(_UserFormatter):
    """The CLI's lines (``warning: ...``), but a server's own lines (one per request, its
    start and stop) as they are: a request log a person reads, not ``wheelhouse: ``
    before each line."""

    def format(self, record: logging.LogRecord) -> str:
        if record.levelno < logging.WARNING and not state.debug:
            return record.getMessage()
        return super().format(record)


@contextmanager
def _log_as_a_server() -> Iterator[None]:
    """Show wheelhouse's INFO lines (the request log) on the CLI's handler, not on another:
    warnings keep their ``warning:`` prefix and urllib3's retries stay hidden."""
    setup_logging(state.verbosity)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, _StderrHandler) and isinstance(handler.formatter, _UserFormatter):
            handler.setFormatter(_ServerFormatter())
    ours = logging.getLogger("wheelhouse")
    level = ours.level
    if not state.debug:
        ours.setLevel(logging.INFO)
    try:
        yield
    finally:
        ours.setLevel(level)
        setup_logging(state.verbosity)


def _serve_proxy(
    directories: list[Path],
    upstream: list[str],
    store: str | None,
    endpoint_url: str | None,
    lease_timeout: float,
    ttl: float,
    offline: bool,
    timeout: float,
    workers: int,
    host: str,
    port: int,
    limits: "ServeLimits",
    private: "UploadSettings | None" = None,
    forwarded_allow_ips: str = "127.0.0.1",
    guards: dict[str, Any] | None = None,
    indexes: "tuple[UploadSettings, ...]" = (),
) -> None:
    from wheelhouse._base._http import strip_credentials
    from wheelhouse._base._pip import pip_config
    from wheelhouse._base.pip_settings import PipSettings
    from wheelhouse.house.locations import cache_root
    from wheelhouse.serve.proxy import ProxySettings, serve_proxy

    config = pip_config()
    urls: list[str] = []
    for url in upstream:
        if url == _PIP_INDEXES:
            for index in PipSettings.parse(config).index_urls:
                if index.startswith(("http://", "https://")):
                    urls.append(index)
                else:  # pip reads file:// indexes itself; a proxy has nothing to add there
                    logging.getLogger(__name__).warning(
                        "not proxying pip's index %s: only http(s) indexes are proxied",
                        strip_credentials(index),
                    )
        elif url.startswith(("http://", "https://")):
            urls.append(url)
        else:
            raise UsageError(
                f"--upstream {strip_credentials(url)!r} is not an http(s) URL",
                hint="give an index URL such as https://pypi.org/simple/, or --upstream alone",
            )
    urls = list(dict.fromkeys(urls))
    if not urls:
        raise UsageError(
            "pip is configured with no index (no-index), so there is nothing to proxy",
            hint="name the index with --upstream URL",
        )
    bucket: str | None = None
    if store is not None and store.startswith("s3://"):
        # This instance's copy of what it read from the bucket, apart from other buckets'.
        bucket = store
        local = cache_root() / "proxy-bucket" / hashlib.sha256(store.encode()).hexdigest()[:16]
    else:
        local = Path(store) if store is not None else cache_root() / "proxy"
    if private is not None and bucket is not None:
        # The private indexes live in the bucket too: every proxy on it takes uploads and
        # shows each at once; their directories are each proxy's copy.
        import dataclasses

        def shared(settings: "UploadSettings") -> "UploadSettings":
            where = f"{bucket.rstrip('/')}/private/{settings.name}"
            return dataclasses.replace(settings, bucket=where, endpoint_url=endpoint_url)

        private, indexes = shared(private), tuple(shared(i) for i in indexes)
    if private is not None:
        from wheelhouse.upload.store import PrivateIndex

        for each in (private, *indexes):  # created before the proxy checks its wheelhouses
            PrivateIndex(each.directory)
    settings = ProxySettings(
        store=local.absolute(),
        bucket=bucket,
        endpoint_url=endpoint_url,
        lease_timeout=lease_timeout,
        upstreams=tuple(urls),
        local=tuple(d.absolute() for d in directories),
        ttl=ttl,
        offline=offline,
        timeout=timeout,
        pip_config=config,
        upload=private.to_json() if private is not None else None,
        indexes=tuple(i.to_json() for i in indexes),
        forwarded_allow_ips=forwarded_allow_ips,
        **(guards or {}),
    )
    serve_proxy(
        settings,
        host,
        port,
        workers=workers,
        limits=limits,
        ready=lambda url: typer.echo(
            f"proxying {settings.describe()} at {url} (Ctrl-C to stop)", err=True
        ),
    )
