"""`wheelhouse audit`: fetch an OSV snapshot on the connected side; audit a wheelhouse offline."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from typer.core import TyperGroup

from wheelhouse.cli._app import (
    EXIT_CODES,
    JsonFlag,
    WheelhouseDir,
    app,
    print_json,
    setup_logging,
    wheelhouse_dir,
)
from wheelhouse.errors import ExitCode

if TYPE_CHECKING:
    # typer carries its own click; its groups take that click's Context.
    from typer._click.core import Context

    from wheelhouse.audit.scan import AuditReport

_AUDIT_CODES = (
    EXIT_CODES + f" For audit: {ExitCode.VULNERABLE} a distribution has a known vulnerability;"
    " 3 the OSV snapshot is missing, not a zip, or holds a malformed record;"
    " 6 the snapshot differs from the sha256 recorded when it was fetched."
)


class _DefaultCheck(TyperGroup):
    """``wheelhouse audit DIR`` means ``wheelhouse audit check DIR``; ``fetch`` is the other."""

    def parse_args(self, ctx: "Context", args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ctx.help_option_names):
            args = ["check", *args]
        return super().parse_args(ctx, args)


audit_app = typer.Typer(
    cls=_DefaultCheck,
    help="Audit a wheelhouse against an OSV snapshot, offline: 'wheelhouse audit [DIR]' runs "
    "'check'; 'fetch' gets the snapshot on the connected side.",
    epilog=_AUDIT_CODES,
    no_args_is_help=False,
)
app.add_typer(audit_app, name="audit")


@audit_app.command("check", epilog=_AUDIT_CODES)
def check(
    directory: WheelhouseDir = None,
    osv: Annotated[
        Optional[Path],  # noqa: UP045 - typer reads the annotation at run time
        typer.Option(
            "--osv",
            metavar="FILE",
            help="The OSV snapshot (the PyPI export's zip) [default: DIR/osv/PyPI.zip].",
        ),
    ] = None,
    ignore: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--ignore",
            metavar="ID",
            help="Leave out a vulnerability by any of its ids (PYSEC, GHSA, CVE); repeatable.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Match every distribution of the wheelhouse against the OSV snapshot (never any network).

    `wheelhouse audit DIR` is this command. Exit 0: no known vulnerability;
    11: vulnerabilities found (listed on stdout).
    """
    from wheelhouse.audit.fetch import read_info, snapshot_in
    from wheelhouse.audit.scan import audit_wheelhouse

    setup_logging(0)
    where = wheelhouse_dir(directory)
    from wheelhouse.house.contents import open_wheelhouse

    manifest = open_wheelhouse(where)
    snapshot = osv if osv is not None else snapshot_in(where)
    info = read_info(snapshot)
    report = audit_wheelhouse(
        manifest,
        snapshot,
        ignore=tuple(ignore or ()),
        expected_sha256=info.sha256 if info is not None else None,
    )
    if as_json:
        data: dict[str, Any] = report.to_json()
        data["snapshot"]["fetched"] = info.fetched if info is not None else None
        data["snapshot"]["source"] = info.source if info is not None else None
        print_json(data)
    else:
        _print_table(report)
    fetched = f", fetched {info.fetched}" if info is not None else ""
    typer.echo(
        f"audited {report.distributions} distributions against {report.records} OSV records"
        f"{fetched}: {_count(len(report.findings))}"
        + (f" ({len(report.ignored)} ignored)" if report.ignored else ""),
        err=True,
    )
    if report.findings:
        raise typer.Exit(ExitCode.VULNERABLE)


def _count(found: int) -> str:
    if not found:
        return "no known vulnerabilities"
    return f"{found} known vulnerabilit{'y' if found == 1 else 'ies'}"


def _print_table(report: "AuditReport") -> None:
    if not report.findings:
        return
    header = ("project", "version", "id", "aliases", "fixed in", "summary")
    rows = [
        (
            f.name,
            f.version,
            f.id,
            ", ".join(f.aliases) or "-",
            ", ".join(f.fixed) or "-",
            f.summary.strip() or "-",
        )
        for f in report.findings
    ]
    # The summary is last and not padded: it is free text of any length.
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header) - 1)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]).rstrip())


@audit_app.command("fetch", epilog=EXIT_CODES)
def fetch(
    directory: WheelhouseDir = None,
    url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--url", metavar="URL", help="Where the OSV PyPI export is."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "-o",
            "--output",
            metavar="FILE",
            help="Write the snapshot here instead of into the wheelhouse (DIR/osv/PyPI.zip).",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Download the OSV PyPI export (on the connected side) into the wheelhouse, to carry.

    Uses pip's configuration (certificate, proxy); the snapshot's sha256, source and date
    are kept beside it (FILE.json), and checked by every audit.
    """
    from wheelhouse._base.pip_settings import PipSettings
    from wheelhouse.audit.fetch import DEFAULT_URL, fetch_snapshot, snapshot_in

    setup_logging(0)
    source = url or DEFAULT_URL
    if output is not None:
        info = fetch_snapshot(source, output, pip=PipSettings.read())
        dest = output
    else:
        from wheelhouse.house.directory import locked

        where = wheelhouse_dir(directory)
        from wheelhouse.house.contents import open_wheelhouse

        open_wheelhouse(where)
        dest = snapshot_in(where)
        with locked(where):
            info = fetch_snapshot(source, dest, pip=PipSettings.read())
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "path": str(dest),
                "source": info.source,
                "sha256": info.sha256,
                "size": info.size,
                "fetched": info.fetched,
                "records": info.records,
            }
        )
    typer.echo(
        f"fetched {info.records} OSV records ({info.size / 1e6:.1f} MB, sha256 {info.sha256}) "
        f"from {info.source} into {str(dest)!r}",
        err=True,
    )
