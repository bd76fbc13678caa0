"""The exceptions wheelhouse raises, each carrying what its message needs."""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = [
    "BuildError",
    "BundleBaseError",
    "ConflictError",
    "CooldownError",
    "DownloadError",
    "ExitCode",
    "FetchError",
    "HashMismatchError",
    "Hint",
    "IncompatibleError",
    "InvalidBundleError",
    "InvalidWheelhouseError",
    "MalformedUploadTime",
    "MetadataTooLargeError",
    "NetworkError",
    "NotFoundError",
    "OsvSnapshotError",
    "OutputDirError",
    "ProvenanceError",
    "ProvenancePolicyError",
    "QuarantinedError",
    "RangesUnsupported",
    "RequirementsError",
    "ResolutionError",
    "TamperedError",
    "TrustRootError",
    "UnsafeBundleError",
    "UploadRefusedError",
    "UpstreamError",
    "UsageError",
    "WheelhouseError",
]


class ExitCode:
    """Exit codes scripts can rely on (documented in the README and ``--help``)."""

    OK = 0
    FAILURE = 1  # anything not listed below
    USAGE = 2  # bad command line (typer's own code for usage errors)
    INPUT = 3  # bad requirements or constraints file
    RESOLUTION = 4  # nothing satisfies, conflicting requirements, unknown project
    NETWORK = 5  # the index or a file could not be reached
    INTEGRITY = 6  # a hash did not match, or a wheelhouse was tampered with
    BUILD = 7  # an sdist failed to build into a wheel
    OUTPUT = 8  # the output directory cannot be used
    INCOMPATIBLE = 9  # the wheelhouse has nothing that fits the target interpreter
    PARTIAL = 10  # some projects failed; the others were done (mirror)
    VULNERABLE = 11  # `audit`: a distribution has a known vulnerability (not an error)
    PROVENANCE = 12  # `provenance verify`: a file's provenance fails, or the policy refuses it
    TRUST_ROOT = 13  # `provenance`: the Sigstore trust root is missing, malformed or expired


class WheelhouseError(Exception):
    """Root of every error wheelhouse raises for a user to read."""

    exit_code: int = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(WheelhouseError):
    """The command line asks for something that cannot work."""

    exit_code = ExitCode.USAGE


class RequirementsError(WheelhouseError):
    """A requirements or constraints file is missing, unreadable or malformed."""

    exit_code = ExitCode.INPUT

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.path = path
        self.line = line


class ResolutionError(WheelhouseError):
    """pip's resolver could not produce a set of pins."""

    exit_code = ExitCode.RESOLUTION


