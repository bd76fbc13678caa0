"""resolve: pip's report -> pins, and pip's failures -> one error a user can act on."""

# ruff: noqa: E501 - the pip outputs below are recorded verbatim, long lines included

from __future__ import annotations

import hashlib
import importlib.metadata
import socket
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.dists import DistFactory
from tests.support.server import IndexServer
from wheelhouse._base.pip_settings import IndexOptions, PipSettings
from wheelhouse._base.targets import HOST
from wheelhouse.errors import (
    BuildError,
    ConflictError,
    ExitCode,
    HashMismatchError,
    NetworkError,
    NotFoundError,
    RequirementsError,
    ResolutionError,
)
from wheelhouse.inputs.requirements import read_inputs
from wheelhouse.resolve.by_pip import _from_report, resolve
from wheelhouse.resolve.pip_failures import explain_pip_failure

# -- pip's output, recorded -------------------------------------------------------------------
# Recorded by running `python -m pip install --dry-run --ignore-installed --progress-bar off
# --report R --index-url URL -r requirements.txt` with pip 23.2.1 (what `python -m venv` bundles
# here) and pip 26.3 (the newest), against the tests' loopback index, PIP_CONFIG_FILE=/dev/null.
# stdout and stderr are joined with a newline, as resolve() does. Only the port, the temporary
# directory and the venv path were replaced by fixed values.
# The index at 127.0.0.1:8765 serves alpha 1.0 and 2.0, shared 1.0 and 2.0, left 1.0
# (shared==1.0), right 1.0 (shared==2.0), needs-shared 1.0 (shared), and badmeta 1.0, an sdist
# whose prepare_metadata_for_build_wheel fails. Port 9 is closed; 8443 serves a self-signed cert.

INDEX = PipSettings.parse({}, IndexOptions(index_url="http://127.0.0.1:8765/simple/"))
REQS = "/home/user/project/requirements.txt"
ALPHA_1_SHA = "ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd"
CORRUPT_SHA = "c09766f20e3b4a46db6028e508256a50d58b55c6fda61e2145978c1f6cafe99e"
SHARED_2_SHA = "491a090837cb0efd80603ba1d95e4409d4db2b70b4462f4857d75d7d2a785994"

PIP_232_NOT_FOUND = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement nosuchproject (from versions: none)\n"
    "ERROR: No matching distribution found for nosuchproject\n"
)

PIP_263_NOT_FOUND = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement nosuchproject (from versions: none)\n"
    "ERROR: No matching distribution found for nosuchproject\n"
)

PIP_232_NO_VERSION = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement alpha>=3 (from versions: 1.0, 2.0)\n"
    "ERROR: No matching distribution found for alpha>=3\n"
)

PIP_263_NO_VERSION = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement alpha>=3 (from versions: 1.0, 2.0)\n"
    "ERROR: No matching distribution found for alpha>=3\n"
)

PIP_232_CONFLICT = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting left (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/left-1.0-py3-none-any.whl (881 bytes)\n"
    "Collecting right (from -r /home/user/project/requirements.txt (line 2))\n"
    "  Downloading http://127.0.0.1:8765/files/right-1.0-py3-none-any.whl (894 bytes)\n"
    "Collecting shared==1.0 (from left->-r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/shared-1.0-py3-none-any.whl (878 bytes)\n"
    "INFO: pip is looking at multiple versions of right to determine which version is compatible with other requirements. This could take a while.\n"
    "\n"
    "The conflict is caused by:\n"
    "    left 1.0 depends on shared==1.0\n"
    "    right 1.0 depends on shared==2.0\n"
    "\n"
    "To fix this you could try to:\n"
    "1. loosen the range of package versions you've specified\n"
    "2. remove package versions to allow pip attempt to solve the dependency conflict\n"
    "\n"
    "\n"
    "ERROR: Cannot install -r /home/user/project/requirements.txt (line 1) and -r /home/user/project/requirements.txt (line 2) because these package versions have conflicting dependencies.\n"
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts\n"
)

