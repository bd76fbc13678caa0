"""Where a file's PEP 740 provenance comes from: the index's integrity API, named by the
page (``PageFile.provenance``), read bounded and checked against the file before anything
keeps it. The build, the mirror and the proxy all fetch it here; ``verify`` checks the
signatures offline later."""

from __future__ import annotations

import base64
import json

from wheelhouse._base._http import HttpClient, strip_credentials
from wheelhouse.errors import UpstreamError
from wheelhouse.provenance.verify import MAX_ATTESTATIONS, MAX_PROVENANCE_BYTES, file_identity
from wheelhouse.simple.client import DEFAULT_TIMEOUT, get_following, read_limited
from wheelhouse.simple.model import PageFile

__all__ = ["PROVENANCE_TYPE", "check_provenance", "fetch_provenance"]

PROVENANCE_TYPE = "application/vnd.pypi.integrity.v1+json"


def fetch_provenance(
    client: HttpClient, file: PageFile, *, timeout: float = DEFAULT_TIMEOUT
) -> bytes:
    """The PEP 740 provenance object the page names for ``file``, checked by
    ``check_provenance`` against the file's name and sha256.

    At most ``MAX_PROVENANCE_BYTES`` bytes (as ``verify`` reads), within ``timeout`` seconds
    (redirects included), through ``client`` (so with the credentials of its origin only).
    Raises ``UpstreamError``.
    """
    if file.provenance is None:
        raise ValueError(f"the page names no provenance for {file.filename!r}")
    with client.deadline(timeout) as deadline:
        response, answered = get_following(
            client, file.provenance, {"Accept": PROVENANCE_TYPE}, deadline
        )
        try:
            if response.status != 200:
                shown = strip_credentials(answered)
                raise UpstreamError(f"{shown} answered HTTP {response.status}", url=shown)
            data = read_limited(response, answered, MAX_PROVENANCE_BYTES, deadline)
        finally:
            response.release_conn()
    check_provenance(data, file.filename, file.sha256, strip_credentials(file.provenance))
    return data


def check_provenance(data: bytes, filename: str, sha256: str | None, source: str) -> None:
    """Raise ``UpstreamError`` unless ``data`` is a PEP 740 provenance object whose every
    attestation's statement names ``filename`` (parsed, as PyPI compares names) and
    ``sha256``. Structure only: the signatures are ``verify --provenance``'s to check."""

    def fail(why: str) -> UpstreamError:
        return UpstreamError(f"{source} is not the provenance of {filename!r}: {why}", url=source)

    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("version") != 1:
            raise ValueError("it is not a version 1 provenance object")
        statements = [
            json.loads(base64.b64decode(attestation["envelope"]["statement"], validate=True))
            for bundle in document["attestation_bundles"][: MAX_ATTESTATIONS + 1]
            for attestation in bundle["attestations"][: MAX_ATTESTATIONS + 1]
        ]
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise fail(f"it is malformed ({exc})") from None
    if not statements:
        raise fail("it holds no attestation")
    if len(statements) > MAX_ATTESTATIONS:
        raise fail(f"it holds more than {MAX_ATTESTATIONS} attestations")
    for statement in statements:
        try:
            (subject,) = statement["subject"]
            name, digest = subject["name"], subject["digest"]["sha256"]
        except (ValueError, KeyError, TypeError) as exc:
            raise fail(f"a statement names no single subject ({exc!r})") from None
        if (
            not isinstance(name, str)
            or file_identity(name) is None
            or file_identity(name) != file_identity(filename)
        ):
            raise fail(f"an attestation is for another file, {str(name)[:200]!r}")
        if sha256 is None or not isinstance(digest, str) or digest.lower() != sha256.lower():
            raise fail(f"an attestation is for sha256 {str(digest)[:80]}, not {sha256}")
