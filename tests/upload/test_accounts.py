"""Accounts and rights, tried from outside: API tokens (and one made for another index), a
user without the upload right, reads that need an account, the configuration file, and the
`wheelhouse users` commands."""

from __future__ import annotations

import stat
import sys
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from tests.support.credentials import PASSWORD, USER, basic
from tests.support.dists import make_wheel
from tests.support.httpget import Response, get
from tests.support.upload import (
    StartServe,
    encode_form,
    make_token,
    post,
    snapshot,
    upload_fields,
    users_cli,
)
from wheelhouse._base._pip import offline_env
from wheelhouse._base._subprocess import run


def write_config(tmp_path: Path, users_file: Path, **extra: str) -> Path:
    lines = [
        f'users = "{users_file.name}"',
        f"anonymous-read = {extra.get('anonymous', 'true')}",
        "[[index]]",
        'name = "team"',
        'kind = "private"',
        'path = "private"',
    ]
    if "upload" in extra:
        lines.append(f"upload = {extra['upload']}")
    config = tmp_path / "team.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


@pytest.fixture
def bob(users_file: Path) -> str:
    result = users_cli("add", "bob", "--users", users_file, "--password-stdin", stdin="bobpw\n")
    assert result.returncode == 0, result.stderr
    return "bobpw"


def test_an_api_token_uploads_as_its_user(
    tmp_path: Path, users_file: Path, start_serve: StartServe
) -> None:
    server = start_serve("--config", write_config(tmp_path, users_file))
    token = make_token(users_file, USER, "team")
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    status, _, text = post(
        server, encode_form(upload_fields(wheel)), auth=basic("__token__", token)
    )
    assert (status, text) == (200, "OK\n")
    assert (tmp_path / "private" / wheel.name).read_bytes() == wheel.read_bytes()
    assert server.logged(f'"POST /" 200 {USER}: OK'), server.log
    assert token not in server.log


def test_a_token_for_another_index_is_403_and_stores_nothing(
    tmp_path: Path, users_file: Path, start_serve: StartServe
) -> None:
    server = start_serve("--config", write_config(tmp_path, users_file))
    token = make_token(users_file, USER, "staging")
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    before = snapshot(tmp_path / "private")
    status, _, text = post(
        server, encode_form(upload_fields(wheel)), auth=basic("__token__", token)
    )
    assert (status, text) == (403, "this token is for the index 'staging', not 'team'\n")
    assert snapshot(tmp_path / "private") == before


def test_a_made_up_token_is_401(tmp_path: Path, users_file: Path, start_serve: StartServe) -> None:
    server = start_serve("--config", write_config(tmp_path, users_file))
    make_token(users_file, USER, "team")
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    body = encode_form(upload_fields(wheel))
    status, _, text = post(server, body, auth=basic("__token__", "wht_" + "A" * 43))
    assert (status, text) == (401, "wrong user name or password\n")


def test_a_user_without_the_upload_right_is_403(
    tmp_path: Path, users_file: Path, bob: str, start_serve: StartServe
) -> None:
    server = start_serve("--config", write_config(tmp_path, users_file, upload='["alice"]'))
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    body = encode_form(upload_fields(wheel))
    before = snapshot(tmp_path / "private")
    status, _, text = post(server, body, auth=basic("bob", bob))
    assert (status, text) == (403, "user 'bob' may not upload to the index 'team'\n")
    assert snapshot(tmp_path / "private") == before
    status, _, text = post(server, body, auth=basic())
    assert (status, text) == (200, "OK\n")


def _get(url: str, auth: str | None = None) -> Response:
    return get(url, **({} if auth is None else {"Authorization": auth}))


@pytest.mark.slow
def test_without_anonymous_read_pages_need_an_account_and_pip_gives_it(
    tmp_path: Path, users_file: Path, start_serve: StartServe, make_venv: Any
) -> None:
    server = start_serve(
        tmp_path / "private", "--upload", "--users", users_file, "--no-anonymous-read"
    )
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    assert post(server, encode_form(upload_fields(wheel)), auth=basic())[0] == 200
    status, headers, body = _get(server.url)
    assert (status, body) == (401, b"authentication required: give a user and password\n")
    assert headers["www-authenticate"] == 'Basic realm="wheelhouse"'
    assert _get(f"{server.base}{wheel.name}", basic(USER, "wrong"))[0] == 401
    assert _get(f"{server.base}{wheel.name}", basic())[2] == wheel.read_bytes()

    python = make_venv("pip", with_pip=False)
    netrc = tmp_path / "netrc"
    netrc.write_text(f'machine 127.0.0.1 login {USER} password "{PASSWORD}"\n')
    netrc.chmod(0o600)
    argv = [sys.executable, "-m", "pip", "--python", python, "install", "--no-cache-dir"]
    result = run(
        [*argv, "--index-url", server.url, "team-pkg"], env={**offline_env(), "NETRC": str(netrc)}
    )
    assert result.ok, result.stdout + result.stderr + server.log
    assert PASSWORD not in server.log