PIP_263_CONFLICT = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting left (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading left-1.0-py3-none-any.whl (881 bytes)\n"
    "Collecting right (from -r /home/user/project/requirements.txt (line 2))\n"
    "  Downloading right-1.0-py3-none-any.whl (894 bytes)\n"
    "Collecting shared==1.0 (from left->-r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading shared-1.0-py3-none-any.whl (878 bytes)\n"
    "\n"
    "The conflict is caused by:\n"
    "    left 1.0 depends on shared==1.0\n"
    "    right 1.0 depends on shared==2.0\n"
    "\n"
    "Additionally, some packages in these conflicts have no matching distributions available for your environment:\n"
    "    shared\n"
    "\n"
    "To fix this you could try to:\n"
    "1. loosen the range of package versions you've specified\n"
    "2. remove package versions to allow pip to attempt to solve the dependency conflict\n"
    "\n"
    "\n"
    "ERROR: Cannot install -r /home/user/project/requirements.txt (line 1) and -r /home/user/project/requirements.txt (line 2) because these package versions have conflicting dependencies.\n"
    "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/dependency-resolution/#dealing-with-dependency-conflicts\n"
)

PIP_232_HASH_PINNED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting alpha==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl (864 bytes)\n"
    "\n"
    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.\n"
    "    alpha==1.0 from http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl#sha256=ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd (from -r /home/user/project/requirements.txt (line 1)):\n"
    "        Expected sha256 0000000000000000000000000000000000000000000000000000000000000000\n"
    "             Got        ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd\n"
)

PIP_263_HASH_PINNED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting alpha==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading alpha-1.0-py3-none-any.whl (864 bytes)\n"
    "\n"
    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.\n"
    "    alpha==1.0 from http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl#sha256=ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd (from -r /home/user/project/requirements.txt (line 1)):\n"
    "        Expected sha256 0000000000000000000000000000000000000000000000000000000000000000\n"
    "             Got        ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd\n"
)

PIP_232_HASH_CORRUPT = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting alpha==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl (864 bytes)\n"
    "\n"
    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.\n"
    "    alpha==1.0 from http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl#sha256=ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd (from -r /home/user/project/requirements.txt (line 1)):\n"
    "        Expected sha256 ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd\n"
    "             Got        c09766f20e3b4a46db6028e508256a50d58b55c6fda61e2145978c1f6cafe99e\n"
)

PIP_263_HASH_CORRUPT = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting alpha==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading alpha-1.0-py3-none-any.whl (864 bytes)\n"
    "\n"
    "ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, please update the hashes. Otherwise, examine the package contents carefully; someone may have tampered with them.\n"
    "    alpha==1.0 from http://127.0.0.1:8765/files/alpha-1.0-py3-none-any.whl#sha256=ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd (from -r /home/user/project/requirements.txt (line 1)):\n"
    "        Expected sha256 ff88897f37112ded1ba46735ee0de6917be144db2b8b11712c26f858ccaf59bd\n"
    "             Got        c09766f20e3b4a46db6028e508256a50d58b55c6fda61e2145978c1f6cafe99e\n"
)

PIP_232_REQUIRE_HASHES = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting needs-shared==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/needs_shared-1.0-py3-none-any.whl (953 bytes)\n"
    "Collecting shared (from needs-shared==1.0->-r /home/user/project/requirements.txt (line 1))\n"
    "\n"
    "ERROR: In --require-hashes mode, all requirements must have their versions pinned with ==. These do not:\n"
    "    shared from http://127.0.0.1:8765/files/shared-2.0-py3-none-any.whl#sha256=491a090837cb0efd80603ba1d95e4409d4db2b70b4462f4857d75d7d2a785994 (from needs-shared==1.0->-r /home/user/project/requirements.txt (line 1))\n"
)

