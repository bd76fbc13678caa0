"""The caching proxy's guards (issue 26): a server-side release cooldown, PEP 792 project
status passed through, PEP 740 provenance carried, and the OSV query API, driven by real pip,
uv and pip-audit through `wheelhouse serve --upstream`."""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests.support.capabilities import missing
from tests.support.dists import DistFactory
from tests.support.osv import real_members, write_zip
from tests.support.process import ServeProcess, run_command, wait_until
from tests.support.provenance import DATA, PROVENANCE, SDIST, SDIST_SHA256, attested_index
from tests.support.proxy import HTML, StartProxy, page, pip_download, proxy_store
from tests.support.server import IndexServer
from tests.support.server import ago as _ago
from wheelhouse._base.cooldown import Cooldown
from wheelhouse.provenance.fetch import PROVENANCE_TYPE
from wheelhouse.serve._guards import BUCKET_SECONDS, Guards, Refused
from wheelhouse.simple import PageFile

OLD = "alpha-1.0-py3-none-any.whl"
NEW = "alpha-2.0-py3-none-any.whl"


@pytest.fixture
def alpha(dists: DistFactory, upstream: IndexServer) -> IndexServer:
    """alpha 1.0 (uploaded long ago) and 2.0 (two days ago); beta 1.0 (long ago)."""
    dists.wheel("alpha", "1.0")
    dists.wheel("alpha", "2.0")
    dists.wheel("beta", "1.0")
    upstream.upload_times[NEW] = _ago(timedelta(days=2))
    return upstream


def file_path(upstream: IndexServer, project: str, filename: str) -> str:
    """The proxy's URL path of an upstream file (content-addressed, as the pages link it)."""
    (sha256,) = [d.sha256 for d in upstream.dists()[project] if d.filename == filename]
    return f"/files/{project}/{sha256}/{filename}"


def uv_install(
    proxy: ServeProcess, python: Path, requirement: str
) -> subprocess.CompletedProcess[str]:
    uv = shutil.which("uv")
    assert uv is not None, "uv is a test dependency"
    argv = [uv, "pip", "install", "--python", python, "--index-url", proxy.url, "--no-cache"]
    return run_command([*argv, requirement])


# -- the cooldown ---------------------------------------------------------------------------


def test_a_fresh_file_is_left_out_and_refused_even_when_stored(
    alpha: IndexServer, start_proxy: StartProxy, make_venv: Any, tmp_path: Path
) -> None:
    # Stored first by a proxy without a cooldown, then served by one with it (same store).
    plain = start_proxy("--upstream", alpha.url)
    fetched = pip_download(plain, tmp_path / "before", "alpha==2.0", extra=("--no-deps",))
    assert fetched.returncode == 0, fetched.stderr
    plain.stop()

    proxy = start_proxy("--upstream", alpha.url, "--exclude-newer", "7d", "--ttl", "0")
    data = page(proxy, "alpha")
    assert [f["filename"] for f in data["files"]] == [OLD]
    assert data["versions"] == ["1.0"]  # PEP 700's list recomputed from the files kept
    status, _, html = proxy.get("/simple/alpha/", HTML)
    assert status == 200 and OLD.encode() in html and NEW.encode() not in html

    status, _, body = proxy.get(file_path(alpha, "alpha", NEW))
    assert status == 404
    assert body.decode().startswith(f"{NEW} was uploaded at ")
    assert "after the proxy's cooldown cutoff" in body.decode()
    status, _, _ = proxy.get(file_path(alpha, "alpha", NEW) + ".metadata")
    assert status == 404
    status, _, _ = proxy.get(file_path(alpha, "alpha", OLD))
    assert status == 200

    # Real clients: the old release installs, the fresh one is not there.
    newest = pip_download(proxy, tmp_path / "pip", "alpha", extra=("--no-deps",))
    assert newest.returncode == 0, newest.stderr
    assert sorted(p.name for p in (tmp_path / "pip").iterdir()) == [OLD]
    pinned = pip_download(proxy, tmp_path / "pinned", "alpha==2.0", extra=("--no-deps",))
    assert pinned.returncode != 0
    assert "No matching distribution found for alpha==2.0" in pinned.stderr
    python = make_venv("uv-venv", with_pip=False)
    assert uv_install(proxy, python, "alpha==2.0").returncode != 0
    installed = uv_install(proxy, python, "alpha")
    assert installed.returncode == 0, installed.stderr
    assert "alpha==1.0" in installed.stderr


