import json
import os
import time

import pytest
from pydantic import BaseModel, ConfigDict

from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import (
    FileTooLarge,
    InputNotFound,
    InputTooLarge,
    atomic_open,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    load_document,
    load_model,
    open_input,
    read_bytes_limited,
    read_input,
    read_text_input,
)
from tw_gates.core.redact import REDACTOR


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.json"
    atomic_write_json(target, {"a": 1})
    atomic_write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]
    assert oct(target.stat().st_mode & 0o777) != "0o600"  # not mkstemp's private mode


def test_atomic_write_failure_keeps_old_content(tmp_path, monkeypatch):
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_write_redacts_known_secrets(tmp_path):
    REDACTOR.register("registered-secret-value-42")
    atomic_write_text(tmp_path / "x", "token is registered-secret-value-42 and ghp_" + "a" * 36)
    text = (tmp_path / "x").read_text()
    assert "registered-secret-value-42" not in text and "ghp_" not in text and "[REDACTED]" in text


def test_read_limited_refuses_before_reading(tmp_path):
    big = tmp_path / "big"
    big.write_bytes(b"x" * 1000)
    assert read_bytes_limited(big, 1000) == b"x" * 1000
    with pytest.raises(FileTooLarge, match="1000 bytes"):
        read_bytes_limited(big, 999)


# ---------------------------------------------------------------- atomic_open


def test_atomic_open_streams_into_place_only_when_the_block_ends(tmp_path):
    target = tmp_path / "sub" / "out.jsonl"
    atomic_write_bytes(target, b"old\n")
    with atomic_open(target) as handle:
        handle.write(b"line 1\n")
        handle.write(b"line 2\n")
        assert target.read_bytes() == b"old\n"  # a reader meanwhile sees the old file whole
    assert target.read_bytes() == b"line 1\nline 2\n"
    assert [p.name for p in target.parent.iterdir()] == ["out.jsonl"]
    assert oct(target.stat().st_mode & 0o777) != "0o600"  # not mkstemp's private mode