PIP_263_REQUIRE_HASHES = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting needs-shared==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading needs_shared-1.0-py3-none-any.whl (953 bytes)\n"
    "Collecting shared (from needs-shared==1.0->-r /home/user/project/requirements.txt (line 1))\n"
    "\n"
    "ERROR: In --require-hashes mode, all requirements must have their versions pinned with ==. These do not:\n"
    "    shared from http://127.0.0.1:8765/files/shared-2.0-py3-none-any.whl#sha256=491a090837cb0efd80603ba1d95e4409d4db2b70b4462f4857d75d7d2a785994 (from needs-shared==1.0->-r /home/user/project/requirements.txt (line 1))\n"
)

PIP_232_HASHES_REQUIRED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting needs-shared==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/needs_shared-1.0-py3-none-any.whl (953 bytes)\n"
    "Collecting shared==2.0 (from -r /home/user/project/requirements.txt (line 2))\n"
    "  Downloading http://127.0.0.1:8765/files/shared-2.0-py3-none-any.whl (875 bytes)\n"
    "\n"
    "ERROR: Hashes are required in --require-hashes mode, but they are missing from some requirements. Here is a list of those requirements along with the hashes their downloaded archives actually had. Add lines like these to your requirements files to prevent tampering. (If you did not enable --require-hashes manually, note that it turns on automatically when any package has a hash.)\n"
    "    shared==2.0 --hash=sha256:491a090837cb0efd80603ba1d95e4409d4db2b70b4462f4857d75d7d2a785994\n"
)

PIP_263_HASHES_REQUIRED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting needs-shared==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading needs_shared-1.0-py3-none-any.whl (953 bytes)\n"
    "Collecting shared==2.0 (from -r /home/user/project/requirements.txt (line 2))\n"
    "  Downloading shared-2.0-py3-none-any.whl (875 bytes)\n"
    "\n"
    "ERROR: Hashes are required in --require-hashes mode, but they are missing from some requirements. Here is a list of those requirements along with the hashes their downloaded archives actually had. Add lines like these to your requirements files to prevent tampering. (If you did not enable --require-hashes manually, note that it turns on automatically when any package has a hash.)\n"
    "    shared==2.0 --hash=sha256:491a090837cb0efd80603ba1d95e4409d4db2b70b4462f4857d75d7d2a785994\n"
)

PIP_232_NETWORK_RETRY = (
    "Looking in indexes: http://127.0.0.1:9/simple/\n"
    "\n"
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError('<pip._vendor.urllib3.connection.HTTPConnection object at 0x7f7e218fd950>: Failed to establish a new connection: [Errno 111] Connection refused')': /simple/alpha/\n"
    "ERROR: Could not find a version that satisfies the requirement alpha==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for alpha==1.0\n"
)

PIP_263_NETWORK_RETRY = (
    "Looking in indexes: http://127.0.0.1:9/simple/\n"
    "\n"
    "WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after connection broken by 'NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=9): Failed to establish a new connection: [Errno 111] Connection refused\")': /simple/alpha/\n"
    "ERROR: Could not find a version that satisfies the requirement alpha==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for alpha==1.0\n"
)

PIP_232_SSL = (
    "Looking in indexes: https://127.0.0.1:8443/simple/\n"
    "Could not fetch URL https://127.0.0.1:8443/simple/alpha/: There was a problem confirming the ssl certificate: HTTPSConnectionPool(host='127.0.0.1', port=8443): Max retries exceeded with url: /simple/alpha/ (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006)'))) - skipping\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement alpha==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for alpha==1.0\n"
)

PIP_263_SSL = (
    "Looking in indexes: https://127.0.0.1:8443/simple/\n"
    "Could not fetch URL https://127.0.0.1:8443/simple/alpha/: There was a problem confirming the ssl certificate: [SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate (_ssl.c:1006) - skipping\n"
    "\n"
    "ERROR: Could not find a version that satisfies the requirement alpha==1.0 (from versions: none)\n"
    "ERROR: No matching distribution found for alpha==1.0\n"
)