class NotFoundError(ResolutionError):
    """No distribution, or no version satisfying the specifier, was found."""

    def __init__(self, message: str, *, requirement: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.requirement = requirement


class ConflictError(ResolutionError):
    """Requirements contradict each other."""


class NetworkError(WheelhouseError):
    """A URL could not be reached."""

    exit_code = ExitCode.NETWORK

    def __init__(self, message: str, *, url: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url


class FetchError(NetworkError):
    """A file could not be downloaded."""


class UpstreamError(NetworkError):
    """An index could not be reached, or answered with something unusable (a page too large,
    malformed, or dripping past its deadline)."""


class RangesUnsupported(UpstreamError):
    """Upstream answers range requests with the whole file (only with ``allow_whole=False``)."""


class MalformedUploadTime(UpstreamError):
    """A page gives a file an ``upload-time`` that is not a time (PEP 700)."""

    def __init__(self, message: str, *, url: str, filename: str, value: object) -> None:
        super().__init__(message, url=url)
        self.filename = filename
        self.value = value


class HashMismatchError(WheelhouseError):
    """A file's sha256 is not the one we were promised."""

    exit_code = ExitCode.INTEGRITY

    def __init__(
        self, message: str, *, filename: str, expected: str, actual: str, hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.filename = filename
        self.expected = expected
        self.actual = actual


class TamperedError(WheelhouseError):
    """A wheelhouse no longer matches its manifest."""

    exit_code = ExitCode.INTEGRITY


class BuildError(WheelhouseError):
    """An sdist could not be built into a wheel."""

    exit_code = ExitCode.BUILD

    def __init__(
        self, message: str, *, name: str, version: str, log_tail: str = "", hint: str | None = None
    ) -> None:
        super().__init__(message, hint=hint)
        self.name = name
        self.version = version
        self.log_tail = log_tail


class OutputDirError(WheelhouseError):
    """The output directory cannot be written, or is not ours to write."""

    exit_code = ExitCode.OUTPUT

    def __init__(self, message: str, *, path: Path, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class InvalidWheelhouseError(WheelhouseError):
    """A directory is not a wheelhouse, or its manifest cannot be read."""

    exit_code = ExitCode.INPUT


class MetadataTooLargeError(WheelhouseError, zipfile.BadZipFile):
    """A wheel's METADATA is larger than any real one (a decompression bomb).

    A ``zipfile.BadZipFile`` too: every reader of METADATA already words an unreadable wheel
    for its own context, and this is one.
    """

    def __init__(self, member: str, limit: int) -> None:
        super().__init__(
            f"its {member!r} inflates to more than {limit} bytes, far beyond any real METADATA"
            " (a decompression bomb?)",
            hint="remove that wheel, or ask its index why it is so",
        )
        self.member = member
        self.limit = limit


class IncompatibleError(WheelhouseError):
    """The wheelhouse holds no wheel that the target interpreter can install."""

    exit_code = ExitCode.INCOMPATIBLE


class UnsafeBundleError(TamperedError):
    """A bundle holds a member that must never be extracted (a link, a device, a path outside)."""


class InvalidBundleError(WheelhouseError):
    """A file is not a wheelhouse bundle, or a volume of it is missing."""

    exit_code = ExitCode.INPUT


class BundleBaseError(WheelhouseError):
    """An update bundle was made against another wheelhouse than the one it is unpacked onto."""

    exit_code = ExitCode.INPUT


class Hint:
    """Hint lines that several errors give, written once."""

    REBUILD = "rebuild the wheelhouse with 'wheelhouse build'"
    RECOPY_BUNDLE = "copy the bundle again and compare its sha256 with the one pack printed"
    WRITABLE_OUTPUT = "choose a writable location with -o"
    ANOTHER_OUTPUT = "choose another path with -o"
    PYTHON = "pass a working python executable with --python"
    PACK = "make bundles with 'wheelhouse pack'"
    NOT_PACKED = "a bundle that wheelhouse packed has none: do not use this file"
    ALL_VOLUMES = "copy every volume of the bundle into one directory"
    REFETCH_OSV = "fetch the snapshot again with 'wheelhouse audit fetch'"


# -- provenance (PEP 740), verified offline: exit codes 12 and 13 --------------------------


class ProvenanceError(WheelhouseError):
    """A file's provenance does not verify, or the policy refuses a file (exit 12)."""

    exit_code = ExitCode.PROVENANCE


class TrustRootError(WheelhouseError):
    """The Sigstore trust root is missing, unreadable, malformed or expired (exit 13)."""

    exit_code = ExitCode.TRUST_ROOT

    def __init__(self, message: str, *, path: Path, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.path = path


class ProvenancePolicyError(WheelhouseError):
    """A provenance policy file is unreadable or malformed (exit 3, as any bad input)."""

    exit_code = ExitCode.INPUT


class OsvSnapshotError(WheelhouseError):
    """An OSV snapshot is missing, is not a zip, or holds a malformed or oversized record."""

    exit_code = ExitCode.INPUT


# -- guards on what is taken from an index: the release cooldown and PEP 792 status ---------


class CooldownError(ResolutionError):
    """A pinned file is newer than the release cooldown's cutoff, or its age is unknown and
    the cooldown refuses such files (exit 4: nothing the cooldown allows satisfies the pin)."""


class QuarantinedError(ResolutionError):
    """The index marks a project quarantined (PEP 792): it offers no files (exit 4)."""


class UploadRefusedError(WheelhouseError):
    """An upload to a private index is refused: ``status`` is the HTTP answer (400, 401, 403,
    409, 413), the message its one line of body."""

    def __init__(self, status: int, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


class DownloadError(FetchError):
    """A download ended without the file. ``status`` is the HTTP answer that refused it (None
    when the connection or the body failed); ``reason`` says what failed, without the URL."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        reason: str,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, url=url, hint=hint)
        self.reason = reason
        self.status = status
