"""PEP 740 provenance of a wheelhouse's files, verified offline against a trust root it carries.

The modules import ``sigstore`` and ``pypi-attestations`` only when they verify, so that the
other commands do not pay for loading them.
"""

from wheelhouse.provenance.policy import ProjectPin, ProvenancePolicy, read_policy
from wheelhouse.provenance.trustroot import (
    TRUST_ROOT_PATH,
    TrustRoot,
    install_trust_root,
    read_trust_root,
)
from wheelhouse.provenance.verify import (
    PROVENANCE_SUFFIX,
    FileProvenance,
    ProvenanceProblem,
    ProvenanceReport,
    Publisher,
    verify_provenance,
)

__all__ = [
    "PROVENANCE_SUFFIX",
    "TRUST_ROOT_PATH",
    "FileProvenance",
    "ProjectPin",
    "ProvenancePolicy",
    "ProvenanceProblem",
    "ProvenanceReport",
    "Publisher",
    "TrustRoot",
    "install_trust_root",
    "read_policy",
    "read_trust_root",
    "verify_provenance",
]
