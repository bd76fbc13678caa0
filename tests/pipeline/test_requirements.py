"""requirements.read_inputs: pip's file syntax, nested files, hashes, recorded inputs, bad input."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.support.files import sha256_of as _sha256
from wheelhouse.errors import ExitCode, RequirementsError
from wheelhouse.inputs.requirements import read_inputs

SHA_A = "a" * 64
SHA_B = "B" * 64  # pip accepts upper case; wheelhouse compares lower case
SHA_C = "c" * 64


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_nested_requirements_and_constraints_keep_their_own_file_and_line(
    tmp_path: Path,
) -> None:
    inner = _write(tmp_path / "sub" / "inner.txt", "# inner\n\ngamma>=1\n")
    cons = _write(tmp_path / "sub" / "cons.txt", "delta<3\n")
    top = _write(
        tmp_path / "top.txt",
        "alpha\n-r sub/inner.txt\n-c sub/cons.txt\nbeta==2.0\n",
    )

    inputs = read_inputs((top,), ())

    got = [(ln.requirement, ln.path, ln.line, ln.constraint) for ln in inputs.lines]
    assert got == [
        ("alpha", top, 1, False),
        ("gamma>=1", inner.absolute(), 3, False),
        ("delta<3", cons.absolute(), 1, True),
        ("beta==2.0", top, 4, False),
    ]
    assert inputs.requirements == (top,)
    assert inputs.constraints == ()


def test_constraints_given_on_the_command_line_are_constraint_lines(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.in", "alpha\n")
    cons = _write(tmp_path / "constraints.txt", "alpha<2\nunrelated==1.0\n")

    inputs = read_inputs((req,), (cons,))

    assert [(ln.requirement, ln.constraint) for ln in inputs.lines] == [
        ("alpha", False),
        ("alpha<2", True),
        ("unrelated==1.0", True),
    ]
    assert inputs.constraints == (cons,)


def test_continuation_lines_are_joined_and_numbered_by_their_first_line(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "requirements.txt",
        "# pinned\n"
        "alpha==1.0 \\\n"
        f"    --hash=sha256:{SHA_A} \\\n"
        f"    --hash=sha256:{SHA_C}\n"
        "beta \\\n"
        ">=2 \\\n"
        "; python_version >= '3'\n",
    )

    inputs = read_inputs((req,), ())

    # pip keeps the spaces before the joined options; what matters is the text and the line.
    assert [(ln.requirement.strip(), ln.line) for ln in inputs.lines] == [
        ("alpha==1.0", 2),
        ("beta >=2 ; python_version >= '3'", 5),
    ]
    assert inputs.lines[0].hashes == {"sha256": (SHA_A, SHA_C)}


def test_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "requirements.txt",
        "# a comment\n\n   \nalpha>=1  # why we need it\n  # indented comment\nbeta\n",
    )

    inputs = read_inputs((req,), ())

    assert [(ln.requirement, ln.line) for ln in inputs.lines] == [("alpha>=1", 4), ("beta", 6)]


def test_markers_and_extras_reach_the_resolver_intact(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "requirements.txt",
        'Beta[Fast,extra_two]>=2,<3; sys_platform == "linux" and python_version >= "3.8"\n'
        "gamma ; python_version < '3'\n",
    )

    inputs = read_inputs((req,), ())

    first = Requirement(inputs.lines[0].requirement)
    assert first.name == "Beta"
    assert first.extras == {"Fast", "extra_two"}
    assert str(first.specifier) == "<3,>=2"
    assert str(first.marker) == 'sys_platform == "linux" and python_version >= "3.8"'
    second = Requirement(inputs.lines[1].requirement)
    assert second.name == "gamma"
    assert str(second.marker) == 'python_version < "3"'


def test_hashes_are_collected_per_canonical_name_across_files(tmp_path: Path) -> None:
    _write(tmp_path / "inner.txt", f"foo-bar==1.0 --hash=sha256:{SHA_C}\n")
    req = _write(
        tmp_path / "requirements.txt",
        f"Foo.Bar==1.0 --hash=sha256:{SHA_A} --hash=sha256:{SHA_B}\n"
        "-r inner.txt\n"
        f"other_thing==2 --hash=sha256:{SHA_A}\n"
        "unhashed\n",
    )

    inputs = read_inputs((req,), ())

    assert inputs.hashes == {
        "foo-bar": frozenset({SHA_A, SHA_B.lower(), SHA_C}),
        "other-thing": frozenset({SHA_A}),
    }


def test_input_files_are_recorded_once_each_with_kind_and_sha256(tmp_path: Path) -> None:
    inner = _write(tmp_path / "inner.txt", "gamma\n")
    nested_cons = _write(tmp_path / "nested-cons.txt", "gamma<2\n")
    top = _write(tmp_path / "top.txt", "alpha\n-r inner.txt\n-c nested-cons.txt\n-r inner.txt\n")
    cons = _write(tmp_path / "cons.txt", "alpha<9\n")

    inputs = read_inputs((top,), (cons,))

    recorded = [(f.path, f.sha256, f.kind) for f in inputs.files]
    assert recorded == [
        (str(top.absolute()), _sha256(top), "requirements"),
        (str(cons.absolute()), _sha256(cons), "constraints"),
        (str(inner.absolute()), _sha256(inner), "requirements"),
        (str(nested_cons.absolute()), _sha256(nested_cons), "constraints"),
    ]


def test_a_relative_path_is_recorded_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "requirements.txt", "alpha\n")
    monkeypatch.chdir(tmp_path)

    inputs = read_inputs((Path("requirements.txt"),), ())

    assert [f.path for f in inputs.files] == [str(tmp_path / "requirements.txt")]


def test_archive_paths_and_direct_urls_are_accepted(tmp_path: Path) -> None:
    req = _write(
        tmp_path / "requirements.txt",
        "./dist/alpha-1.0-py3-none-any.whl\n"
        "beta @ https://files.example/beta-1.0.tar.gz\n"
        "https://files.example/gamma-1.0.zip\n",
    )

    inputs = read_inputs((req,), ())

    assert len(inputs.lines) == 3


# -- bad input -------------------------------------------------------------------------------


def _fails(requirements: tuple[Path, ...], constraints: tuple[Path, ...] = ()) -> RequirementsError:
    with pytest.raises(RequirementsError) as info:
        read_inputs(requirements, constraints)
    assert info.value.exit_code == ExitCode.INPUT
    return info.value


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    err = _fails((missing,))
    assert err.message == f"requirements file {str(missing)!r} does not exist"
    assert err.path == missing


def test_missing_constraints_file(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n")
    missing = tmp_path / "constraints.txt"
    err = _fails((req,), (missing,))
    assert err.message == f"constraints file {str(missing)!r} does not exist"


def test_directory(tmp_path: Path) -> None:
    err = _fails((tmp_path,))
    assert err.message == f"requirements file {str(tmp_path)!r} is a directory"


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root reads a chmod 000 file anyway; test_directory covers an unreadable path",
)
def test_unreadable_file(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n")
    req.chmod(0)
    try:
        err = _fails((req,))
    finally:
        req.chmod(0o644)
    assert err.message == f"requirements file {str(req)!r} cannot be read (permission denied)"


def test_missing_nested_file_names_it(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n-r other.txt\n")
    err = _fails((req,))
    assert err.message.startswith(f"{req}: Could not open requirements file: ")
    assert str(tmp_path / "other.txt") in err.message


def test_invalid_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    _write(tmp_path / "inner.txt", "# comment\n\nnot a requirement!\n")
    req = _write(tmp_path / "requirements.txt", "alpha\n-r inner.txt\n")
    err = _fails((req,))
    inner = (tmp_path / "inner.txt").absolute()
    assert err.message.startswith(f"{inner}:3: invalid requirement 'not a requirement!': ")
    assert err.path == inner
    assert err.line == 3


def test_bad_option_line_is_an_input_error(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n--no-such-option\n")
    err = _fails((req,))
    assert err.message.startswith(f"{req}")
    assert "--no-such-option" in err.message
    assert "no such option" in err.message


def test_option_without_its_argument_is_an_input_error(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n--index-url\n")
    err = _fails((req,))
    assert "--index-url option requires 1 argument" in err.message


def test_bad_option_line_is_reported_with_file_and_line(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n--no-such-option\n")
    err = _fails((req,))
    assert err.message.startswith(f"{req}:2: ")
    assert err.line == 2


def test_bad_option_line_prints_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n--no-such-option\n")
    _fails((req,))
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", "")


def test_editable_is_refused(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n-e ./src/project\n")
    err = _fails((req,))
    assert err.message == (
        f"{req}:2: editable requirement './src/project' cannot go in a wheelhouse"
    )
    assert err.line == 2


@pytest.mark.parametrize("text", ["", "\n\n", "# only comments\n   # and more\n"])
def test_no_requirement_at_all(tmp_path: Path, text: str) -> None:
    req = _write(tmp_path / "requirements.txt", text)
    err = _fails((req,))
    assert err.message == f"no requirements in {str(req)!r}"


def test_constraints_alone_are_not_requirements(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "-c constraints.txt\n")
    _write(tmp_path / "constraints.txt", "alpha==1.0\n")
    err = _fails((req,))
    assert err.message == f"no requirements in {str(req)!r}"


def test_self_inclusion_is_an_input_error(tmp_path: Path) -> None:
    req = _write(tmp_path / "requirements.txt", "alpha\n-r requirements.txt\n")
    err = _fails((req,))
    assert "recursively references itself" in err.message


def test_file_that_is_not_utf8_is_an_input_error(tmp_path: Path) -> None:
    req = tmp_path / "requirements.txt"
    req.write_bytes(b"alpha\nbeta  # caf\xe9\n")
    err = _fails((req,))
    assert err.message.startswith(f"{req}: ")


PLAIN_FILES = [
    "requests==2.32.3\nclick>=8,<9\n",
    "# pip-compile\nalembic==1.20.1\n    # via -r requirements.in\nuvicorn[standard]==0.54.0\n",
    "colorama==0.4.6 ; sys_platform == 'win32'  # only there\r\nattrs\n\n",
    "Foo.Bar_baz [Extra1, extra-2] ~= 1.4.2\n",
]
NOT_PLAIN_FILES = [
    "requests==2.32.3 --hash=sha256:" + "a" * 64 + "\n",
    "requests==2.32.3 \\\n    --hash=sha256:" + "a" * 64 + "\n",
    "-r other.txt\n",
    "--index-url https://example.invalid/simple\nrequests\n",
    "pkg @ https://example.invalid/pkg-1.0.tar.gz\n",
    "./local/path\n",
    "requests==${VERSION}\n",
    "-e .\n",
    "requests=2\n",
]


@pytest.mark.parametrize("text", PLAIN_FILES)
def test_plain_files_are_read_as_pips_parser_reads_them(tmp_path: Path, text: str) -> None:
    from wheelhouse._base._pip import _NoSession, _read_plain, _read_requirement_file

    path = _write(tmp_path / "requirements.txt", text)
    plain = _read_plain(path, constraint=False)
    assert plain is not None
    # The same requirement lines, and no option line the fast read could have missed.
    assert _read_requirement_file(path, False, _NoSession()) == (plain, [])


@pytest.mark.parametrize("text", NOT_PLAIN_FILES)
def test_anything_else_goes_to_pips_parser(tmp_path: Path, text: str) -> None:
    from wheelhouse._base._pip import _read_plain

    (tmp_path / "other.txt").write_text("six\n", encoding="utf-8")
    assert _read_plain(_write(tmp_path / "requirements.txt", text), constraint=False) is None