def test_atomic_open_exception_keeps_old_content_and_removes_temp(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(RuntimeError, match="judge crashed"), atomic_open(target) as handle:
        handle.write(b"half")
        raise RuntimeError("judge crashed")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_open_failed_replace_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"), atomic_open(target) as handle:
        handle.write(b"new")
    assert list(tmp_path.iterdir()) == []


def test_atomic_open_text_mode_and_explicit_permissions(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_open(target, "w", permissions=0o640) as handle:
        handle.write("caf\u00e9\n")
    assert target.read_bytes() == "caf\u00e9\n".encode("utf-8")
    assert target.stat().st_mode & 0o777 == 0o640
    atomic_write_bytes(target, b"x", mode=0o600)
    assert target.stat().st_mode & 0o777 == 0o600


def test_atomic_open_refuses_other_modes(tmp_path):
    with pytest.raises(ValueError, match="'wb' or 'w'"), atomic_open(tmp_path / "x", "ab"):
        pass
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- files a user named


def test_read_input_returns_the_bytes(tmp_path):
    path = tmp_path / "report.json"
    path.write_bytes(b"\x00\xff{}")
    assert read_input(path, "audit report", max_bytes=4) == b"\x00\xff{}"


def test_read_input_missing_file_is_one_line_naming_it(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(InputNotFound) as caught:
        read_input(path, "audit report", max_bytes=10)
    assert isinstance(caught.value, UsageError) and caught.value.exit_code == 1
    assert str(caught.value) == f"audit report not found: {path}"


def test_read_input_directory(tmp_path):
    with pytest.raises(UsageError) as caught:
        read_input(tmp_path, "registry", max_bytes=10)
    assert str(caught.value) == f"registry is a directory, not a file: {tmp_path}"


def test_read_input_too_large_gives_both_numbers_and_reads_nothing_more(tmp_path):
    path = tmp_path / "big.yml"
    path.write_bytes(b"x" * 11)
    with pytest.raises(InputTooLarge) as caught:
        read_input(path, "values file", max_bytes=10)
    assert str(caught.value) == f"values file {path} is 11 bytes, larger than the limit of 10 bytes"
    assert (caught.value.size, caught.value.limit) == (11, 10)
    assert isinstance(caught.value, UsageError)


def test_read_input_other_os_error_gives_strerror(tmp_path):
    # (tests may run as root, where permissions do not deny; ENOTDIR is the same path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UsageError) as caught:
        read_input(blocker / "child.json", "corpus file", max_bytes=10)
    assert str(caught.value) == f"cannot read corpus file {blocker / 'child.json'}: Not a directory"


def test_open_input_streams_with_the_same_errors(tmp_path):
    path = tmp_path / "accepted.jsonl"
    path.write_bytes(b"a\nb\n")
    with open_input(path, "accepted artifacts") as handle:
        assert handle.readline() == b"a\n"
    with pytest.raises(InputNotFound, match=r"^accepted artifacts not found: "):
        open_input(tmp_path / "none.jsonl", "accepted artifacts")


def test_read_text_input_is_strict_utf8_and_names_the_byte(tmp_path):
    path = tmp_path / "template.md"
    path.write_bytes("h\u00e9".encode("utf-8"))
    assert read_text_input(path, "template", max_bytes=100) == "h\u00e9"
    path.write_bytes(b"ok\n\xff")
    with pytest.raises(UsageError) as caught:
        read_text_input(path, "template", max_bytes=100)
    assert str(caught.value) == f"template {path} is not UTF-8 text: invalid start byte at byte 3"


def test_load_document_picks_json_by_suffix_and_yaml_otherwise(tmp_path):
    (tmp_path / "a.json").write_text('{"n": 1}')
    (tmp_path / "a.yml").write_text("n: 1\nlist: [x]\n")
    (tmp_path / "empty.yaml").write_text("")
    assert load_document(tmp_path / "a.json", "metrics file", max_bytes=100) == {"n": 1}
    assert load_document(tmp_path / "a.yml", "metrics file", max_bytes=100) == {"n": 1, "list": ["x"]}
    assert load_document(tmp_path / "empty.yaml", "metrics file", max_bytes=100) is None


def test_load_document_allows_a_byte_order_mark(tmp_path):
    (tmp_path / "a.json").write_bytes(b'\xef\xbb\xbf{"n": 1}')
    (tmp_path / "a.yml").write_bytes(b"\xef\xbb\xbfn: 1\n")
    assert load_document(tmp_path / "a.json", "metrics file", max_bytes=100) == {"n": 1}
    assert load_document(tmp_path / "a.yml", "metrics file", max_bytes=100) == {"n": 1}


def test_load_document_json_error_has_line_and_column(tmp_path):
    path = tmp_path / "manifest.json"
    path.write_text('{\n  "files": [1,\n}')
    with pytest.raises(UsageError) as caught:
        load_document(path, "corpus file", max_bytes=100)
    assert str(caught.value) == f"corpus file {path} is not valid JSON: Expecting value at line 3 column 1"


def test_load_document_fmt_json_refuses_yaml_whatever_the_name(tmp_path):
    path = tmp_path / "baseline.sig"
    path.write_text("a: 1\n")
    with pytest.raises(UsageError, match=r"is not valid JSON: Expecting value at line 1 column 1$"):
        load_document(path, "baseline", max_bytes=100, fmt="json")
    assert load_document(path, "baseline", max_bytes=100, fmt="yaml") == {"a": 1}


def test_load_document_yaml_error_is_one_line_with_line_and_column(tmp_path):
    path = tmp_path / "registry.yml"
    path.write_text("consumers:\n  - repo: a/b\n    code_paths: [x\n")
    with pytest.raises(UsageError) as caught:
        load_document(path, "registry", max_bytes=1000)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"registry {path} is not valid YAML: ")
    assert message.endswith("at line 4 column 1")


def test_load_document_too_deep_is_one_line(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UsageError, match="nested too deeply"):
        load_document(path, "corpus file", max_bytes=1_000_000)


class _Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    size: int = 0


def test_load_model_validates(tmp_path):
    path = tmp_path / "thing.yml"
    path.write_text("name: x\nsize: 3\n")
    assert load_model(path, _Thing, "thing file", max_bytes=100) == _Thing(name="x", size=3)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("thing.yml", "# nothing yet\n", "thing file {path} is empty"),
        ("thing.yml", "- a\n- b\n", "thing file {path} must hold a mapping of fields, not a list"),
        (
            "thing.json",
            '{"size": "big", "colour": 1}',
            "invalid thing file {path}: size: Input should be a valid integer, "
            "unable to parse string as an integer; colour: Extra inputs are not "
            "permitted",
        ),
    ],
    ids=["empty", "not-a-mapping", "invalid"],
)
def test_load_model_refusals_are_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(UsageError) as caught:
        load_model(path, _Thing, "thing file", max_bytes=100)
    assert str(caught.value) == message.format(path=path)