PIP_232_METADATA_FAILED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting badmeta==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading http://127.0.0.1:8765/files/badmeta-1.0.tar.gz (1.8 kB)\n"
    "  Getting requirements to build wheel: started\n"
    "  Getting requirements to build wheel: finished with status 'done'\n"
    "  Preparing metadata (pyproject.toml): started\n"
    "  Preparing metadata (pyproject.toml): finished with status 'error'\n"
    "\n"
    "  error: subprocess-exited-with-error\n"
    "  \n"
    "  × Preparing metadata (pyproject.toml) did not run successfully.\n"
    "  │ exit code: 1\n"
    "  ╰─> [13 lines of output]\n"
    "      tiny_backend: cannot generate metadata\n"
    "      Traceback (most recent call last):\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 353, in <module>\n'
    "          main()\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 335, in main\n'
    "          json_out['return_val'] = hook(**hook_input['kwargs'])\n"
    "                                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 149, in prepare_metadata_for_build_wheel\n'
    "          return hook(metadata_directory, config_settings)\n"
    "                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '        File "/tmp/pip-install-z43k_oxc/badmeta_2532454dc69a47c4bf87b7f31924303c/_backend/tiny_backend.py", line 66, in prepare_metadata_for_build_wheel\n'
    "          raise RuntimeError('metadata failed')\n"
    "      RuntimeError: metadata failed\n"
    "      [end of output]\n"
    "  \n"
    "  note: This error originates from a subprocess, and is likely not a problem with pip.\n"
    "error: metadata-generation-failed\n"
    "\n"
    "× Encountered error while generating package metadata.\n"
    "╰─> See above for output.\n"
    "\n"
    "note: This is an issue with the package mentioned above, not pip.\n"
    "hint: See above for details.\n"
)

PIP_263_METADATA_FAILED = (
    "Looking in indexes: http://127.0.0.1:8765/simple/\n"
    "Collecting badmeta==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
    "  Downloading badmeta-1.0.tar.gz (1.8 kB)\n"
    "  Getting requirements to build wheel: started\n"
    "  Getting requirements to build wheel: finished with status 'done'\n"
    "  Preparing metadata (pyproject.toml): started\n"
    "  Preparing metadata (pyproject.toml): finished with status 'error'\n"
    "\n"
    "  error: subprocess-exited-with-error\n"
    "  \n"
    "  × Preparing metadata (pyproject.toml) did not run successfully.\n"
    "  │ exit code: 1\n"
    "  ╰─> [13 lines of output]\n"
    "      tiny_backend: cannot generate metadata\n"
    "      Traceback (most recent call last):\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 406, in <module>\n'
    "          main()\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 381, in main\n'
    '          json_out["return_val"] = hook(**hook_input["kwargs"])\n'
    "                                   ^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '        File "/home/user/venv/lib/python3.11/site-packages/pip/_vendor/pyproject_hooks/_in_process/_in_process.py", line 181, in prepare_metadata_for_build_wheel\n'
    "          return hook(metadata_directory, config_settings)\n"
    "                 ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
    '        File "/tmp/pip-install-uanykbpu/badmeta_8d2bb4c5ff34443da3bd67f9913971f1/_backend/tiny_backend.py", line 66, in prepare_metadata_for_build_wheel\n'
    "          raise RuntimeError('metadata failed')\n"
    "      RuntimeError: metadata failed\n"
    "      [end of output]\n"
    "  \n"
    "  note: This error originates from a subprocess, and is likely not a problem with pip.\n"
    "error: metadata-generation-failed\n"
    "\n"
    "× Encountered error while generating package metadata.\n"
    "╰─> badmeta\n"
    "\n"
    "note: This is an issue with the package mentioned above, not pip.\n"
    "hint: See above for details.\n"
)


