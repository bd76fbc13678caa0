"""The Sigstore trust root a wheelhouse carries (``sigstore/trusted_root.json``): read, check.

Verification never fetches a trust root: the one in the wheelhouse (or the one named on the
command line) is the only authority, so it is checked before anything is verified with it.
"""

from __future__ import annotations

import json
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wheelhouse._base.files import write_atomic
from wheelhouse.errors import TrustRootError

if TYPE_CHECKING:
    from sigstore.models import TrustedRoot

__all__ = [
    "MAX_TRUST_ROOT_BYTES",
    "TRUST_ROOT_PATH",
    "TrustRoot",
    "install_trust_root",
    "read_trust_root",
    "shipped_trust_root",
    "source_trust_root",
]

# Where a wheelhouse keeps its trust root, relative to the wheelhouse.
TRUST_ROOT_PATH = Path("sigstore") / "trusted_root.json"
# Sigstore's production root is 7 KB; a root a hundred times larger is not one.
MAX_TRUST_ROOT_BYTES = 1024 * 1024
# The production trust root as the installed sigstore package ships it (its TUF target).
_SHIPPED_PACKAGE = "sigstore._store"
_SHIPPED_DIR = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev"
_SECTIONS = {
    "certificateAuthorities": "Fulcio certificate authority",
    "tlogs": "Rekor transparency log key",
    "ctlogs": "certificate transparency log key",
}


@dataclass(frozen=True)
class TrustRoot:
    """A parsed, checked trust root, and the validity window of each of its keys."""

    path: Path
    data: bytes
    document: dict[str, Any]

    def keys_at(self, when: datetime | None) -> tuple[tuple[tuple[int, ...], ...], str | None]:
        """Which keys of each section were valid at ``when`` (a signature's time), by index.

        sigstore accepts an expired key for any signature; a key must instead have been valid
        when the signature was made. Returns (the kept indexes per section, None), or
        ((), what is missing). ``when=None`` keeps every key.
        """
        kept: list[tuple[int, ...]] = []
        for section in (*_SECTIONS, "timestampAuthorities"):
            entries = self.document.get(section, [])
            indexes = tuple(i for i, e in enumerate(entries) if when is None or _covers(e, when))
            if not indexes and section in _SECTIONS:
                return (), _SECTIONS[section]
            kept.append(indexes)
        return tuple(kept), None

    def restricted(self, keys: tuple[tuple[int, ...], ...]) -> TrustedRoot:
        """The sigstore TrustedRoot holding only ``keys`` (from ``keys_at``)."""
        from sigstore.models import TrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1

        document = dict(self.document)
        for section, indexes in zip((*_SECTIONS, "timestampAuthorities"), keys, strict=True):
            entries = self.document.get(section, [])
            document[section] = [entries[i] for i in indexes]
        # The public TrustedRoot.from_file needs a file: built from bytes, nothing is written.
        return TrustedRoot(trustroot_v1.TrustedRoot.from_json(json.dumps(document)))


def read_trust_root(path: Path, *, now: datetime | None = None) -> TrustRoot:
    """Read and check the trust root at ``path``; raises TrustRootError naming what is wrong."""
    hint = "write one with 'wheelhouse provenance trust-root DIR' on the connected side"
    try:
        # A FIFO or a device under that name would block the read or never end it.
        if not stat.S_ISREG(path.stat().st_mode):
            raise TrustRootError(
                f"the trust root {str(path)!r} is not a regular file", path=path, hint=hint
            )
        with path.open("rb") as handle:
            data = handle.read(MAX_TRUST_ROOT_BYTES + 1)
    except FileNotFoundError as exc:
        raise TrustRootError(
            f"the trust root {str(path)!r} is missing: provenance cannot be verified without it",
            path=path,
            hint=hint,
        ) from exc
    except OSError as exc:
        raise TrustRootError(
            f"cannot read the trust root {str(path)!r}: {exc.strerror or exc}", path=path
        ) from exc
    return parse_trust_root(path, data, now=now)