@pytest.mark.network
def test_the_real_index_upload_times_hold_back_a_later_release(
    start_proxy: StartProxy, make_venv: Any, tmp_path: Path
) -> None:
    # packaging 24.2 was uploaded on 2024-11-08 and 25.0 on 2025-04-19.
    upstream = "https://pypi.org/simple/"
    proxy = start_proxy("--upstream", upstream, "--exclude-newer", "2025-01-01")
    assert "25.0" not in page(proxy, "packaging")["versions"]
    held = pip_download(proxy, tmp_path / "pip", "packaging>=24,<26", extra=("--no-deps",))
    assert held.returncode == 0, held.stderr
    assert sorted(p.name for p in (tmp_path / "pip").iterdir()) == [
        "packaging-24.2-py3-none-any.whl"
    ]
    python = make_venv("uv-venv", with_pip=False)
    installed = uv_install(proxy, python, "packaging>=24,<26")
    assert installed.returncode == 0, installed.stderr
    assert "packaging==24.2" in installed.stderr
    proxy.stop()

    # Without the cooldown, the same store and clients get the later release.
    plain = start_proxy("--upstream", upstream)
    newest = pip_download(plain, tmp_path / "plain", "packaging>=24,<26", extra=("--no-deps",))
    assert newest.returncode == 0, newest.stderr
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "packaging-25.0-py3-none-any.whl"
    ]


