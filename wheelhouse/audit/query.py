"""The OSV API's ``POST /v1/query`` answered from a snapshot (for ``serve``, inside the gap)."""

from __future__ import annotations

import json
from typing import Any

from wheelhouse.audit.osv import ECOSYSTEM, OsvDatabase

__all__ = ["MAX_QUERY_BYTES", "QUERY_PATH", "answer_query"]

QUERY_PATH = "/v1/query"
# A query is a package name and a version: a few hundred bytes.
MAX_QUERY_BYTES = 64 * 1024
# The OSV API's error body carries a gRPC status code: 3 is INVALID_ARGUMENT.
_INVALID_ARGUMENT = 3


class _BadQuery(Exception):
    pass


def answer_query(database: OsvDatabase, body: bytes) -> tuple[int, bytes]:
    """The status and JSON body the OSV API gives for the query ``body``.

    ``{"package": {"name": N, "ecosystem": "PyPI"}, "version": V}`` (or a ``purl`` with the
    version in it) gives ``{"vulns": [record, ...]}``, the whole records of the snapshot, or
    ``{}`` when none applies, as the OSV API does; so ``pip-audit -s osv --osv-url`` works
    against it. ``database`` must hold every record (``load_snapshot(path)``, no ``names``).
    The caller reads at most ``MAX_QUERY_BYTES`` of the request.
    """
    try:
        name, version = _parse(body)
    except _BadQuery as exc:
        error = {"code": _INVALID_ARGUMENT, "message": str(exc)}
        return 400, json.dumps(error).encode("utf-8")
    records = [database.raw(a) for a in database.query(name, version)]
    answer: dict[str, Any] = {"vulns": records} if records else {}
    return 200, json.dumps(answer).encode("utf-8")


def _parse(body: bytes) -> tuple[str, str]:
    if len(body) > MAX_QUERY_BYTES:
        raise _BadQuery(f"the query is larger than {MAX_QUERY_BYTES} bytes")
    try:
        query = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise _BadQuery("the query is not JSON") from exc
    if not isinstance(query, dict):
        raise _BadQuery("the query is not a JSON object")
    package = query.get("package")
    if not isinstance(package, dict):
        raise _BadQuery("the query names no package (only package queries are answered)")
    name: object
    version: object = query.get("version")
    purl = package.get("purl")
    if isinstance(purl, str):
        from packageurl import PackageURL

        try:
            parsed = PackageURL.from_string(purl)
        except ValueError as exc:
            raise _BadQuery(f"invalid purl {purl!r}") from exc
        if parsed.type != "pypi":
            raise _BadQuery(f"this server answers for PyPI only, not {parsed.type!r}")
        name = parsed.name
        version = parsed.version or version
    else:
        name = package.get("name")
        if package.get("ecosystem") != ECOSYSTEM:
            raise _BadQuery(f"this server answers for the {ECOSYSTEM!r} ecosystem only")
    if not isinstance(name, str) or not name:
        raise _BadQuery("the query's package has no name")
    if not isinstance(version, str) or not version:
        raise _BadQuery("the query has no version (a commit query cannot be answered here)")
    return name, version