def parse_trust_root(path: Path, data: bytes, *, now: datetime | None = None) -> TrustRoot:
    """Check ``data`` as a Sigstore trusted root: its format, its keys, and that it is current."""
    hint = "write a current one with 'wheelhouse provenance trust-root DIR'"
    if len(data) > MAX_TRUST_ROOT_BYTES:
        raise TrustRootError(
            f"the trust root {str(path)!r} is larger than {MAX_TRUST_ROOT_BYTES} bytes",
            path=path,
            hint=hint,
        )
    try:
        document = json.loads(data)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        from sigstore.models import TrustedRoot
        from sigstore_models.trustroot import v1 as trustroot_v1

        root = TrustedRoot(trustroot_v1.TrustedRoot.from_json(data))
        root.get_fulcio_certs()
        for section in _SECTIONS:
            for entry in document.get(section, []):
                _window(entry)
    except Exception as exc:  # pydantic, sigstore and JSON errors alike: not a trust root
        reason = _reason(exc)
        raise TrustRootError(
            f"the trust root {str(path)!r} is not a Sigstore trusted root: {reason}",
            path=path,
            hint=hint,
        ) from exc
    moment = now or datetime.now(UTC)
    for section, what in _SECTIONS.items():
        entries = document.get(section, [])
        if not entries:
            raise TrustRootError(
                f"the trust root {str(path)!r} has no {what}", path=path, hint=hint
            )
        ends = [_window(e)[1] for e in entries]
        if all(end is not None and end < moment for end in ends):
            last = max(end for end in ends if end is not None)
            raise TrustRootError(
                f"the trust root {str(path)!r} has expired: its last {what} was valid until "
                f"{last.isoformat()}",
                path=path,
                hint=hint,
            )
    return TrustRoot(path=path, data=data, document=document)


def shipped_trust_root() -> bytes:
    """Sigstore's production trust root as the installed ``sigstore`` package ships it.

    No network: the package carries the trust root that was current at its release (TUF's
    ``trusted_root.json`` target). ``ClientTrustConfig.production(offline=True)`` would
    return the same bytes, or whatever an earlier run left in the user's cache, and writes
    that cache: the package's own copy is the one whose origin we know.
    """
    from importlib import resources

    try:
        return (
            resources.files(_SHIPPED_PACKAGE)
            .joinpath(_SHIPPED_DIR, "trusted_root.json")
            .read_bytes()
        )
    except (ModuleNotFoundError, OSError) as exc:
        raise TrustRootError(
            "the installed sigstore package carries no production trust root",
            path=Path(_SHIPPED_DIR),
            hint="pass one with --from FILE",
        ) from exc


def source_trust_root(source: Path | None = None) -> TrustRoot:
    """Read and check the trust root at ``source``, or the one the sigstore package ships."""
    if source is None:
        return parse_trust_root(Path("sigstore (installed package)"), shipped_trust_root())
    return read_trust_root(source)


def install_trust_root(directory: Path, root: TrustRoot | Path | None = None) -> TrustRoot:
    """Write a checked trust root (or check ``root``, a path, or the shipped one) into DIR."""
    if not isinstance(root, TrustRoot):
        root = source_trust_root(root)
    target = directory / TRUST_ROOT_PATH
    target.parent.mkdir(exist_ok=True)
    write_atomic(target, root.data, fsync=True)
    return TrustRoot(path=target, data=root.data, document=root.document)


def _window(entry: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    holder = entry.get("publicKey", entry)
    period = holder.get("validFor") or {}
    start, end = period.get("start"), period.get("end")
    return (
        datetime.fromisoformat(start) if start else None,
        datetime.fromisoformat(end) if end else None,
    )


def _covers(entry: dict[str, Any], when: datetime) -> bool:
    start, end = _window(entry)
    return (start is None or start <= when) and (end is None or when <= end)


def _reason(exc: Exception) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError) and exc.errors():
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{first['msg']} at {where!r}" if where else str(first["msg"])
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
