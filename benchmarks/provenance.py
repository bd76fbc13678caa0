"""Time ``wheelhouse provenance verify`` on real PEP 740 provenance (issue 26: 100 files < 5 s).

A provenance's subject must be its file's name, and the real attestations we carry
(tests/provenance/data) are for one file each: 100 distinct attested files cannot be made.
So this measures, in one process, on a wheelhouse holding the real
``pypi_attestations-0.0.19.tar.gz`` and its provenance:

- ``full``: 100 calls of ``verify_provenance(DIR)``, each doing everything a run does (read
  the manifest and the trust root, check the root, make a sigstore Verifier, hash the file,
  verify the bundle and the subject) -- an upper bound of 100 files;
- ``per-file``: 100 verifications of the file by one checker (one trust root and Verifier,
  as one run over a 100-file wheelhouse shares them);
- ``cli``: one ``python -m wheelhouse provenance verify DIR`` process, start-up included.

Writes nothing outside a temporary directory.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.support.provenance import DATA, SDIST, TRUST_ROOT
from tests.support.wheelhouses import make_wheelhouse, write_manifest
from wheelhouse.house.manifest import read_manifest
from wheelhouse.provenance.policy import ProvenancePolicy
from wheelhouse.provenance.trustroot import read_trust_root
from wheelhouse.provenance.verify import _Checker, verify_provenance

N = 100


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        house = Path(tmp) / "house"
        make_wheelhouse(house, [DATA / SDIST], writes=[write_manifest])
        shutil.copyfile(DATA / f"{SDIST}.provenance", house / f"{SDIST}.provenance")
        (house / "sigstore").mkdir()
        shutil.copyfile(TRUST_ROOT, house / "sigstore" / "trusted_root.json")
        assert verify_provenance(house).ok  # warm imports; and it must verify

        start = time.perf_counter()
        for _ in range(N):
            assert verify_provenance(house).ok
        full = time.perf_counter() - start

        checker = _Checker(read_trust_root(house / "sigstore" / "trusted_root.json"))
        record = read_manifest(house).file(SDIST)  # type: ignore[union-attr]
        policy = ProvenancePolicy()
        start = time.perf_counter()
        for _ in range(N):
            assert checker.check(house, SDIST, record, policy).status == "verified"
        per_file = time.perf_counter() - start

        runs = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "wheelhouse", "provenance", "verify", str(house)],
                check=True,
                capture_output=True,
            )
            runs.append(time.perf_counter() - start)
    print(
        f"full: {N} x verify_provenance(DIR)         {full:.2f} s ({full / N * 1000:.1f} ms each)"
    )
    print(f"per-file: {N} files by one checker         {per_file:.2f} s")
    print(f"cli: one process, median of 3              {statistics.median(runs):.2f} s")


if __name__ == "__main__":
    main()
