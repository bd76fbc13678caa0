"""Real OSV records zipped like the export, for the audit tests and the static OSV endpoint."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

DATA = Path(__file__).parents[1] / "audit" / "data"


# Real advisories (the GitHub advisory database's and the PyPI advisory database's records,
# as the OSV export serves them) for real releases.
REAL_RECORDS = (
    "GHSA-9wx4-h78v-vm56",  # requests < 2.32.2: Session keeps verify=False (CVE-2024-35195)
    "GHSA-j8r2-6x86-q33q",  # requests 2.3.0 - 2.31.0: Proxy-Authorization leak (CVE-2023-32681)
    "PYSEC-2023-74",  # the same requests advisory in the PyPI advisory database
    "GHSA-34jh-p97f-mpxf",  # urllib3 < 1.26.19, 2.0.0 - 2.2.2 (CVE-2024-37891)
    "GHSA-h75v-3vvj-5mfj",  # Jinja2 < 3.1.4: xmlattr injection (CVE-2024-34064)
)


# What the wheelhouse holds: three vulnerable releases and a clean one.
PINS = {"requests": "2.31.0", "urllib3": "2.2.1", "Jinja2": "3.1.3", "idna": "3.7"}


def real_record(ident: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((DATA / f"{ident}.json").read_text(encoding="utf-8"))
    return data


def real_members() -> dict[str, bytes]:
    """The real records as the export names them: ``<id>.json``."""
    return {f"{i}.json": (DATA / f"{i}.json").read_bytes() for i in REAL_RECORDS}


def write_zip(
    path: Path,
    members: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A zip of ``members`` (name -> bytes), written as the OSV export is (deflated)."""
    items = members.items() if isinstance(members, Mapping) else members
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in items:
            archive.writestr(name, data)
    return path