def test_load_model_allow_empty_reads_an_empty_file_as_all_defaults(tmp_path):
    path = tmp_path / "thing.yml"
    path.write_text("# nothing yet\n")
    assert load_model(path, _Thing, "thing file", max_bytes=100, allow_empty=True) == _Thing()


def test_load_model_passes_file_errors_through(tmp_path):
    with pytest.raises(InputNotFound, match=r"^thing file not found: "):
        load_model(tmp_path / "none.yml", _Thing, "thing file", max_bytes=100)


# ---------------------------------------------------------------- no-follow reading (issue 14.1)


@pytest.fixture
def hostile_folder(tmp_path):
    """A folder someone else filled: a regular file, links to secrets, a FIFO, a link to a folder."""
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "ok.json").write_text('{"a": 1}')
    (folder / "sub" / "deep.json").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("GITHUB_TOKEN=ghp_" + "s" * 36)
    (folder / "environ.json").symlink_to("/proc/self/environ")
    (folder / "secret.json").symlink_to(secret)
    (folder / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(folder / "fifo.json")
    return folder


def test_read_nofollow_refuses_links_fifos_devices_and_folders_without_blocking(hostile_folder):
    from tw_gates.core.fsio import NotARegularFile, SymlinkRefused, read_nofollow

    assert read_nofollow(hostile_folder / "ok.json", "artifact", max_bytes=100) == b'{"a": 1}'
    for name in ("environ.json", "secret.json"):
        with pytest.raises(SymlinkRefused, match=rf"artifact .*{name} is a symbolic link: not followed"):
            read_nofollow(hostile_folder / name, "artifact", max_bytes=1 << 20)
    started = time.monotonic()
    with pytest.raises(NotARegularFile, match="is a FIFO, not a regular file"):
        read_nofollow(hostile_folder / "fifo.json", "artifact", max_bytes=100)
    assert time.monotonic() - started < 1
    with pytest.raises(NotARegularFile, match="is a character device"):
        read_nofollow("/dev/zero", "artifact", max_bytes=100)
    with pytest.raises(NotARegularFile, match="is a directory"):
        read_nofollow(hostile_folder / "sub", "artifact", max_bytes=100)
    with pytest.raises(UsageError, match="larger than the limit of 3 bytes"):
        read_nofollow(hostile_folder / "ok.json", "artifact", max_bytes=3)
    with pytest.raises(UsageError, match="artifact not found"):
        read_nofollow(hostile_folder / "nope.json", "artifact", max_bytes=3)


def test_regular_files_under_walks_without_following_links(hostile_folder):
    from tw_gates.core.fsio import regular_files_under

    found, skipped = regular_files_under(hostile_folder, (".json",))
    assert found == [hostile_folder / "ok.json", hostile_folder / "sub" / "deep.json"]
    assert {s.split(": ", 1)[1] for s in skipped} == {
        "a symbolic link, not read",
        "a FIFO, not read",
        "a symbolic link to a folder, not followed",
    }
    assert len(skipped) == 4


def test_user_named_inputs_never_block_on_a_fifo(tmp_path):
    fifo = tmp_path / "registry.yml"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"registry .* is a FIFO, not a regular file"):
        read_input(fifo, "registry", max_bytes=100)
    assert time.monotonic() - started < 1
    link = tmp_path / "link.yml"
    link.symlink_to("/proc/self/environ")
    with pytest.raises(UsageError, match="is a symbolic link: not followed"):
        read_input(link, "registry", max_bytes=1 << 20, follow_symlinks=False)
