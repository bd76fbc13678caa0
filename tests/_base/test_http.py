"""The HTTP fence against real loopback servers: TLS, redirects, retries, proxies, credentials.

Every test downloads through ``fetch_all`` (the client's one user that falls back to pip), from
servers that really answer 302, 401, 503 or a TLS handshake, and clients (ours, pip) that really
connect; nothing of the client is patched.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import stat
import threading
from collections.abc import Mapping
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support.credentials import basic
from tests.support.dists import DistFactory
from tests.support.files import sha256_of as _sha256
from tests.support.fixtures import Cli
from tests.support.server import Answer, IndexServer
from tests.support.tls import CertAuthority, Proxy
from wheelhouse._base._http import HttpClient, load_tls
from wheelhouse._base.pip_settings import PipSettings
from wheelhouse.download.cache import Cache
from wheelhouse.download.fetch import Fetched, fetch_all
from wheelhouse.download.pins import Pin
from wheelhouse.errors import ExitCode, FetchError, HashMismatchError


def _pin(wheel: Path, url: str) -> Pin:
    name, version, _, _ = parse_wheel_filename(wheel.name)
    return Pin(
        name=canonicalize_name(name),
        version=str(version),
        url=url,
        filename=wheel.name,
        kind="wheel",
        sha256=_sha256(wheel),
        requires_python=None,
        requested=True,
    )


def _fetch(pin: Pin, cache: Cache, config: Mapping[str, str]) -> Fetched:
    [fetched] = fetch_all([pin], cache, pip=PipSettings.parse(config), allowed={}, jobs=1)
    return fetched


def _agents(server: IndexServer) -> list[str]:
    """Who asked for each file: "pip" or "us" (urllib3's user agent)."""
    found = []
    for path, headers in server.received:
        if path.startswith("/files/"):
            agent = headers.get("User-Agent", "")
            found.append("pip" if agent.startswith("pip/") else "us")
    return found


def _auths(server: IndexServer) -> list[str | None]:
    return [h.get("Authorization") for p, h in server.received if p.startswith("/files/")]


def _require(credentials: str, status: int = 401) -> object:
    """An intercept that answers ``status`` unless the request carries ``credentials``."""

    def hook(path: str, headers: Mapping[str, str]) -> Answer | None:
        if headers.get("Authorization") == credentials:
            return None
        return status, {"WWW-Authenticate": 'Basic realm="test"'}, b"credentials needed\n"

    return hook


@pytest.fixture
def cache(tmp_path: Path) -> Cache:
    return Cache(tmp_path / "cache")


@pytest.fixture(autouse=True)
def _pip_gives_up_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # pip retries a refused or failed request five times with back-off (seconds each); the
    # fallback's outcome is the same after one try.
    monkeypatch.setenv("PIP_RETRIES", "0")
    # requests (in pip) lets these override pip's own `cert`; the machine sets both.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


# -- TLS -----------------------------------------------------------------------------------------


def test_cert_from_pip_configuration_is_trusted(
    dists: DistFactory, tls_index: IndexServer, test_ca: CertAuthority, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")

    fetched = _fetch(
        _pin(wheel, tls_index.files_url + wheel.name), cache, {"cert": str(test_ca.ca_cert)}
    )

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _agents(tls_index) == ["us"]


def test_the_tls_context_loaded_ahead_is_the_one_every_client_takes(
    tmp_path: Path, test_ca: CertAuthority
) -> None:
    pip = PipSettings.parse({"cert": str(test_ca.ca_cert), "index-url": "https://i.invalid/"})
    threading.Thread(target=load_tls, args=(pip,)).start()  # the client waits for it
    context = HttpClient(pip)._context
    assert HttpClient(pip)._context is context
    assert context.cert_store_stats()["x509_ca"] >= 1

    missing = tmp_path / "missing.pem"
    broken = PipSettings.parse({"cert": str(missing), "index-url": "https://i.invalid/"})
    threading.Thread(target=load_tls, args=(broken,)).start()
    for _ in range(2):  # the failed load is not kept: each client meets the error itself
        with pytest.raises(FileNotFoundError):
            HttpClient(broken)


def test_tls_failure_of_our_client_is_handed_to_pip(
    dists: DistFactory,
    tls_index: IndexServer,
    test_ca: CertAuthority,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # pip trusts the test CA (PIP_CERT, as pip's own trust store would); our client is given
    # no cert, so its handshake fails and pip must fetch the file, which is checked here.
    monkeypatch.setenv("PIP_CERT", str(test_ca.ca_cert))
    wheel = dists.wheel("alpha", "1.0")
    caplog.set_level(logging.WARNING, logger="wheelhouse")

    fetched = _fetch(_pin(wheel, tls_index.files_url + wheel.name), cache, {})

    assert fetched.sha256 == _sha256(wheel)
    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _agents(tls_index) == ["pip"]  # ours never got past the handshake
    [warning] = [r.getMessage() for r in caplog.records if r.name == "wheelhouse.download.fetch"]
    assert warning.startswith(f"fetching {wheel.name} directly failed ([SSL: CERTIFICATE_VERIFY")
    assert warning.endswith("; asking pip")


def test_wrong_ca_is_a_clear_error(
    dists: DistFactory,
    tls_index: IndexServer,
    other_ca: CertAuthority,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIP_CERT", str(other_ca.ca_cert))
    wheel = dists.wheel("alpha", "1.0")
    url = tls_index.files_url + wheel.name

    with pytest.raises(FetchError) as info:
        _fetch(_pin(wheel, url), cache, {"cert": str(other_ca.ca_cert)})

    err = info.value
    assert err.exit_code == ExitCode.NETWORK
    assert err.message.startswith(
        f"cannot download {url} ([SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: "
        "unable to get local issuer certificate"
    )
    assert "), nor could pip: " in err.message
    assert "CERTIFICATE_VERIFY_FAILED" in err.message.split("nor could pip: ", 1)[1]
    assert err.hint == "check the index's credentials, proxy and certificates"
    assert _agents(tls_index) == []


# -- redirects and retries -----------------------------------------------------------------------


@pytest.fixture
def elsewhere(dists: DistFactory) -> IndexServer:
    """A second index on another port, serving the same files (a CDN, say)."""
    with IndexServer(dists.root) as server:
        yield server  # type: ignore[misc]


def _redirect(prefix: str, to: str, status: int = 302) -> object:
    def hook(path: str, headers: Mapping[str, str]) -> Answer | None:
        if not path.startswith(prefix):
            return None
        return status, {"Location": to + path[len(prefix) :]}, b""

    return hook


@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirected_file_is_followed_and_hash_checked(
    dists: DistFactory, index_server: IndexServer, elsewhere: IndexServer, cache: Cache, status: int
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.intercept(_redirect("/moved/", elsewhere.files_url, status))  # type: ignore[arg-type]

    fetched = _fetch(_pin(wheel, f"{index_server.base_url}moved/{wheel.name}"), cache, {})

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert index_server.requests == [f"/moved/{wheel.name}"]
    assert elsewhere.requests == [f"/files/{wheel.name}"]


def test_redirect_to_a_corrupt_file_is_caught(
    dists: DistFactory, index_server: IndexServer, elsewhere: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.intercept(_redirect("/moved/", elsewhere.files_url))  # type: ignore[arg-type]
    elsewhere.corrupt(wheel.name)

    with pytest.raises(HashMismatchError) as info:
        _fetch(_pin(wheel, f"{index_server.base_url}moved/{wheel.name}"), cache, {})

    assert info.value.expected == _sha256(wheel)
    assert info.value.exit_code == ExitCode.INTEGRITY
    assert not [p for p in cache.root.rglob("*.whl")]


def test_credentials_are_not_sent_to_another_host_on_redirect(
    dists: DistFactory, index_server: IndexServer, elsewhere: IndexServer, cache: Cache
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    # 127.0.0.1 and localhost are other hosts to a client, as an index and its CDN are.
    cdn = elsewhere.files_url.replace("127.0.0.1", "localhost")
    index_server.intercept(_redirect("/moved/", cdn))  # type: ignore[arg-type]
    index_server.intercept(_require(basic("u", "s3cret")))  # type: ignore[arg-type]
    url = f"{index_server.base_url}moved/{wheel.name}".replace("//", "//u:s3cret@", 1)

    _fetch(_pin(wheel, url), cache, {})

    assert [h.get("Authorization") for _, h in index_server.received] == [basic("u", "s3cret")]
    assert _auths(elsewhere) == [None]


def test_redirect_loop_is_a_fetch_error(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.intercept(_redirect("/loop/", f"{index_server.base_url}loop/"))  # type: ignore[arg-type]
    url = f"{index_server.base_url}loop/{wheel.name}"

    with pytest.raises(FetchError) as info:
        _fetch(_pin(wheel, url), cache, {})

    assert info.value.message == f"cannot download {url}: too many redirects"
    assert index_server.requests == [f"/loop/{wheel.name}"] * 11  # the first and ten redirects


@pytest.mark.parametrize(("retry_after", "waited"), [("1", 1.0), ("3600", 30.0)])
def test_503_with_retry_after_is_retried_after_the_wait(
    dists: DistFactory,
    index_server: IndexServer,
    cache: Cache,
    sleeps: list[float],
    retry_after: str,
    waited: float,
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    answered: list[str] = []

    def busy_once(path: str, headers: Mapping[str, str]) -> Answer | None:
        if answered:
            return None
        answered.append(path)
        return 503, {"Retry-After": retry_after}, b"busy\n"

    index_server.intercept(busy_once)

    fetched = _fetch(_pin(wheel, index_server.files_url + wheel.name), cache, {})

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert index_server.requests == [f"/files/{wheel.name}"] * 2
    assert sleeps == [waited]  # the server's wait, bounded to 30 s


def test_pip_retries_setting_bounds_the_attempts(
    dists: DistFactory, index_server: IndexServer, cache: Cache, sleeps: list[float]
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    index_server.fail("/files/", 502)
    url = index_server.files_url + wheel.name

    with pytest.raises(FetchError) as info:
        _fetch(_pin(wheel, url), cache, {"retries": "4"})

    assert info.value.message == f"cannot download {url}: HTTP 502"
    assert index_server.requests == [f"/files/{wheel.name}"] * 5
    assert sleeps == [0.5, 1.0, 2.0]  # bounded exponential back-off, none before the first


# -- refusals and the fallback to pip ------------------------------------------------------------


@pytest.fixture
def keyring_index(
    index_server: IndexServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The index wants user:s3cret; its URL (returned, also pip's PIP_INDEX_URL) names only
    the user, and the password is in a keyring that pip reads (and we do not)."""
    index_url = index_server.url.replace("//", "//user@", 1)
    monkeypatch.setenv("PIP_INDEX_URL", index_url)
    _fake_keyring(tmp_path, monkeypatch, "s3cret")
    index_server.intercept(_require(basic("user", "s3cret")))  # type: ignore[arg-type]
    return index_url


def _fake_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    """A `keyring` command on PATH that knows ``user``'s password, answering as pip's
    subprocess keyring provider asks: ``keyring [--mode=creds --output=json] get SERVICE USER``
    (pip >= 25 wants JSON, older pips the bare password)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "keyring"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  *--output=json*" get "*" user") '
        f'echo \'{{"username": "user", "password": "{password}"}}\' ;;\n'
        f'  "get "*" user") echo {password} ;;\n'
        "  *) exit 1 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PIP_KEYRING_PROVIDER", "subprocess")


def test_401_is_handed_to_pip_which_has_the_keyring(
    dists: DistFactory, index_server: IndexServer, keyring_index: str, cache: Cache
) -> None:
    index_url = keyring_index
    wheel = dists.wheel("alpha", "1.0")

    fetched = _fetch(
        _pin(wheel, index_server.files_url + wheel.name), cache, {"index-url": index_url}
    )

    assert fetched.sha256 == _sha256(wheel)
    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _agents(index_server)[0] == "us"
    assert _agents(index_server)[-1] == "pip"
    assert _auths(index_server)[0] == basic("user", "")
    assert _auths(index_server)[-1] == basic("user", "s3cret")


def test_pip_does_not_get_a_wrong_file_past_the_hash_check(
    dists: DistFactory, index_server: IndexServer, keyring_index: str, cache: Cache
) -> None:
    index_url = keyring_index
    wheel = dists.wheel("alpha", "1.0")
    pin = dataclasses.replace(_pin(wheel, index_server.files_url + wheel.name), sha256="0" * 64)

    with pytest.raises(HashMismatchError) as info:
        _fetch(pin, cache, {"index-url": index_url})

    assert info.value.message == (
        f"{wheel.name} from {pin.url} has sha256 {_sha256(wheel)}, but the index promised "
        + "0" * 64
    )
    assert info.value.exit_code == ExitCode.INTEGRITY
    assert _agents(index_server)[-1] == "pip"
    assert not [p for p in cache.root.rglob("*.whl")]


@pytest.mark.parametrize("status", [401, 403])
def test_refusal_pip_cannot_get_past_either_is_a_clear_error(
    dists: DistFactory, index_server: IndexServer, cache: Cache, status: int
) -> None:
    index_server.intercept(_require(basic("nobody", "knows"), status))  # type: ignore[arg-type]
    wheel = dists.wheel("alpha", "1.0")
    url = index_server.files_url + wheel.name

    with pytest.raises(FetchError) as info:
        _fetch(_pin(wheel, url), cache, {})

    err = info.value
    assert err.exit_code == ExitCode.NETWORK
    assert err.message.startswith(f"cannot download {url} (HTTP {status}), nor could pip: ")
    assert str(status) in err.message.split("nor could pip: ", 1)[1]
    assert _agents(index_server) == ["us", "pip"]


def test_407_from_the_proxy_is_handed_to_pip_then_a_clear_error(
    dists: DistFactory,
    index_server: IndexServer,
    proxy: Proxy,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy.log.required_auth = basic("u", "p")
    monkeypatch.setenv("PIP_PROXY", proxy.url)
    wheel = dists.wheel("alpha", "1.0")
    url = index_server.files_url + wheel.name

    with pytest.raises(FetchError) as info:
        _fetch(_pin(wheel, url), cache, {"proxy": proxy.url})

    assert info.value.message.startswith(f"cannot download {url} (HTTP 407), nor could pip: ")
    assert [(m, t) for m, t, _ in proxy.log.requests] == [("GET", url), ("GET", url)]
    assert index_server.requests == []


# -- proxies -------------------------------------------------------------------------------------


def test_https_through_the_proxy_of_pips_configuration_uses_connect(
    dists: DistFactory,
    tls_index: IndexServer,
    test_ca: CertAuthority,
    proxy: Proxy,
    cache: Cache,
) -> None:
    wheel = dists.wheel("alpha", "1.0")
    proxy.log.required_auth = basic("u", "p@ss")
    # pip's form: credentials percent-encoded in the proxy URL.
    config = {"proxy": proxy.url.replace("//", "//u:p%40ss@"), "cert": str(test_ca.ca_cert)}

    fetched = _fetch(_pin(wheel, tls_index.files_url + wheel.name), cache, config)

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert proxy.log.requests == [("CONNECT", f"127.0.0.1:{tls_index.port}", basic("u", "p@ss"))]
    assert _agents(tls_index) == ["us"]


def test_pips_proxy_setting_is_used_for_every_host_as_pip_does(
    dists: DistFactory,
    tls_index: IndexServer,
    test_ca: CertAuthority,
    proxy: Proxy,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # pip's own `proxy` makes it ignore the environment's proxy variables, NO_PROXY too.
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    wheel = dists.wheel("alpha", "1.0")
    config = {"proxy": proxy.url, "cert": str(test_ca.ca_cert)}

    fetched = _fetch(_pin(wheel, tls_index.files_url + wheel.name), cache, config)

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert proxy.log.requests == [("CONNECT", f"127.0.0.1:{tls_index.port}", None)]


def test_no_proxy_env_setting_ignores_the_proxy_variables(
    dists: DistFactory,
    index_server: IndexServer,
    proxy: Proxy,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    wheel = dists.wheel("alpha", "1.0")

    _fetch(_pin(wheel, index_server.files_url + wheel.name), cache, {"no-proxy-env": "1"})

    assert proxy.log.requests == []
    assert index_server.requests == [f"/files/{wheel.name}"]


@pytest.mark.parametrize("no_proxy", [None, "example.invalid,127.0.0.1"])
def test_https_proxy_variable_is_used_unless_no_proxy_names_the_host(
    dists: DistFactory,
    tls_index: IndexServer,
    test_ca: CertAuthority,
    proxy: Proxy,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str | None,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    if no_proxy is not None:
        monkeypatch.setenv("NO_PROXY", no_proxy)
    wheel = dists.wheel("alpha", "1.0")

    fetched = _fetch(
        _pin(wheel, tls_index.files_url + wheel.name), cache, {"cert": str(test_ca.ca_cert)}
    )

    assert fetched.path.read_bytes() == wheel.read_bytes()
    tunnelled = [("CONNECT", f"127.0.0.1:{tls_index.port}", None)]
    assert proxy.log.requests == ([] if no_proxy else tunnelled)
    assert _agents(tls_index) == ["us"]


def test_http_proxy_variable_is_used_for_http(
    dists: DistFactory,
    index_server: IndexServer,
    proxy: Proxy,
    cache: Cache,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    wheel = dists.wheel("alpha", "1.0")
    url = index_server.files_url + wheel.name

    _fetch(_pin(wheel, url), cache, {})

    assert proxy.log.requests == [("GET", url, None)]
    assert index_server.requests == [f"/files/{wheel.name}"]


# -- credentials ---------------------------------------------------------------------------------


def test_netrc_named_by_the_netrc_variable_is_used(
    dists: DistFactory,
    index_server: IndexServer,
    cache: Cache,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1\n  login u\n  password s3cret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    index_server.intercept(_require(basic("u", "s3cret")))  # type: ignore[arg-type]
    wheel = dists.wheel("alpha", "1.0")

    fetched = _fetch(_pin(wheel, index_server.files_url + wheel.name), cache, {})

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _auths(index_server) == [basic("u", "s3cret")]
    assert _agents(index_server) == ["us"]


def test_credentials_of_the_index_url_are_sent_for_its_files(
    dists: DistFactory, index_server: IndexServer, cache: Cache
) -> None:
    # pip's form: a reserved character of the password percent-encoded.
    index_url = index_server.url.replace("//", "//u:p%40ss@", 1)
    index_server.intercept(_require(basic("u", "p@ss")))  # type: ignore[arg-type]
    wheel = dists.wheel("alpha", "1.0")

    fetched = _fetch(
        _pin(wheel, index_server.files_url + wheel.name), cache, {"index-url": index_url}
    )

    assert fetched.path.read_bytes() == wheel.read_bytes()
    assert _auths(index_server) == [basic("u", "p@ss")]


def test_credentials_never_reach_errors_or_logs(
    dists: DistFactory,
    index_server: IndexServer,
    cache: Cache,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wheel = dists.wheel("alpha", "1.0")
    index_server.fail("/files/", 404)
    plain = index_server.files_url + wheel.name
    url = plain.replace("//", "//u:p%40ss@", 1)

    with pytest.raises(FetchError) as info:
        _fetch(
            _pin(wheel, url), cache, {"index-url": index_server.url.replace("//", "//u:p%40ss@")}
        )

    assert info.value.message == f"cannot download {plain}: HTTP 404"
    assert info.value.url == plain
    assert _auths(index_server) == [basic("u", "p@ss")]
    for text in (caplog.text, str(info.value), repr(info.value.hint)):
        assert "p%40ss" not in text
        assert "p@ss" not in text


@pytest.mark.parametrize(
    "requirements",
    ["alpha==1.0\nbeta==2.0\n", "alpha>=1\n"],
    ids=["pinned-fast-path", "pip-resolves"],
)
def test_index_credentials_never_reach_the_wheelhouse_or_the_output(
    dists: DistFactory,
    index_server: IndexServer,
    tmp_path: Path,
    cli: Cli,
    requirements: str,
) -> None:
    """A build from an index that wants Basic credentials (given in the index URL, as pip
    takes them): the pages and files are fetched with them, and no file of the wheelhouse
    nor anything printed holds them."""
    dists.wheel("alpha", "1.0", requires=["beta"])
    dists.wheel("beta", "2.0")
    index_server.intercept(_require(basic("u", "p@ss")))  # type: ignore[arg-type]
    index_url = index_server.url.replace("//", "//u:p%40ss@", 1)
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(requirements)
    out = tmp_path / "wh"

    built = cli("build", "--index-url", index_url, "-o", out, "-r", reqs, "--json")

    assert built.exit_code == 0, built.stderr
    assert sorted(p.name for p in out.glob("*.whl")) == [
        "alpha-1.0-py3-none-any.whl",
        "beta-2.0-py3-none-any.whl",
    ]
    assert set(_auths(index_server)) == {basic("u", "p@ss")}
    for text in (built.stdout, built.stderr):
        assert "p%40ss" not in text and "p@ss" not in text
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"p%40ss" not in data and b"p@ss" not in data, path
