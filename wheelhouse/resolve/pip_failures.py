"""pip's failures, read from its output, turned into one error that names the requirement
and says what to do: a project or version not on the indexes, conflicts, hash mismatches,
an index out of reach, sdists the flags forbid, a quarantined project."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from urllib.parse import unquote

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    canonicalize_name,
    parse_sdist_filename,
)

from wheelhouse._base._subprocess import tail
from wheelhouse._base.pip_settings import PYPI_SIMPLE, PipSettings
from wheelhouse._base.urls import strip_credentials
from wheelhouse.errors import (
    BuildError,
    ConflictError,
    HashMismatchError,
    NetworkError,
    NotFoundError,
    QuarantinedError,
    RequirementsError,
    ResolutionError,
    WheelhouseError,
)
from wheelhouse.inputs.requirements import InputSet

__all__ = ["NO_VERSIONS", "explain_pip_failure", "first_project", "quarantined", "unreachable"]

logger = logging.getLogger(__name__)


def first_project(inputs: InputSet) -> str:
    for line in inputs.lines:
        with contextlib.suppress(InvalidRequirement):
            return canonicalize_name(Requirement(line.requirement).name)
    return ""


def unreachable(pip: PipSettings, project: str = "") -> NetworkError | None:
    """The first http(s) index pip would read that does not answer at all, as an error.

    Any HTTP answer counts as reachable (a private index may want credentials that pip has
    and we do not), and so does a TLS or proxy refusal (pip may trust a certificate store, or
    hold credentials, that we do not): only a host that cannot be looked up or connected to
    is an error. A project's page is asked for, not the index's root: PyPI's takes 0.6 s.
    """
    # Imported here, after a failure: a build that starts uv does not wait on them.
    import urllib3

    from wheelhouse._base._http import HttpClient, failure_reason

    client = HttpClient(pip)
    for url in [u for u in pip.index_urls if u.startswith(("http://", "https://"))]:
        try:
            # Asked once: a probe that retried would only delay the error it exists to give.
            page = f"{url.rstrip('/')}/{project}/" if project else url
            # HEAD: the status line is enough, and a page's body can be megabytes (and
            # PyPI's /simple/ 40 MB), read for nothing but a count of bytes over pip's.
            response = client.get(page, retries=False, method="HEAD")
            response.close()
            response.release_conn()
        except (
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ConnectTimeoutError,
        ) as exc:
            return NetworkError(
                f"cannot reach {strip_credentials(url)}: {failure_reason(exc)}",
                url=strip_credentials(url),
                hint="check the network, the index URL and pip's proxy and cert settings",
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            logger.debug("index probe of %s: %s; pip decides", strip_credentials(url), exc)
    return None


# pip's messages are not an API; these patterns hold for pip 23.1 to 26.x and anything they
# miss still reaches the user as pip's own last error lines.
_NOT_FOUND = re.compile(
    r"Could not find a version that satisfies the requirement (?P<req>.+?) "
    r"\(from versions: (?P<versions>.*?)\)"
)


_CONFLICT_HEAD = re.compile(r"ERROR: Cannot install (?P<what>.+?) because these package versions")


_RETRY = re.compile(r"Retrying \(.*?\) after connection broken by '(?P<why>.+)': (?P<path>\S+)")


_FETCH = re.compile(r"Could not fetch URL (?P<url>\S+?): (?P<why>.+)")


_HASH_GOT = re.compile(
    r"^\s*(?P<req>\S+(?: @ \S+)?) from (?P<url>\S+?)(?: \(from .*\))?:?\s*\n"
    r"\s*Expected sha256 (?P<expected>\w+)\s*\n\s*Got\s+(?P<got>\w+)",
    re.MULTILINE,
)


_UNPINNED_HEAD = "all requirements must have their versions pinned with =="


def explain_pip_failure(
    output: str, pip: PipSettings, inputs: InputSet | None = None
) -> WheelhouseError:
    """Turn pip's failed output into one error a user can act on."""
    lines = output.splitlines()
    if (fetch := _FETCH.search(output)) is not None:
        return NetworkError(
            f"cannot reach {fetch['url']}: {fetch['why'].strip()}",
            url=fetch["url"],
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (retry := _RETRY.search(output)) is not None and _NOT_FOUND.search(output):
        url = strip_credentials(pip.index_url or PYPI_SIMPLE)
        where = url.rstrip("/")
        why = re.sub(r"<[^<>]* object at 0x[0-9a-f]+>: ", "", retry["why"])
        return NetworkError(
            f"cannot reach {where} (while fetching {retry['path']}): {why[:200]}",
            url=url,
            hint="check the network, the index URL and pip's proxy and cert settings",
        )
    if (got := _HASH_GOT.search(output)) is not None:
        bare = got["url"].split("#", 1)[0]
        return HashMismatchError(
            f"hash mismatch for {got['req']} from {got['url']}: expected sha256 "
            f"{got['expected']}, got {got['got']}",
            filename=bare.rsplit("/", 1)[-1],
            expected=got["expected"],
            actual=got["got"],
            hint="the file changed on the index, or the pinned hash is wrong: check before "
            "updating the hash",
        )
    if _UNPINNED_HEAD in output:
        after = output.split(_UNPINNED_HEAD, 1)[1].splitlines()[1:]
        unpinned = [ln.strip().split(" from ", 1)[0] for ln in after if ln.startswith("    ")]
        return RequirementsError(
            "hash-checking mode needs every requirement, dependencies included, pinned with == "
            "and a --hash; not pinned: " + ", ".join(unpinned[:5]),
            hint="pin the whole graph with hashes (e.g. 'pip-compile --generate-hashes'), or "
            "remove the --hash options",
        )
    if "Hashes are required in --require-hashes mode" in output:
        missing = [ln.strip() for ln in lines if "--hash=" in ln and "#" not in ln[:2]]
        return RequirementsError(
            "some requirements have no --hash while others do (pip's hash-checking mode needs "
            "every requirement pinned with ==, including dependencies): "
            + "; ".join(m.split(" --hash")[0] for m in missing[:5]),
            hint="add the missing pins with hashes (e.g. with 'pip-compile --generate-hashes'), "
            "or remove the --hash options",
        )
    if (head := _CONFLICT_HEAD.search(output)) is not None:
        causes = _conflict_causes(lines)
        what = _name_input_lines(head["what"], inputs) if inputs else head["what"]
        return ConflictError(
            f"conflicting requirements: {what}" + (f" ({'; '.join(causes)})" if causes else ""),
            hint="loosen one of the pins above so that they can agree",
        )
    if (not_found := _NOT_FOUND.search(output)) is not None:
        req = not_found["req"]
        versions = not_found["versions"].strip()
        if versions == "none":
            return (
                quarantined(req, pip)
                or _sdists_forbidden(req, pip)
                or NotFoundError(
                    f"no distribution found for {req!r} on the configured indexes",
                    requirement=req,
                    hint="check the project name, and --index-url/--extra-index-url/--find-links"
                    + (
                        "; the release cooldown (--exclude-newer) may hold back every release"
                        if pip.command_line.cooldown is not None
                        else ""
                    ),
                )
            )
        found = versions.split(", ")
        if len(found) > _SHOWN_VERSIONS:
            # pip lists every release, oldest first: the newest say what is there.
            older = len(found) - _SHOWN_VERSIONS
            versions = f"{older} older, then " + ", ".join(found[-_SHOWN_VERSIONS:])
        return NotFoundError(
            f"no version of {req!r} is available (versions found: {versions})",
            requirement=req,
            hint="relax the version specifier, or add --pre for pre-releases",
        )
    if "metadata-generation-failed" in output or "Failed to build" in output:
        project = _last_collected(lines)
        name, version = _last_sdist_file(lines)
        # A local path or find-links file has no 'Collecting' line, only 'Processing PATH'.
        what = project or (f"{name} {version}" if name else None)
        from wheelhouse.builder.from_sdist import sdist_build_hint

        log = _subprocess_output(lines) or output
        return BuildError(
            f"pip could not prepare the metadata of {what or 'an sdist'} while resolving",
            name=name or project or "?",
            version=version or "?",
            log_tail=tail(log),
            hint=sdist_build_hint(log),
        )
    errors = [ln.removeprefix("ERROR: ").strip() for ln in lines if ln.startswith("ERROR:")]
    message = errors[-1] if errors else (tail(output, 1) or "pip failed without a message")
    return ResolutionError(f"pip could not resolve the requirements: {message}")


# uv's words for a project whose page lists no file: "there are no versions of NAME".
NO_VERSIONS = re.compile(r"there (?:are|is) no versions of (?P<name>[A-Za-z0-9._-]+)")


def quarantined(req: str, pip: PipSettings) -> WheelhouseError | None:
    """pip found no file of ``req`` because the index quarantines the project (PEP 792: it
    lists none), as the one line the pinned path gives for it; else None."""
    try:
        name = canonicalize_name(Requirement(req).name)
    except InvalidRequirement:
        return None
    from wheelhouse._base.targets import HOST
    from wheelhouse.resolve.from_pins import IndexFiles

    try:
        IndexFiles(pip, HOST, jobs=1).files(name, "0")
    except QuarantinedError as exc:
        return exc
    except WheelhouseError:
        return None
    return None


def _sdists_forbidden(req: str, pip: PipSettings) -> NotFoundError | None:
    """pip found no version of ``req`` because ``--only-binary`` rules out the sdists the
    index has (pip says only "versions: none"), as an error saying so; else None."""
    try:
        requirement = Requirement(req)
    except InvalidRequirement:
        return None
    name = canonicalize_name(requirement.name)
    formats = pip.formats
    if "source" in formats.allowed(name):
        return None
    flag = f"--only-binary {name if name in formats.only_binary else ':all:'}"
    hint = f"allow it with --no-binary {name}, or drop {flag}"
    pinned = [
        s.version for s in requirement.specifier if s.operator == "==" and "*" not in s.version
    ]
    if len(pinned) != 1:
        # Which versions the index has is not known here: the flag is named as a cause.
        return NotFoundError(
            f"no wheel of {req!r} on the configured indexes that fits, and {flag} rules out "
            "building one from an sdist",
            requirement=req,
            hint=f"check the project name and the indexes; if it publishes only sdists, {hint}",
        )
    from wheelhouse._base.targets import HOST
    from wheelhouse.resolve.from_pins import IndexFiles

    try:
        files = IndexFiles(pip, HOST, jobs=1).files(name, pinned[0])
    except WheelhouseError:
        return None
    sdists = sorted(f for f in files if not f.endswith(".whl"))
    if not sdists:
        return None
    has = (
        "no wheel for this machine, only an sdist" if len(files) > len(sdists) else "only an sdist"
    )
    return NotFoundError(
        f"{req} has {has} on the configured indexes ({sdists[0]}), and {flag} forbids building it",
        requirement=req,
        hint=hint,
    )


def _subprocess_output(lines: list[str]) -> str:
    """The backend's own output, which pip frames between '[N lines of output]' and '[end...]'."""
    block: list[str] = []
    inside = False
    for line in lines:
        if re.search(r"\[\d+ lines? of output\]", line):
            inside, block = True, []
        elif "[end of output]" in line:
            inside = False
        elif inside:
            block.append(line)
    return "\n".join(block)


def _conflict_causes(lines: list[str]) -> list[str]:
    causes: list[str] = []
    collecting = False
    for line in lines:
        if "The conflict is caused by:" in line:
            collecting = True
            continue
        if collecting:
            text = line.strip()
            if not text or text.startswith(("To fix", "Additionally", "ERROR")):
                break
            causes.append(text)
    return causes


def _last_sdist_file(lines: list[str]) -> tuple[str | None, str | None]:
    """Name and version of the sdist file pip processed or downloaded last
    (``Processing ./x-1.0.tar.gz``, ``Downloading x-1.0.tar.gz``)."""
    for line in reversed(lines):
        text = line.strip()
        for prefix in ("Processing ", "Downloading ", "Using cached "):
            if text.startswith(prefix):
                filename = unquote(text.removeprefix(prefix).split(" ", 1)[0].rsplit("/", 1)[-1])
                try:
                    name, version = parse_sdist_filename(filename)
                except InvalidSdistFilename:
                    continue
                return str(name), str(version)
    return None, None


_SHOWN_VERSIONS = 10


_INPUT_LINE = re.compile(r"-[rc] (?P<path>.+?) \(line (?P<line>\d+)\)")


def _name_input_lines(text: str, inputs: InputSet) -> str:
    """pip's ``-r FILE (line N)`` as the requirement written there, with its place."""
    written = {(line.path.absolute(), line.line): line.requirement for line in inputs.lines}

    def named(match: re.Match[str]) -> str:
        place = (Path(match["path"]).absolute(), int(match["line"]))
        requirement = written.get(place)
        where = f"{match['path']}:{match['line']}"
        return f"{requirement!r} ({where})" if requirement else match[0]

    return _INPUT_LINE.sub(named, text)


def _last_collected(lines: list[str]) -> str | None:
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("Collecting "):
            return text.removeprefix("Collecting ").split(" ", 1)[0]
    return None