def test_users_commands_keep_only_bcrypt_hashes_readable_by_the_owner(tmp_path: Path) -> None:
    users = tmp_path / "users.htpasswd"
    users.write_text("# pypiserver's file\nold:$apr1$abc$def\n")
    added = users_cli("add", "carol", "--users", users, "--password-stdin", stdin="s3cret pw\n")
    assert (added.returncode, added.stderr) == (0, f"added carol in {users}\n")
    text = users.read_text()
    assert "s3cret" not in text
    [line] = [line for line in text.splitlines() if line.startswith("carol:")]
    assert bcrypt.checkpw(b"s3cret pw", line.split(":", 1)[1].encode())
    assert stat.S_IMODE(users.stat().st_mode) == 0o600
    listed = users_cli("list", "--users", users)
    assert listed.stdout == "carol\n"  # the $apr1$ line is not a usable account
    assert "user 'old' has no bcrypt hash" in listed.stderr
    removed = users_cli("remove", "carol", "--users", users)
    assert removed.returncode == 0
    assert "carol" not in users.read_text()
    assert "# pypiserver's file" in users.read_text()
    missing = users_cli("remove", "carol", "--users", users)
    assert missing.returncode == 2
    assert f"error: no user 'carol' in {str(users)!r}" in missing.stderr
    # Piped without --password-stdin: the first line, as with it, and no prompt's warnings.
    piped = users_cli("add", "dave", "--users", users, stdin="pw of dave\npw of dave\n")
    assert (piped.returncode, piped.stdout, piped.stderr) == (0, "", f"added dave in {users}\n")
    [line] = [line for line in users.read_text().splitlines() if line.startswith("dave:")]
    assert bcrypt.checkpw(b"pw of dave", line.split(":", 1)[1].encode())


def test_an_htpasswd_y_entry_as_htpasswd_B_writes_it_is_accepted(
    tmp_path: Path, start_serve: StartServe
) -> None:
    users = tmp_path / "users.htpasswd"
    hashed = bcrypt.hashpw(b"apache pw", bcrypt.gensalt(rounds=5)).decode()
    users.write_text(f"dave:{hashed.replace('$2b$', '$2y$', 1)}\n")
    server = start_serve(tmp_path / "private", "--upload", "--users", users)
    wheel = make_wheel(tmp_path / "dists", "team-pkg", "1.0")
    status, _, text = post(
        server, encode_form(upload_fields(wheel)), auth=basic("dave", "apache pw")
    )
    assert (status, text) == (200, "OK\n")


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ("users = 1\n", "it names no index ([[index]] tables)"),
        (
            '[[index]]\nname = "a"\nkind = "mirror"\n',
            "the index 'a' has kind 'mirror' (not 'private' or 'upstream')",
        ),
        (
            '[[index]]\nname = "a"\nkind = "upstream"\nurl = "file:///etc"\n',
            "the upstream 'a' has no http(s) url",
        ),
        (
            '[[index]]\nname = "a"\nkind = "private"\npath = "p"\n',
            "'users' must be a non-empty string",
        ),
        (
            'users = "u"\n[[index]]\nname = "simple"\nkind = "private"\npath = "p"\n',
            "the private index's name 'simple' is not a plain URL segment (lower-case letters, "
            "digits, '.', '_', '-'), or is one of ['files', 'legacy', 'simple', 'v1']",
        ),
        (
            'users = "u"\n[[index]]\nname = "Team/x"\nkind = "private"\npath = "p"\n',
            "the private index's name 'Team/x' is not a plain URL segment",
        ),
        (
            'users = "u"\n[[index]]\nname = "a"\nkind = "private"\npath = "p"\n'
            '[[index]]\nname = "b"\nkind = "private"\npath = "./p"\n',
            "the index 'b' has the path of another private index",
        ),
        (
            'users = "u"\n[[index]]\nname = "a"\nkind = "private"\npath = "p"\n'
            'anonymous-read = "no"\n',
            "'anonymous-read' must be true or false",
        ),
    ],
)
def test_a_wrong_configuration_is_a_usage_error(
    tmp_path: Path, cli: Any, content: str, line: str
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    result = cli("serve", "--config", config)
    assert result.exit_code == 2
    assert f"error: the configuration {str(config)!r} is wrong: {line}" in result.stderr