def pips(name: str) -> pytest.MarkDecorator:
    """Run a test once on pip 23.2's output and once on pip 26.3's for the case ``name``."""
    outputs = [globals()[f"PIP_232_{name}"], globals()[f"PIP_263_{name}"]]
    return pytest.mark.parametrize("output", outputs, ids=["pip-23.2", "pip-26.3"])


@pips("NOT_FOUND")
def test_unknown_project(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, NotFoundError)
    assert err.exit_code == ExitCode.RESOLUTION
    assert err.message == "no distribution found for 'nosuchproject' on the configured indexes"
    assert err.requirement == "nosuchproject"
    assert err.hint == "check the project name, and --index-url/--extra-index-url/--find-links"


@pips("NO_VERSION")
def test_no_version_satisfies_lists_the_versions(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, NotFoundError)
    assert err.exit_code == ExitCode.RESOLUTION
    assert err.message == "no version of 'alpha>=3' is available (versions found: 1.0, 2.0)"
    assert err.requirement == "alpha>=3"


def test_a_long_list_of_versions_is_cut_to_the_newest() -> None:
    versions = ", ".join(f"1.{minor}" for minor in range(30))
    output = (
        "ERROR: Could not find a version that satisfies the requirement alpha>=3 "
        f"(from versions: {versions})\nERROR: No matching distribution found for alpha>=3\n"
    )
    err = explain_pip_failure(output, INDEX)
    newest = ", ".join(f"1.{minor}" for minor in range(20, 30))
    assert err.message == (
        f"no version of 'alpha>=3' is available (versions found: 20 older, then {newest})"
    )


@pips("CONFLICT")
def test_conflict_is_condensed_to_its_causes(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, ConflictError)
    assert err.exit_code == ExitCode.RESOLUTION
    assert err.message == (
        f"conflicting requirements: -r {REQS} (line 1) and -r {REQS} (line 2) "
        "(left 1.0 depends on shared==1.0; right 1.0 depends on shared==2.0)"
    )
    assert err.hint == "loosen one of the pins above so that they can agree"


@pips("HASH_PINNED")
def test_hash_pinned_in_the_requirements_does_not_match(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, HashMismatchError)
    assert err.exit_code == ExitCode.INTEGRITY
    assert (err.expected, err.actual) == ("0" * 64, ALPHA_1_SHA)
    assert err.message == (
        "hash mismatch for alpha==1.0 from http://127.0.0.1:8765/files/"
        f"alpha-1.0-py3-none-any.whl#sha256={ALPHA_1_SHA}: expected sha256 {'0' * 64}, "
        f"got {ALPHA_1_SHA}"
    )


@pips("HASH_CORRUPT")
def test_file_that_does_not_match_the_index_hash(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, HashMismatchError)
    assert err.exit_code == ExitCode.INTEGRITY
    assert (err.expected, err.actual) == (ALPHA_1_SHA, CORRUPT_SHA)


@pips("HASH_CORRUPT")
def test_hash_mismatch_names_the_bare_filename(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, HashMismatchError)
    assert err.filename == "alpha-1.0-py3-none-any.whl"


@pips("HASHES_REQUIRED")
def test_some_requirements_have_hashes_and_others_not(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, RequirementsError)
    assert err.exit_code == ExitCode.INPUT
    assert err.message == (
        "some requirements have no --hash while others do (pip's hash-checking mode needs "
        "every requirement pinned with ==, including dependencies): shared==2.0"
    )


@pips("REQUIRE_HASHES")
def test_unpinned_dependency_in_hash_checking_mode_is_named(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, RequirementsError)
    assert err.exit_code == ExitCode.INPUT
    assert "shared" in err.message


