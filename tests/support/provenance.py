"""Real PEP 740 provenance files (kept in tests/provenance/data), for offline checks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

from tests.support.server import IndexServer

DATA = Path(__file__).parents[1] / "provenance" / "data"


SDIST = "pypi_attestations-0.0.19.tar.gz"


SDIST_SHA256 = "9bb1add04b1b4e182be6b0b80931593f7a291eb49d69b4fd728a5d4cbcdc4bd3"


GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"


TRUST_ROOT = DATA / "trusted_root.json"


# The real provenance of SDIST, as PyPI's integrity API serves it.
PROVENANCE = (DATA / f"{SDIST}.provenance").read_bytes()


def attested_index(root: Path) -> IndexServer:
    """A JSON index (not started) listing the real SDIST, its real provenance at its
    integrity URL."""
    root.mkdir()
    shutil.copyfile(DATA / SDIST, root / SDIST)
    server = IndexServer(root)
    server.json_pages = True
    server.provenance[SDIST] = PROVENANCE
    return server


def gitlab_provenance() -> bytes:
    """The real GitLab attestation in a provenance object, as an integrity API serves it."""
    attestation = json.loads((DATA / f"{GITLAB_SDIST}.publish.attestation").read_bytes())
    publisher = {
        "kind": "GitLab",
        "repository": "facutuesca/gitlab-oidc-project",
        "workflow_filepath": ".gitlab-ci.yml",
        "environment": None,
    }
    provenance = {
        "version": 1,
        "attestation_bundles": [{"publisher": publisher, "attestations": [attestation]}],
    }
    return json.dumps(provenance).encode()


MakeHouse = Callable[..., Path]
