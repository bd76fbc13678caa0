"""Render a wheelhouse's lock in the formats other tools read."""

from __future__ import annotations

from pathlib import Path

from wheelhouse import __version__
from wheelhouse._base.targets import is_native, parse_target
from wheelhouse.house.contents import requirements_filename
from wheelhouse.house.manifest import Manifest, TargetLock

__all__ = ["render_requirements", "requirements_filename", "write_requirements"]


def render_requirements(manifest: Manifest, lock: TargetLock) -> str:
    """pip's hash-checking requirements format: every pin with the hashes of its shipped files."""
    filename = requirements_filename(lock, manifest)
    lines = [
        f"# Written by wheelhouse {__version__} for target {lock.target!r}; do not edit.",
        "# Install offline (no wheelhouse needed), from this directory:",
        f"#   pip install --no-index --find-links . --require-hashes -r {filename}",
    ]
    sdists_only = [e.name for e in lock.entries if not any(f.endswith(".whl") for f in e.filenames)]
    if not is_native(lock.target) and sdists_only:
        lines.append(
            f"# {', '.join(sdists_only)} ship as sdists only: pip builds them on the target, "
            "offline, from the build requirements shipped beside them."
        )
    elif not is_native(lock.target):
        target = parse_target(lock.target)
        platforms = " ".join(f"--platform {p}" for p in target.platforms)
        lines += [
            "# Check it from any machine (pip needs every platform tag the target accepts,",
            "# pip#10760):",
            "#   pip install --dry-run --no-index --only-binary=:all: --python-version "
            f"{'.'.join(map(str, target.python_version))} {platforms} --target /tmp/check "
            f"--find-links . --require-hashes -r {filename}",
        ]
    for entry in sorted(lock.entries, key=lambda e: e.name):
        hashes = sorted({manifest.file(f).sha256 for f in entry.filenames})
        lines.append(f"{entry.name}=={entry.version} \\")
        lines += [f"    --hash=sha256:{h} \\" for h in hashes[:-1]]
        lines.append(f"    --hash=sha256:{hashes[-1]}")
    return "\n".join(lines) + "\n"


def write_requirements(root: Path, manifest: Manifest) -> None:
    """Write each target's requirements file into the (staging) wheelhouse ``root``."""
    # Imported here: `wheelhouse install` renders a lock to compare, and writes nothing.
    from wheelhouse._base.files import write_atomic

    for lock in manifest.locks:
        text = render_requirements(manifest, lock)
        write_atomic(root / requirements_filename(lock, manifest), text.encode("utf-8"))
