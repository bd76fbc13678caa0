"""The commands that carry a wheelhouse across an air gap: pack, unpack, sbom."""

import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer

from wheelhouse._base.words import count
from wheelhouse.cli._app import (
    EXIT_CODES,
    JsonFlag,
    WheelhouseDir,
    app,
    print_json,
    setup_logging,
    wheelhouse_dir,
)
from wheelhouse.errors import UsageError

_BUNDLE_CODES = (
    EXIT_CODES
    + " For bundles: 3 not a bundle, a volume missing, or an update for another wheelhouse;"
    " 6 a member damaged, unlisted or unsafe (link, device, path outside)."
)


@app.command(epilog=_BUNDLE_CODES)
def pack(
    directory: WheelhouseDir = None,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="The bundle: FILE.tar, FILE.tar.gz or FILE.tar.zst.",
        ),
    ] = Path("wheelhouse.tar.gz"),
    since: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option(
            "--since",
            metavar="OLD",
            help="Make an update: only what OLD (a bundle, wheelhouse.json or wheelhouse) lacks.",
        ),
    ] = None,
    split: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--split",
            metavar="SIZE",
            help="Write volumes FILE.001, FILE.002, ... of at most SIZE (4G, 700M, 100K).",
        ),
    ] = None,
    with_installer: Annotated[
        bool,
        typer.Option(
            "--with-installer",
            help="Add installer wheels for every target (pip, or --installer); INSTALL.txt "
            "gives the commands that run them.",
        ),
    ] = False,
    installer: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--installer",
            metavar="pip|uv",
            help="Installer wheels to add with --with-installer (repeatable) [default: pip].",
        ),
    ] = None,
    index_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "-i", "--index-url", metavar="URL", help="Index to get the installer from (as pip)."
        ),
    ] = None,
    find_links: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "-f", "--find-links", metavar="URL|DIR", help="Extra place for the installer (as pip)."
        ),
    ] = None,
    as_json: JsonFlag = False,
    quiet: Annotated[
        bool, typer.Option("-q", "--quiet", help="Only errors and the sha256 lines.")
    ] = False,
) -> None:
    """Write a wheelhouse into one verifiable file (or volumes) to carry across an air gap."""
    from wheelhouse.house.bundle import compression_of, parse_size
    from wheelhouse.house.bundle import pack as run_pack
    from wheelhouse.house.contents import open_wheelhouse

    setup_logging(0)
    compression_of(output)  # a bad name is a usage error before any work
    size = parse_size(split) if split is not None else None
    installers = list(dict.fromkeys(installer or []))
    if installers and not with_installer:
        raise UsageError("--installer needs --with-installer")
    for name in installers:
        if name not in ("pip", "uv"):
            raise UsageError(f"--installer must be 'pip' or 'uv', not {name!r}")
    where = wheelhouse_dir(directory)
    manifest = open_wheelhouse(where)
    with tempfile.TemporaryDirectory(prefix="wheelhouse-installers-") as tmp:
        extra: list[tuple[str, Path]] = []
        if with_installer:
            from wheelhouse._base.pip_settings import IndexOptions
            from wheelhouse.pipeline.installers import fetch_installers

            index = IndexOptions(index_url=index_url, find_links=tuple(find_links or ()))
            extra = fetch_installers(
                manifest, installers or ["pip"], index=index, directory=Path(tmp)
            )
        result = run_pack(where, output, since=since, split=size, extra=extra)
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "kind": result.kind,
                "compression": result.compression,
                "base-manifest": result.base,
                "files": result.files,
                "members": result.members,
                "size": result.size,
                "volumes": [
                    {"path": str(v.path), "sha256": v.sha256, "size": v.size}
                    for v in result.volumes
                ],
            }
        )
        return
    for volume in result.volumes:
        typer.echo(f"{volume.sha256}  {volume.path}")
    if quiet:
        return
    typer.echo(
        f"{output}: {result.kind} bundle, {count(result.files, 'file')}, "
        f"{count(result.size, 'byte')}"
        + (f" in {count(len(result.volumes), 'volume')}" if size is not None else ""),
        err=True,
    )


@app.command(epilog=_BUNDLE_CODES)
def unpack(
    bundle: Annotated[
        Path, typer.Argument(metavar="FILE", help="The bundle, or its first volume FILE.001.")
    ],
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            metavar="DIR",
            help="The wheelhouse to write (an update: the wheelhouse it updates) "
            "[default: $WHEELHOUSE_DIR, else ./wheelhouse].",
        ),
    ] = None,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
) -> None:
    """Check every member of a bundle, then publish its wheelhouse into DIR atomically."""
    from wheelhouse.house.bundle import unpack as run_unpack

    setup_logging(0)
    out = wheelhouse_dir(output)
    on_wait = None if quiet else (lambda line: typer.echo(line, err=True))
    result = run_unpack(bundle, out, on_wait=on_wait)
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "directory": str(result.directory),
                "kind": result.kind,
                "files": result.files,
                "reused": result.reused,
                "removed": list(result.removed),
                "targets": [lock.target for lock in result.manifest.locks],
            }
        )
        return
    if quiet:
        return
    typer.echo(
        f"{out}: {result.kind} bundle unpacked and verified, "
        f"{count(len(result.manifest.files), 'file')}"
        + (f" ({result.files} new, {result.reused} kept)" if result.kind == "update" else ""),
        err=True,
    )


@app.command(epilog=EXIT_CODES)
def sbom(
    directory: WheelhouseDir = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format", metavar="cyclonedx-json|spdx-json", help="CycloneDX 1.6 or SPDX 2.3 JSON."
        ),
    ] = "cyclonedx-json",
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout."),
    ] = None,
) -> None:
    """Write the software bill of materials of a wheelhouse: every file it ships."""
    from wheelhouse._base.files import write_atomic
    from wheelhouse.house.contents import open_wheelhouse
    from wheelhouse.house.sbom import render_sbom

    where = wheelhouse_dir(directory)
    document = render_sbom(where, open_wheelhouse(where), fmt)
    if output is None:
        typer.echo(document.decode("utf-8"), nl=False)
        return
    write_atomic(output, document)
    typer.echo(f"{output}: {fmt} SBOM written", err=True)
