"""The commands that read or rewrite a wheelhouse: verify, index, export, merge, list."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from wheelhouse.cli._app import (
    EXIT_CODES,
    JsonFlag,
    WheelhouseDir,
    app,
    print_json,
    setup_logging,
    wheelhouse_dir,
)
from wheelhouse.cli._reporters import count
from wheelhouse.errors import ExitCode, UsageError

if TYPE_CHECKING:
    from wheelhouse.house.verify import VerifyReport
    from wheelhouse.provenance import ProvenancePolicy, ProvenanceReport


@app.command(epilog=EXIT_CODES)
def verify(
    directory: WheelhouseDir = None,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only the problems.")] = False,
    provenance: Annotated[
        bool,
        typer.Option(
            "--provenance",
            help="Then verify each file's PEP 740 provenance offline (docs/provenance.md).",
        ),
    ] = False,
    policy: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--policy", metavar="FILE", help="With --provenance: the publisher policy (TOML)."
        ),
    ] = None,
    trust_root: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--trust-root",
            metavar="FILE",
            help="With --provenance: the Sigstore trusted_root.json "
            "[default: DIR/sigstore/trusted_root.json].",
        ),
    ] = None,
) -> None:
    """Check every file of a wheelhouse against its manifest; exit 0 only if all holds."""
    from wheelhouse.house.verify import verify as run_verify

    if not provenance and (policy is not None or trust_root is not None):
        raise UsageError("--policy and --trust-root go with --provenance")
    rules = None
    if policy is not None:
        from wheelhouse.provenance import read_policy

        rules = read_policy(policy)  # a malformed policy is refused before any work
    report = run_verify(wheelhouse_dir(directory))
    checked = None
    if as_json:
        # The provenance is checked only once the files are the ones the manifest records.
        checked = _provenance(report, rules, trust_root) if provenance and report.ok else None
        data = report.to_json()
        if provenance:
            data["provenance"] = checked.to_json() if checked is not None else None
        print_json(data)
    else:
        for problem in report.problems:
            typer.echo(f"problem: {problem.message}", err=True)
        for name in [] if quiet else report.user_files:
            typer.echo(
                f"note: {name!r} is not in the manifest: kept as a file of your own "
                "(never packed nor published)",
                err=True,
            )
        verdict = "ok" if report.ok else count(len(report.problems), "problem")
        if not quiet:
            typer.echo(
                f"{report.directory}: {count(len(report.files), 'file')}, {verdict}", err=True
            )
        if provenance and report.ok:
            checked = _provenance(report, rules, trust_root)
            _print_provenance(report.directory, checked, quiet)
    if not report.ok:
        raise typer.Exit(ExitCode.INTEGRITY)
    if checked is not None and not checked.ok:
        raise typer.Exit(ExitCode.PROVENANCE)


def _provenance(
    report: "VerifyReport", policy: "ProvenancePolicy | None", trust_root: Path | None
) -> "ProvenanceReport | None":
    """The provenance check of a verified wheelhouse; None when there is nothing to check."""
    from wheelhouse.house.manifest import PROVENANCE_SUFFIX

    carries = any(
        name.endswith(PROVENANCE_SUFFIX) and "/" not in name
        for name in (*report.carried, *report.unrecorded)
    )
    required = policy is not None and any(policy.requires(r.name) for r in report.manifest.files)
    if not carries and not required:
        # Nothing to verify, and nothing refused: no trust root is needed either.
        return None
    from wheelhouse.provenance import verify_provenance

    return verify_provenance(report.directory, policy=policy, trust_root=trust_root)


def _print_provenance(directory: Path, checked: "ProvenanceReport | None", quiet: bool) -> None:
    if checked is None:
        if not quiet:
            typer.echo(f"{directory}: no file carries provenance", err=True)
        return
    from wheelhouse.cli.provenance import _table

    if not quiet:
        _table(checked)
    for problem in checked.problems:
        typer.echo(f"problem: {problem.message}", err=True)
    verdict = "ok" if checked.ok else count(len(checked.problems), "problem")
    if not quiet:
        typer.echo(
            f"{directory}: {count(len(checked.verified), 'file')} with verified provenance, "
            f"{len(checked.without_provenance)} without, {verdict}",
            err=True,
        )


@app.command(epilog=EXIT_CODES)
def index(
    directory: WheelhouseDir = None,
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
) -> None:
    """Write (again) the static PEP 503/691/658 index of a wheelhouse into DIR/simple/."""
    from wheelhouse.house.directory import locked
    from wheelhouse.house.index import index_directory

    where = wheelhouse_dir(directory).absolute()
    with locked(where):
        manifest = index_directory(where)
    projects = len({f.name for f in manifest.files})
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "directory": str(where),
                "index": str(where / "simple"),
                "projects": projects,
                "files": len(manifest.files),
            }
        )
    if not quiet:
        typer.echo(f"{where / 'simple'}: {count(projects, 'project')} indexed", err=True)


@app.command(epilog=EXIT_CODES)
def export(
    directory: WheelhouseDir = None,
    fmt: Annotated[
        str, typer.Option("--format", metavar="requirements|pylock", help="Output format.")
    ] = "requirements",
    target: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--target", help="Target lock to export (requirements format)."),
    ] = None,
) -> None:
    """Print the wheelhouse's lock as a requirements file or a PEP 751 pylock.toml."""
    from wheelhouse.house.contents import open_wheelhouse
    from wheelhouse.house.export import render_requirements

    manifest = open_wheelhouse(wheelhouse_dir(directory))
    if fmt == "pylock":
        from wheelhouse.house.pylock import render_pylock

        typer.echo(render_pylock(manifest), nl=False)
        return
    if fmt != "requirements":
        raise UsageError(f"--format must be 'requirements' or 'pylock', not {fmt!r}")
    locks = [lock for lock in manifest.locks if target in (None, lock.target)]
    if not locks:
        known = ", ".join(lock.target for lock in manifest.locks)
        raise UsageError(f"the wheelhouse has no target {target!r} (it has: {known})")
    if len(locks) > 1:
        known = ", ".join(lock.target for lock in locks)
        raise UsageError(f"the wheelhouse has several targets ({known}): choose one with --target")
    typer.echo(render_requirements(manifest, locks[0]), nl=False)