@pips("NETWORK_RETRY")
def test_unreachable_index_is_a_network_error(output: str) -> None:
    index = PipSettings.parse({}, IndexOptions(index_url="http://127.0.0.1:9/simple/"))
    err = explain_pip_failure(output, index)
    assert isinstance(err, NetworkError)
    assert err.exit_code == ExitCode.NETWORK
    assert err.url == "http://127.0.0.1:9/simple/"
    assert err.message.startswith(
        "cannot reach http://127.0.0.1:9/simple (while fetching /simple/alpha/): "
        "NewConnectionError("
    )


def test_unreachable_index_message_pip_26() -> None:
    index = PipSettings.parse({}, IndexOptions(index_url="http://127.0.0.1:9/simple/"))
    err = explain_pip_failure(PIP_263_NETWORK_RETRY, index)
    assert err.message == (
        "cannot reach http://127.0.0.1:9/simple (while fetching /simple/alpha/): "
        "NewConnectionError(\"HTTPConnection(host='127.0.0.1', port=9): Failed to establish "
        'a new connection: [Errno 111] Connection refused")'
    )


def test_unreachable_index_message_pip_23_keeps_the_reason() -> None:
    index = PipSettings.parse({}, IndexOptions(index_url="http://127.0.0.1:9/simple/"))
    err = explain_pip_failure(PIP_232_NETWORK_RETRY, index)
    assert "Connection refused" in err.message


@pips("SSL")
def test_certificate_failure_names_the_url(output: str) -> None:
    err = explain_pip_failure(
        output, PipSettings.parse({}, IndexOptions(index_url="https://127.0.0.1:8443/simple/"))
    )
    assert isinstance(err, NetworkError)
    assert err.exit_code == ExitCode.NETWORK
    assert err.url == "https://127.0.0.1:8443/simple/alpha/"
    assert err.message.startswith(
        "cannot reach https://127.0.0.1:8443/simple/alpha/: "
        "There was a problem confirming the ssl certificate: "
    )
    assert "CERTIFICATE_VERIFY_FAILED" in err.message
    assert err.hint == "check the network, the index URL and pip's proxy and cert settings"


@pips("METADATA_FAILED")
def test_sdist_metadata_failure_is_a_build_error(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, BuildError)
    assert err.exit_code == ExitCode.BUILD
    assert err.message == "pip could not prepare the metadata of badmeta==1.0 while resolving"
    assert "RuntimeError: metadata failed" in err.log_tail


@pips("METADATA_FAILED")
def test_sdist_metadata_failure_keeps_the_backends_message(output: str) -> None:
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, BuildError)
    assert "tiny_backend: cannot generate metadata" in err.log_tail


def test_anything_else_reaches_the_user_as_pips_last_error() -> None:
    output = "Looking in indexes: x\nERROR: first problem\nERROR: Something new went wrong\n"
    err = explain_pip_failure(output, INDEX)
    assert type(err) is ResolutionError
    assert err.message == "pip could not resolve the requirements: Something new went wrong"


def test_silent_failure() -> None:
    err = explain_pip_failure("\n", INDEX)
    assert type(err) is ResolutionError
    assert err.message == "pip could not resolve the requirements: pip failed without a message"


# -- pip's report -> pins ----------------------------------------------------------------------

WHEEL_SHA = "0123456789abcdef" * 4
SDIST_SHA = "fedcba9876543210" * 4


def _item(
    name: str,
    version: str,
    url: str,
    archive_info: dict[str, Any] | None = None,
    *,
    requested: bool = False,
    requires_python: str | None = None,
    download_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"metadata_version": "2.1", "name": name, "version": version}
    if requires_python is not None:
        metadata["requires_python"] = requires_python
    info = download_info or {"url": url, "archive_info": archive_info or {}}
    return {
        "download_info": info,
        "is_direct": False,
        "is_yanked": False,
        "requested": requested,
        "metadata": metadata,
    }


ENVIRONMENT = {"implementation_name": "cpython", "python_version": "3.11", "sys_platform": "linux"}


def _report(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "1",
        "pip_version": "26.3",
        "install": list(items),
        "environment": ENVIRONMENT,
    }