def test_an_exception_per_project_and_an_absolute_date(
    alpha: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy(
        "--upstream", alpha.url, "--exclude-newer", "2020-01-01",
        "--exclude-newer-package", "alpha=1d",
    )  # fmt: skip
    assert [f["filename"] for f in page(proxy, "alpha")["files"]] == [OLD, NEW]
    assert page(proxy, "beta")["files"] == []  # uploaded in 2026, after 2020-01-01
    assert page(proxy, "beta")["versions"] == []


@pytest.mark.parametrize(("setting", "shown"), [("refuse", [OLD]), ("keep", [OLD, NEW])])
def test_a_file_without_upload_time_follows_the_explicit_setting(
    alpha: IndexServer, start_proxy: StartProxy, setting: str, shown: list[str]
) -> None:
    alpha.upload_times[NEW] = None
    proxy = start_proxy(
        "--upstream", alpha.url, "--exclude-newer", "7d", "--no-upload-time", setting
    )
    assert [f["filename"] for f in page(proxy, "alpha")["files"]] == shown
    status, _, body = proxy.get(file_path(alpha, "alpha", NEW))
    if setting == "refuse":
        assert status == 404
        assert body.decode() == (
            f"{NEW} has no upload time and the proxy's cooldown (--no-upload-time refuse) "
            "serves no such file\n"
        )
    else:
        assert status == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--exclude-newer", "7d"], "--exclude-newer applies to the proxy only"),
        (["--osv", "x.zip"], "--osv applies to the proxy only"),
        (["--upstream", "http://127.0.0.1:9/simple/", "--exclude-newer", "soon"],
         "--exclude-newer 'soon' is not a date"),
        (["--upstream", "http://127.0.0.1:9/simple/", "--no-upload-time", "keep"],
         "--no-upload-time applies to a cooldown"),
        (["--upstream", "http://127.0.0.1:9/simple/", "--osv", "missing.zip"],
         "--osv 'missing.zip' is not a file"),
    ],
)  # fmt: skip
def test_usage_errors(cli: Any, tmp_path: Path, args: list[str], message: str) -> None:
    os.chdir(tmp_path)
    result = cli("serve", *args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr


def test_the_filtered_page_is_rendered_once_per_cutoff_bucket() -> None:
    guards = Guards(Cooldown.from_options("7d"))
    now = 1_800_000_000.0
    moment = guards.moment(now)
    assert moment is not None and moment <= now < moment + BUCKET_SECONDS
    assert guards.moment(moment + BUCKET_SECONDS - 1) == moment
    assert guards.version("v1", moment) == f"v1-c{int(moment):x}"
    fixed = Guards(Cooldown.from_options("2026-01-01"))
    assert fixed.moment(now) == fixed.moment(now + 86400) == 0.0  # never re-rendered
    assert Guards(None).moment(now) is None and Guards(None).version("v1", None) == "v1"

    def file(name: str, uploaded: str | None) -> PageFile:
        return PageFile(name, f"https://x/{name}", {"sha256": "0" * 64}, upload_time=uploaded)

    files = (
        file("a-1.0.tar.gz", "2026-01-01T00:00:00Z"),
        file("a-2.0.tar.gz", datetime.fromtimestamp(now - 3600, UTC).isoformat()),
    )
    shown, versions = guards.shown("a", files, ("1.0", "2.0", "3.0"), "active", moment)
    assert shown == files[:1] and versions is None  # None: recomputed from what is shown
    assert guards.shown("a", files[:1], ("1.0",), "active", moment) == (files[:1], ("1.0",))
    assert guards.shown("a", files, ("1.0",), "quarantined", None) == ((), ())
    with pytest.raises(Refused) as refused:
        Guards(None).check("a", files[0], "quarantined", "malware\nreported")
    assert refused.value.reason == (
        "a is quarantined upstream (PEP 792), so its files are not served: malware reported"
    )


# -- PEP 792 project status -----------------------------------------------------------------


def test_a_quarantined_project_offers_no_files_and_its_stored_ones_are_refused(
    alpha: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    proxy = start_proxy("--upstream", alpha.url, "--ttl", "0")
    stored = pip_download(proxy, tmp_path / "before", "beta", extra=("--no-deps",))
    assert stored.returncode == 0, stored.stderr
    url = file_path(alpha, "beta", "beta-1.0-py3-none-any.whl")

    alpha.project_status["beta"] = ("quarantined", "malware reported")
    # --ttl 0: the next page request revalidates upstream (in the background).
    assert wait_until(lambda: page(proxy, "beta").get("project-status") is not None)
    data = page(proxy, "beta")
    assert data["project-status"] == {"status": "quarantined", "reason": "malware reported"}
    assert data["meta"]["api-version"] == "1.4"
    assert data["files"] == []
    status, _, html = proxy.get("/simple/beta/", HTML)
    assert b'<meta name="pypi:project-status" content="quarantined">' in html
    assert b'<meta name="pypi:project-status-reason" content="malware reported">' in html
    assert b"beta-1.0" not in html

    status, _, body = proxy.get(url)
    assert status == 404
    assert body == (
        b"beta is quarantined upstream (PEP 792), so its files are not served: malware reported\n"
    )
    assert proxy.get(url + ".metadata")[0] == 404
    failed = pip_download(proxy, tmp_path / "after", "beta", extra=("--no-deps",))
    assert failed.returncode != 0
    assert "No matching distribution found for beta" in failed.stderr

    # Lifted upstream: served again.
    del alpha.project_status["beta"]
    assert wait_until(lambda: page(proxy, "beta").get("project-status") is None)
    assert proxy.get(url)[0] == 200


def test_an_archived_status_is_passed_through_with_its_files(
    alpha: IndexServer, start_proxy: StartProxy
) -> None:
    alpha.project_status["beta"] = ("archived", None)
    proxy = start_proxy("--upstream", alpha.url)
    data = page(proxy, "beta")
    assert data["project-status"] == {"status": "archived"}
    assert [f["filename"] for f in data["files"]] == ["beta-1.0-py3-none-any.whl"]
    assert proxy.get(file_path(alpha, "beta", "beta-1.0-py3-none-any.whl"))[0] == 200


# -- PEP 740 provenance ---------------------------------------------------------------------


@pytest.fixture
def attested(tmp_path: Path) -> Any:
    """A JSON index listing the real pypi-attestations sdist, its real provenance at its
    integrity URL."""
    with attested_index(tmp_path / "attested") as server:
        yield server


def test_provenance_is_fetched_once_served_by_the_proxy_and_kept_offline(
    attested: IndexServer, start_proxy: StartProxy
) -> None:
    proxy = start_proxy("--upstream", attested.url)
    project = "pypi-attestations"
    (item,) = page(proxy, project)["files"]
    url = f"/files/{project}/{SDIST_SHA256}/{SDIST}"
    # The proxy's own URL, beside the file's (relative to the page, as PEP 691 allows).
    assert urlsplit(urljoin(f"/simple/{project}/", item["provenance"])).path == url + ".provenance"
    assert urlsplit(item["url"]).path == url
    status, _, html = proxy.get(f"/simple/{project}/", HTML)
    assert (
        f'data-provenance="../../files/{project}/{SDIST_SHA256}/{SDIST}.provenance"'.encode()
        in html
    )

    integrity = f"/integrity/{project}/0.0.19/{SDIST}/provenance"
    for _ in range(2):
        status, headers, body = proxy.get(url + ".provenance")
        assert status == 200 and body == PROVENANCE
        assert headers["content-type"] == PROVENANCE_TYPE
    assert attested.count(integrity) == 1  # once from upstream, then from the store
    stored = next((proxy_store(proxy) / "provenance").rglob(SDIST_SHA256))
    assert stored.read_bytes() == PROVENANCE

    attested.stop()  # upstream gone: still served, from the store
    status, _, body = proxy.get(url + ".provenance")
    assert status == 200 and body == PROVENANCE


def test_a_provenance_for_another_file_is_refused_and_not_kept(
    attested: IndexServer, start_proxy: StartProxy
) -> None:
    attested.provenance[SDIST] = (
        DATA / "gitlab_oidc_project-0.0.3.tar.gz.publish.attestation"
    ).read_bytes()
    proxy = start_proxy("--upstream", attested.url)
    page(proxy, "pypi-attestations")
    status, _, body = proxy.get(f"/files/pypi-attestations/{SDIST_SHA256}/{SDIST}.provenance")
    assert status == 502
    assert f"is not the provenance of {SDIST!r}".encode() in body
    assert not (proxy_store(proxy) / "provenance").exists()


def test_a_file_without_provenance_has_none(alpha: IndexServer, start_proxy: StartProxy) -> None:
    proxy = start_proxy("--upstream", alpha.url)
    assert "provenance" not in page(proxy, "alpha")["files"][0]
    # Never the file itself under the provenance's name, stored or not.
    assert proxy.get(file_path(alpha, "alpha", OLD))[0] == 200
    assert proxy.get(file_path(alpha, "alpha", OLD) + ".provenance")[0] == 404


# -- the OSV query API ----------------------------------------------------------------------

QUERY = {"package": {"name": "requests", "ecosystem": "PyPI"}, "version": "2.30.0"}


def post(proxy: ServeProcess, body: bytes) -> tuple[int, dict[str, Any]]:
    where = urlsplit(proxy.url)
    connection = http.client.HTTPConnection(where.hostname or "", where.port, timeout=30)
    try:
        connection.request("POST", "/v1/query", body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        assert response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_the_proxy_answers_osv_queries_from_a_snapshot(
    alpha: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    snapshot = write_zip(tmp_path / "PyPI.zip", real_members())
    proxy = start_proxy("--upstream", alpha.url, "--osv", snapshot)
    status, answer = post(proxy, json.dumps(QUERY).encode())
    assert status == 200
    ids = sorted(v["id"] for v in answer["vulns"])
    assert ids == ["GHSA-9wx4-h78v-vm56", "GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]
    assert post(proxy, b"[]") == (400, {"code": 3, "message": "the query is not a JSON object"})

    bare = start_proxy("--upstream", alpha.url, "--store", tmp_path / "other")
    assert post(bare, json.dumps(QUERY).encode()) == (
        404,
        {"code": 5, "message": "this proxy answers no OSV query: it was given no snapshot (--osv)"},
    )


def test_pip_audit_through_the_proxy_finds_the_vulnerability(
    alpha: IndexServer, start_proxy: StartProxy, tmp_path: Path
) -> None:
    pip_audit = os.environ.get("WHEELHOUSE_TEST_PIP_AUDIT") or shutil.which(
        "pip-audit", path=os.path.dirname(sys.executable)
    )
    if pip_audit is None:
        missing("pip-audit", "a test dependency (noxfile.py); WHEELHOUSE_TEST_PIP_AUDIT names one")
    snapshot = write_zip(tmp_path / "PyPI.zip", real_members())
    proxy = start_proxy("--upstream", alpha.url, "--osv", snapshot)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("requests==2.30.0\n")
    proc = subprocess.run(
        [pip_audit, "-s", "osv", "--osv-url", f"{proxy.base}v1/query", "--no-deps",
         "--disable-pip", "-r", requirements, "-f", "json", "--progress-spinner", "off"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # 1: vulnerabilities found
    (dependency,) = json.loads(proc.stdout)["dependencies"]
    assert dependency["name"] == "requests"
    assert sorted(v["id"] for v in dependency["vulns"]) == ["CVE-2024-35195", "PYSEC-2023-74"]
