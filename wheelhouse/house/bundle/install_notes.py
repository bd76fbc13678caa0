"""The ``INSTALL.txt`` a bundle carries: how to install from it on the other side."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from wheelhouse import __version__
from wheelhouse.house.bundle.layout import HOUSE_DIR, INSTALLERS_DIR
from wheelhouse.house.contents import requirements_filename
from wheelhouse.house.manifest import Manifest


def render_install(manifest: Manifest, installers: Sequence[tuple[str, Path]], update: bool) -> str:
    """INSTALL.txt: the commands for what the bundle ships, each runnable as written from the
    directory the bundle was extracted in (the tests run them offline)."""
    names = sorted(name for name, _ in installers)
    pip_wheel = next((name for name in names if name.startswith("pip-")), None)
    uv_wheels = {name: _uv_program(path) for name, path in installers if name.startswith("uv-")}
    lines = [
        f"A wheelhouse bundle, written by wheelhouse {__version__}.",
        "",
    ]
    if update:
        lines += [
            "This is an UPDATE: it holds only what changed since an older wheelhouse.",
            "Apply it onto that wheelhouse (it refuses any other):",
            "    wheelhouse unpack THIS-FILE -o WHEELHOUSE-DIR",
            "",
        ]
    else:
        lines += [
            "With wheelhouse (checks every file before anything is written):",
            "    wheelhouse unpack THIS-FILE -o wheelhouse",
            "",
            "Without wheelhouse:",
            "    tar -xf THIS-FILE            (gzip: tar -xzf; zstd: tar --zstd -xf)",
            "    sha256sum -c SHA256SUMS      (every line must say OK)",
            "",
        ]
    options = f"--no-index --find-links {HOUSE_DIR} --require-hashes"
    if pip_wheel or not uv_wheels:
        lines.append("Install offline, with plain pip, one of:")
        python_pip = "python -m pip"
        if pip_wheel:
            python_pip = f"python {INSTALLERS_DIR}/{pip_wheel}/pip"
        for lock in manifest.locks:
            requirements = requirements_filename(lock, manifest)
            lines.append(f"  target {lock.target}:")
            lines.append(f"    {python_pip} install {options} -r {HOUSE_DIR}/{requirements}")
        if pip_wheel:
            lines += [
                "",
                f"({INSTALLERS_DIR}/{pip_wheel} is pip itself: Python runs it from the wheel, "
                "so the",
                "machine needs nothing but Python.)",
            ]
    if uv_wheels:
        if pip_wheel:
            lines.append("")
        lines.append(
            "Install offline, with the uv this bundle carries, into the Python on PATH "
            "(activate the virtual environment first), one of:"
        )
        for lock in manifest.locks:
            requirements = requirements_filename(lock, manifest)
            wheel = _uv_wheel_for(lock.target, uv_wheels)
            lines.append(f"  target {lock.target}:")
            if wheel is None:
                lines.append("    (no uv wheel of this bundle runs there: use pip)")
                continue
            inside = uv_wheels[wheel]
            if inside is None:
                lines.append(f"    ({INSTALLERS_DIR}/{wheel} holds no uv program: use pip)")
                continue
            where = f"{INSTALLERS_DIR}/{wheel.removesuffix('.whl')}"
            program = f"{where}/{inside}"
            lines.append(f"    python -m zipfile -e {INSTALLERS_DIR}/{wheel} {where}")
            if not program.endswith(".exe"):
                lines.append(f"    chmod +x {program}")
            lines.append(
                f"    {program} pip install --python python --offline {options} "
                f"-r {HOUSE_DIR}/{requirements}"
            )
        lines += [
            "",
            "(A uv wheel is a zip file that holds uv's program: Python's zipfile takes it out.)",
        ]
    lines += [
        "",
        "What ships is listed in wheelhouse/wheelhouse.json and, as SBOMs, in sbom.*.json.",
    ]
    return "\n".join(lines) + "\n"


def _uv_program(wheel: Path) -> str | None:
    """Where uv's program is inside its wheel (``uv-VERSION.data/scripts/uv``), if anywhere."""
    import zipfile

    with contextlib.suppress(OSError, zipfile.BadZipFile), zipfile.ZipFile(wheel) as archive:
        for name in archive.namelist():
            if re.fullmatch(r"[^/]+\.data/scripts/uv(\.exe)?", name):
                return name
    return None


def _uv_wheel_for(target: str, wheels: dict[str, str | None]) -> str | None:
    """The uv wheel that runs on ``target`` (the only one, when its tags cannot be told)."""
    from wheelhouse._base.targets import HOST, is_native, parse_target
    from wheelhouse.errors import WheelhouseError

    try:
        if target == HOST.name:
            chosen = HOST
        else:
            # A host lock that a merge named after its machine is that machine's tag.
            chosen = parse_target(
                target.removeprefix(f"{HOST.name}-") if is_native(target) else target
            )
        accepted = {str(tag) for tag in chosen.tags}
    except WheelhouseError:
        accepted = set()
    for name in sorted(wheels):
        try:
            _, _, _, wheel_tags = parse_wheel_filename(name)
        except InvalidWheelFilename:
            continue
        if any(str(tag) in accepted for tag in wheel_tags):
            return name
    return next(iter(wheels)) if len(wheels) == 1 else None