def test_report_gives_one_pin_per_install_item_sorted_by_name() -> None:
    report = _report(
        _item(
            "Zeta.Pkg",
            "2.0",
            "https://files.example/packages/zeta_pkg-2.0-py3-none-any.whl",
            # pip >= 22.2 writes both; `hashes` is the one to trust.
            {"hash": f"sha256={WHEEL_SHA}", "hashes": {"sha256": WHEEL_SHA.upper()}},
            requested=True,
            requires_python=">=3.8",
        ),
        _item(
            "alpha",
            "1.0",
            "https://files.example/packages/alpha-1.0.tar.gz",
            {"hash": f"sha256={SDIST_SHA}"},  # only the legacy field, as older pips wrote
        ),
    )

    resolution = _from_report(report, HOST)

    assert [p.name for p in resolution.pins] == ["alpha", "zeta-pkg"]
    alpha, zeta = resolution.pins
    assert (alpha.version, alpha.kind, alpha.sha256, alpha.filename) == (
        "1.0",
        "sdist",
        SDIST_SHA,
        "alpha-1.0.tar.gz",
    )
    assert (alpha.requested, alpha.requires_python) == (False, None)
    assert (zeta.version, zeta.kind, zeta.sha256, zeta.filename) == (
        "2.0",
        "wheel",
        WHEEL_SHA,
        "zeta_pkg-2.0-py3-none-any.whl",
    )
    assert (zeta.requested, zeta.requires_python) == (True, ">=3.8")
    assert zeta.url == "https://files.example/packages/zeta_pkg-2.0-py3-none-any.whl"
    assert resolution.environment == ENVIRONMENT
    assert resolution.pip_version == "26.3"
    assert resolution.target is HOST


def test_hashes_wins_over_legacy_hash_and_other_algorithms_are_ignored() -> None:
    report = _report(
        _item(
            "a",
            "1",
            "https://files.example/a-1-py3-none-any.whl",
            {"hash": f"sha256={SDIST_SHA}", "hashes": {"sha256": WHEEL_SHA}},
        ),
        _item(
            "b",
            "1",
            "https://files.example/b-1-py3-none-any.whl",
            {"hashes": {"md5": "d41d8cd98f00b204e9800998ecf8427e"}},
        ),
        _item("c", "1", "https://files.example/c-1-py3-none-any.whl", {}),
    )

    a, b, c = _from_report(report, HOST).pins

    assert (a.sha256, b.sha256, c.sha256) == (WHEEL_SHA, None, None)


def test_percent_encoded_filename_is_decoded() -> None:
    report = _report(
        _item("alpha", "1.0+local", "https://files.example/alpha-1.0%2Blocal-py3-none-any.whl")
    )
    (pin,) = _from_report(report, HOST).pins
    assert pin.filename == "alpha-1.0+local-py3-none-any.whl"


def test_local_directory_is_a_pin_that_build_local_turns_into_an_sdist() -> None:
    report = _report(
        _item(
            "alpha",
            "1.0",
            "",
            download_info={"url": "file:///src/alpha", "dir_info": {"editable": False}},
        )
    )
    (pin,) = _from_report(report, HOST).pins
    assert (pin.url, pin.kind, pin.sha256) == ("file:///src/alpha", "sdist", None)


def test_editable_directory_cannot_be_pinned() -> None:
    report = _report(
        _item(
            "alpha",
            "1.0",
            "",
            download_info={"url": "file:///src/alpha", "dir_info": {"editable": True}},
        )
    )
    with pytest.raises(ResolutionError) as info:
        _from_report(report, HOST)
    assert info.value.message == (
        "alpha 1.0 comes from a directory (file:///src/alpha), which a wheelhouse cannot pin "
        "by hash"
    )


