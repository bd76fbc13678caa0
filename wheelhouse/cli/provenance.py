"""`wheelhouse provenance`: verify PEP 740 provenance offline, and carry the trust root it needs."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse.cli._app import EXIT_CODES, JsonFlag, WheelhouseDir, app, print_json, wheelhouse_dir

if TYPE_CHECKING:
    from wheelhouse.provenance import ProvenanceReport

# sigstore and pypi-attestations are imported by the commands' bodies only (through
# wheelhouse.provenance): every other command starts without them.

provenance_app = typer.Typer(
    help="Verify the PEP 740 provenance a wheelhouse carries, offline.",
    no_args_is_help=True,
)
app.add_typer(provenance_app, name="provenance")


@provenance_app.command("verify", epilog=EXIT_CODES)
def verify_(
    directory: WheelhouseDir = None,
    policy: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--policy",
            metavar="FILE",
            help="TOML file pinning each project's publisher (docs/provenance.md).",
        ),
    ] = None,
    trust_root: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--trust-root",
            metavar="FILE",
            help="Sigstore trusted_root.json [default: DIR/sigstore/trusted_root.json].",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Verify every file's provenance (DIR/<file>.provenance) offline; exit 0 only if all hold."""
    from wheelhouse.errors import ProvenanceError
    from wheelhouse.provenance import read_policy, verify_provenance

    rules = read_policy(policy) if policy is not None else None
    report = verify_provenance(wheelhouse_dir(directory), policy=rules, trust_root=trust_root)
    if as_json:
        print_json(report.to_json())
    else:
        _table(report)
        for problem in report.problems:
            typer.echo(f"problem: {problem.message}", err=True)
        verdict = "ok" if report.ok else f"{len(report.problems)} problem(s)"
        typer.echo(
            f"{report.directory}: {len(report.verified)} verified, "
            f"{len(report.without_provenance)} without provenance, {verdict}",
            err=True,
        )
    if not report.ok:
        raise typer.Exit(ProvenanceError.exit_code)


@provenance_app.command("trust-root", epilog=EXIT_CODES)
def trust_root_(
    directory: WheelhouseDir = None,
    source: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--from",
            metavar="FILE",
            help="A Sigstore trusted_root.json [default: the production root that the "
            "installed sigstore package ships].",
        ),
    ] = None,
) -> None:
    """Write the Sigstore trust root into the wheelhouse (DIR/sigstore/trusted_root.json)."""
    from wheelhouse.house.contents import open_wheelhouse
    from wheelhouse.house.directory import locked
    from wheelhouse.provenance.trustroot import install_trust_root, source_trust_root

    where = wheelhouse_dir(directory)
    open_wheelhouse(where)
    # Checked before the lock is taken: a bad root writes nothing, not even the lock file.
    checked = source_trust_root(source)
    with locked(where.absolute()):
        root = install_trust_root(where, checked)
    typer.echo(f"{root.path}: trust root written", err=True)


def _table(report: "ProvenanceReport") -> None:
    rows = [
        (
            f.filename,
            "; ".join(p.describe() for p in f.publishers) or "-",
            f.status,
        )
        for f in report.files
    ]
    if not rows:
        return
    width = [max(len(row[i]) for row in (("FILE", "PUBLISHER", "STATUS"), *rows)) for i in (0, 1)]
    for row in (("FILE", "PUBLISHER", "STATUS"), *rows):
        typer.echo(f"{row[0]:<{width[0]}}  {row[1]:<{width[1]}}  {row[2]}")
