"""The issue's figure: a 400-file wheelhouse audited against an export-sized snapshot.

Prints the time and the peak memory of one `wheelhouse audit` run (a separate process, so
what it reports is its own). The bounds asserted are generous: the figure is what it prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from packaging.markers import default_environment
from packaging.tags import sys_tags

from tests.support.osv import REAL_RECORDS, real_record
from tests.support.wheelhouses import manifest_of
from wheelhouse.errors import ExitCode
from wheelhouse.house.manifest import (
    MANIFEST_NAME,
    Downloaded,
    FileRecord,
    LockEntry,
    Sha256,
    TargetLock,
)

# About the size of the OSV PyPI export (15-17k records in 2024-2026).
RECORDS = 15_000
PROJECTS = 4_000
FILES = 400


def export_sized_snapshot(path: Path) -> int:
    """The real records, and copies of them under new ids for ``PROJECTS`` other projects."""
    real = [real_record(i) for i in REAL_RECORDS]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for record in real:
            archive.writestr(f"{record['id']}.json", json.dumps(record, indent=2))
        for i in range(RECORDS - len(real)):
            copy = json.loads(json.dumps(real[i % len(real)]))
            copy["id"] = f"GHSA-synt-{i:04x}-{i % 97:04x}"
            copy["aliases"] = [f"CVE-2099-{i}"]
            for affected in copy["affected"]:
                affected["package"]["name"] = f"synthetic-{i % PROJECTS}"
            archive.writestr(f"{copy['id']}.json", json.dumps(copy, indent=2))
    return RECORDS


def big_wheelhouse(directory: Path) -> None:
    """A manifest of ``FILES`` files, two a distribution: the real releases and synthetic ones."""
    directory.mkdir()
    pins = [("requests", "2.31.0"), ("urllib3", "2.2.1"), ("jinja2", "3.1.3"), ("idna", "3.7")]
    pins += [(f"synthetic-{i}", "1.0" if i % 2 else "99.0") for i in range(FILES // 2 - 4)]
    records = []
    for name, version in pins:
        for tag in ("py3-none-any", "cp311-cp311-manylinux_2_17_x86_64"):
            filename = f"{name.replace('-', '_')}-{version}-{tag}.whl"
            records.append(
                FileRecord(
                    name=name,  # type: ignore[arg-type]
                    version=version,
                    filename=filename,
                    sha256=Sha256("0" * 64),
                    size=1,
                    kind="wheel",
                    origin=Downloaded(url=f"https://files.example.invalid/{filename}"),
                )
            )
    entries = tuple(
        LockEntry(name=n, version=v, filenames=(f"{n}-{v}",))  # type: ignore[arg-type]
        for n, v in pins
    )
    lock = TargetLock(
        target="host",
        tags=tuple(str(t) for t in sys_tags())[:3],
        environment=dict(default_environment()),
        entries=entries,
    )
    manifest = manifest_of(records, [lock])
    assert len(manifest.files) == FILES
    (directory / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")


# The child reports the time main() took, its own peak RSS (KiB on Linux), and the CPU time
# of the whole process (start-up included): on a loaded machine, what the wall time would be
# on an idle one.
_MEASURE = """
import resource, sys, time
from wheelhouse.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
took = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime
print(f"MEASURED {took:.3f} {usage.ru_maxrss} {cpu:.3f}", file=sys.stderr)
sys.exit(code)
"""


def test_an_export_sized_audit_of_400_files(tmp_path: Path) -> None:
    snapshot = tmp_path / "PyPI.zip"
    export_sized_snapshot(snapshot)
    house = tmp_path / "house"
    big_wheelhouse(house)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, "audit", str(house), "--osv", str(snapshot), "--json"],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        check=False,
    )
    wall = time.perf_counter() - started
    assert proc.returncode == ExitCode.VULNERABLE, proc.stderr
    report = json.loads(proc.stdout)
    assert report["snapshot"]["records"] == RECORDS
    assert report["distributions"] == FILES // 2
    # The three real findings, and each synthetic 1.0 release is in the copies' ranges.
    real = [v for v in report["vulnerabilities"] if not v["name"].startswith("synthetic-")]
    assert [(v["name"], v["id"]) for v in real] == [
        ("jinja2", "GHSA-h75v-3vvj-5mfj"),
        ("requests", "GHSA-9wx4-h78v-vm56"),
        ("urllib3", "GHSA-34jh-p97f-mpxf"),
    ]
    measured = next(line for line in proc.stderr.splitlines() if line.startswith("MEASURED"))
    took, peak_kib, cpu = float(measured.split()[1]), int(measured.split()[2]), measured.split()[3]
    print(
        f"\naudit of {FILES} files against {RECORDS} records "
        f"({snapshot.stat().st_size / 1e6:.1f} MB zip): main() {took:.2f} s, "
        f"process {wall:.2f} s wall, {cpu} s CPU, peak RSS {peak_kib / 1024:.0f} MiB"
    )
    assert peak_kib < 300 * 1024
    assert took < 30  # generous: the figure is the printed one (under 2 s on an idle machine)
