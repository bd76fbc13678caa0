"""`wheelhouse serve`: a wheelhouse's index over HTTP, or a caching proxy of upstream indexes."""

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse.cli._app import EXIT_CODES, app, wheelhouse_dir
from wheelhouse.errors import UsageError

if TYPE_CHECKING:
    from wheelhouse.serve._asgi import ServeLimits

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
) -> None:
    """Serve a wheelhouse's index and files over HTTP (PEP 503/691) until Ctrl-C, or with
    --upstream a caching proxy of package indexes (PEP 503/691/658) for a team or CI fleet."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    from wheelhouse.serve._asgi import ServeLimits

    limits = ServeLimits(header_timeout=header_timeout, max_connections=max_connections)
    given = list(directories or [])
    if upstream is None:
        if offline or workers != 1 or store is not None or endpoint_url is not None:
            raise UsageError(
                "--offline, --store, --endpoint-url and --workers apply to the proxy only",
                hint="add --upstream (with a URL, or alone for pip's index)",
            )
        if len(given) > 1:
            raise UsageError(
                "without --upstream, serve takes one wheelhouse directory",
                hint="add --upstream to proxy an index with several local wheelhouses",
            )
        from wheelhouse.serve.static import serve as run_serve

        where = wheelhouse_dir(given[0] if given else None)
        run_serve(
            where,
            host,
            port,
            limits=limits,
            ready=lambda url: typer.echo(f"serving {where} at {url} (Ctrl-C to stop)", err=True),
        )
        return
    _serve_proxy(
        given, upstream, store, endpoint_url, lease_timeout, ttl, offline, timeout, workers,
        host, port, limits, forwarded_allow_ips,
    )  # fmt: skip


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
    forwarded_allow_ips: str = "127.0.0.1",
) -> None:
    from wheelhouse._base._http import strip_credentials
    from wheelhouse._base._pip import index_urls, pip_config
    from wheelhouse.house.locations import cache_root
    from wheelhouse.serve.proxy import ProxySettings, serve_proxy

    config = pip_config()
    urls: list[str] = []
    for url in upstream:
        if url == _PIP_INDEXES:
            for index in index_urls(config):
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
        forwarded_allow_ips=forwarded_allow_ips,
    )
    serve_proxy(
        settings,
        host,
        port,
        workers=workers,
        limits=limits,
        ready=lambda url: typer.echo(f"proxying at {url} (Ctrl-C to stop)", err=True),
    )