def test_vcs_checkout_cannot_be_pinned() -> None:
    report = _report(
        _item(
            "alpha",
            "1.0",
            "",
            download_info={
                "url": "https://git.example/alpha.git",
                "vcs_info": {"vcs": "git", "commit_id": "0" * 40},
            },
        )
    )
    with pytest.raises(ResolutionError, match=r"^alpha 1\.0 comes from VCS "):
        _from_report(report, HOST)


@pytest.mark.parametrize(
    "filename", ["alpha-1.0.tar.bz2", "alpha-1.0.egg", "not-a-wheel.whl"], ids=str
)
def test_file_that_is_neither_wheel_nor_standard_sdist_is_refused(filename: str) -> None:
    report = _report(_item("alpha", "1.0", f"https://files.example/{filename}"))
    with pytest.raises(ResolutionError) as info:
        _from_report(report, HOST)
    assert repr(filename) in info.value.message


# -- resolve() against the loopback index -----------------------------------------------------


def test_resolve_pins_wheels_and_sdists_with_the_index_hashes(
    tmp_path: Path, dists: DistFactory, index_server: IndexServer
) -> None:
    wheel = dists.wheel("alpha", "1.0", requires=["tiny"])
    dists.wheel("alpha", "2.0", requires=["tiny"])
    sdist = dists.sdist("tiny", "1.0")
    req = tmp_path / "requirements.txt"
    req.write_text("alpha<2\n", encoding="utf-8")

    resolution = resolve(
        read_inputs((req,), ()), PipSettings.read(IndexOptions(index_url=index_server.url)), HOST
    )

    assert [(p.name, p.version, p.kind, p.filename, p.requested) for p in resolution.pins] == [
        ("alpha", "1.0", "wheel", wheel.name, True),
        ("tiny", "1.0", "sdist", sdist.name, False),
    ]
    for pin, path in zip(resolution.pins, (wheel, sdist), strict=True):
        assert pin.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
        assert pin.url == index_server.files_url + path.name
    assert resolution.pip_version == importlib.metadata.version("pip")
    assert resolution.environment["python_version"] == "{}.{}".format(*sys.version_info[:2])


def test_sdist_metadata_failure_of_a_local_file_names_it() -> None:
    # A path or a --find-links file has no 'Collecting' line: pip says 'Processing PATH'.
    output = PIP_232_METADATA_FAILED.replace(
        "Collecting badmeta==1.0 (from -r /home/user/project/requirements.txt (line 1))\n"
        "  Downloading http://127.0.0.1:8765/files/badmeta-1.0.tar.gz (1.8 kB)\n",
        "Processing ./dists/badmeta-1.0.tar.gz\n",
    )
    err = explain_pip_failure(output, INDEX)
    assert isinstance(err, BuildError)
    assert err.message == "pip could not prepare the metadata of badmeta 1.0 while resolving"


def test_unreachable_default_index_is_named() -> None:
    err = explain_pip_failure(PIP_263_NETWORK_RETRY, PipSettings())
    assert isinstance(err, NetworkError)
    assert err.message.startswith("cannot reach https://pypi.org/simple (while fetching")


def test_the_index_probe_fails_only_a_host_that_cannot_be_reached(
    index_server: IndexServer,
) -> None:
    from wheelhouse.resolve.pip_failures import unreachable as _unreachable

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed = int(sock.getsockname()[1])
    dead = _unreachable(
        PipSettings.read(IndexOptions(index_url=f"http://127.0.0.1:{closed}/simple/")), "alpha"
    )
    assert isinstance(dead, NetworkError)
    assert dead.message.startswith(f"cannot reach http://127.0.0.1:{closed}/simple/: ")
    # An HTTP answer of any status is an index that is there.
    assert (
        _unreachable(PipSettings.read(IndexOptions(index_url=index_server.url)), "no-such-project")
        is None
    )
    # So is a TLS refusal: pip may trust a certificate store that we do not, and decides.
    https = f"https://127.0.0.1:{index_server.port}/simple/"
    assert _unreachable(PipSettings.read(IndexOptions(index_url=https)), "alpha") is None
