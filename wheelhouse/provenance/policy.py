"""The provenance policy: which publisher each project must come from, and what needs provenance.

A TOML file (documented in docs/provenance.md)::

    require = false                     # refuse every file that has no provenance

    [projects.sampleproject]
    kind = "github"                     # github (the default), gitlab or google
    repository = "pypa/sampleproject"
    workflow = "release.yml"            # optional: any workflow of the repository otherwise
    require = true                      # the default for a pinned project
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.utils import NormalizedName, canonicalize_name

from wheelhouse.errors import ProvenancePolicyError

__all__ = ["MAX_POLICY_BYTES", "PinKind", "ProjectPin", "ProvenancePolicy", "read_policy"]

# A policy is written by hand: a few KB. Anything far larger is not one.
MAX_POLICY_BYTES = 1024 * 1024

PinKind = Literal["github", "gitlab", "google"]
_KINDS: tuple[PinKind, ...] = ("github", "gitlab", "google")
_PROJECT_KEYS = {"kind", "repository", "workflow", "email", "require"}


@dataclass(frozen=True)
class ProjectPin:
    """The publisher one project's files must have been published by."""

    kind: PinKind | None = None
    repository: str | None = None
    workflow: str | None = None
    email: str | None = None
    require: bool = True

    @property
    def pins_publisher(self) -> bool:
        return self.kind is not None

    def describe(self) -> str:
        if self.kind == "google":
            return f"google {self.email}"
        workflow = f", workflow {self.workflow}" if self.workflow else ", any workflow"
        return f"{self.kind} {self.repository}{workflow}"


@dataclass(frozen=True)
class ProvenancePolicy:
    """What ``wheelhouse provenance verify`` demands beyond valid signatures."""

    require: bool = False
    projects: dict[NormalizedName, ProjectPin] = field(default_factory=dict)

    def pin(self, name: str) -> ProjectPin | None:
        return self.projects.get(canonicalize_name(name))

    def requires(self, name: str) -> bool:
        """Whether a file of project ``name`` without provenance is refused."""
        pin = self.pin(name)
        return pin.require if pin is not None else self.require


def read_policy(path: Path) -> ProvenancePolicy:
    """Parse a policy file; raises ProvenancePolicyError naming the file and the fault."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise ProvenancePolicyError(
            f"cannot read the provenance policy {str(path)!r}: {exc.strerror or exc}"
        ) from exc
    if len(data) > MAX_POLICY_BYTES:
        raise ProvenancePolicyError(
            f"the provenance policy {str(path)!r} is larger than {MAX_POLICY_BYTES} bytes"
        )
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ProvenancePolicyError(
            f"the provenance policy {str(path)!r} is not valid TOML: {exc}"
        ) from exc
    return _policy(path, document)


def _policy(path: Path, document: dict[str, Any]) -> ProvenancePolicy:
    def fail(message: str) -> ProvenancePolicyError:
        return ProvenancePolicyError(
            f"the provenance policy {str(path)!r}: {message}",
            hint="see docs/provenance.md for the policy's format",
        )

    unknown = set(document) - {"require", "projects"}
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)!r} (expected 'require' and 'projects')")
    require = document.get("require", False)
    if not isinstance(require, bool):
        raise fail(f"'require' must be true or false, not {require!r}")
    projects = document.get("projects", {})
    if not isinstance(projects, dict):
        raise fail("'projects' must be a table of projects")
    pins: dict[NormalizedName, ProjectPin] = {}
    for raw_name, table in projects.items():
        name = canonicalize_name(raw_name)
        where = f"[projects.{raw_name}]"
        if not isinstance(table, dict):
            raise fail(f"{where} must be a table")
        if name in pins:
            raise fail(f"{where} names the project {name!r} a second time")
        unknown = set(table) - _PROJECT_KEYS
        if unknown:
            raise fail(f"{where} has unknown key(s) {sorted(unknown)!r}")
        values = {k: v for k, v in table.items() if k != "require"}
        for key, value in values.items():
            if not isinstance(value, str) or not value.strip():
                raise fail(f"{where} {key} must be a non-empty string, not {value!r}")
        project_require = table.get("require", True)
        if not isinstance(project_require, bool):
            raise fail(f"{where} require must be true or false, not {project_require!r}")
        pins[name] = _pin(where, values, project_require, fail)
    return ProvenancePolicy(require=require, projects=pins)


def _pin(
    where: str,
    values: dict[str, str],
    require: bool,
    fail: Callable[[str], ProvenancePolicyError],
) -> ProjectPin:
    if not values:  # only `require`: no publisher pinned
        return ProjectPin(require=require)
    kind = values.get("kind", "google" if "email" in values else "github").lower()
    if kind not in _KINDS:
        raise fail(f"{where} kind must be one of {list(_KINDS)!r}, not {kind!r}")
    if kind == "google":
        if "email" not in values or {"repository", "workflow"} & set(values):
            raise fail(f"{where} a google publisher is pinned by 'email' alone")
        return ProjectPin(kind="google", email=values["email"], require=require)
    if "repository" not in values or "email" in values:
        raise fail(f"{where} a {kind} publisher is pinned by 'repository' (and 'workflow')")
    repository = values["repository"].strip("/")
    if repository.count("/") < 1:
        raise fail(f"{where} repository must be 'owner/name', not {values['repository']!r}")
    return ProjectPin(
        kind="github" if kind == "github" else "gitlab",
        repository=repository,
        workflow=values.get("workflow"),
        require=require,
    )