@app.command(epilog=EXIT_CODES)
def merge(
    sources: Annotated[
        list[Path], typer.Argument(metavar="DIR...", help="Wheelhouses to join (each is verified).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", metavar="OUT", help="The merged wheelhouse (may be one of DIR)."
        ),
    ],
    as_json: JsonFlag = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors.")] = False,
) -> None:
    """Join wheelhouses built on different machines into one, keeping each target's lock."""
    from wheelhouse.cli._reporters import PlainReporter
    from wheelhouse.house.merge import merge as run_merge

    setup_logging(0)
    manifest = run_merge(sources, output, reporter=PlainReporter(-1 if quiet else 0))
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "output": str(output),
                "sources": [str(source) for source in sources],
                "files": len(manifest.files),
                "targets": [lock.target for lock in manifest.locks],
            }
        )
    targets = ", ".join(lock.target for lock in manifest.locks)
    if not quiet:
        typer.echo(f"{output}: {count(len(manifest.files), 'file')}, targets {targets}", err=True)


@app.command("list", epilog=EXIT_CODES)
def list_(directory: WheelhouseDir = None, as_json: JsonFlag = False) -> None:
    """List what a wheelhouse holds, per target."""
    from wheelhouse.house.contents import open_wheelhouse

    manifest = open_wheelhouse(wheelhouse_dir(directory))
    if as_json:
        print_json(
            {
                "schema-version": 1,
                "targets": [
                    {
                        "target": lock.target,
                        "packages": [
                            {"name": e.name, "version": e.version, "files": list(e.filenames)}
                            for e in lock.entries
                        ],
                    }
                    for lock in manifest.locks
                ],
            }
        )
        return
    for lock in manifest.locks:
        typer.echo(f"{lock.target}:")
        for entry in sorted(lock.entries, key=lambda e: e.name):
            typer.echo(f"  {entry.name}=={entry.version}  {' '.join(entry.filenames)}")
