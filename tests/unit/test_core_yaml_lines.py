"""core.yaml_lines: YAML from a repository, read with bounds (size, depth, aliases)."""

from __future__ import annotations

import time

import pytest

from tw_gates.core import yaml_safe
from tw_gates.core.errors import UsageError
from tw_gates.core.fsio import load_document
from tw_gates.core.yaml_lines import MAX_YAML_BYTES, LineDict, YamlError, load_yaml
from tw_gates.core.yaml_safe import safe_load_all_bounded, safe_load_bounded


def laughs(levels: int = 9, width: int = 9) -> str:
    """The classic "billion laughs": each level lists the previous one ``width`` times."""
    lines = ["a: &a [" + ",".join(['"lol"'] * width) + "]"]
    for index in range(1, levels):
        prev, name = chr(ord("a") + index - 1), chr(ord("a") + index)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * width) + "]")
    return "\n".join(lines) + "\n"


def merge_bomb(levels: int = 20) -> str:
    """Merge keys copy the mapping they name: two per level doubles it each time."""
    lines = ["l0: &l0 {x0: 1, y0: 2}"]
    for index in range(1, levels):
        lines.append(f"l{index}: &l{index} {{p: {{<<: *l{index - 1}}}, q: {{<<: *l{index - 1}}}}}")
    return "\n".join(lines) + "\n"


WORKFLOW_TAIL = "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo\n"

BOMBS = {
    "billion-laughs": laughs() + WORKFLOW_TAIL,
    "merge-keys": merge_bomb() + WORKFLOW_TAIL,
    "recursive-alias": "a: &a [*a]\n" + WORKFLOW_TAIL,
    "deep-nesting": "x: " + "[" * 5000 + "]" * 5000 + "\n",
    "deep-mappings": "".join(" " * i + f"k{i}:\n" for i in range(400)) + " " * 400 + "v: 1\n",
}


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_hostile_yaml_is_refused_quickly_with_one_line(tmp_path, name):
    path = tmp_path / "bomb.yml"
    path.write_text(BOMBS[name])
    assert len(BOMBS["billion-laughs"]) < 600
    started = time.monotonic()
    with pytest.raises(YamlError) as caught:
        load_yaml(path)
    assert time.monotonic() - started < 5  # seconds, on a loaded 2-core machine
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert any(word in message for word in ("alias", "cycle", "nested", "nesting")), message


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_every_other_yaml_reader_is_bounded_too(tmp_path, name):
    path = tmp_path / "registry.yml"
    path.write_text(BOMBS[name])
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"registry .*registry\.yml is not valid YAML: .*(alias|cycle|nest)"):
        load_document(path, "registry", max_bytes=1 << 20)
    assert time.monotonic() - started < 5  # seconds, on a loaded 2-core machine
    with pytest.raises(Exception, match=r"alias|cycle|nested|nesting"):
        safe_load_all_bounded("--- 1\n---\n" + BOMBS[name])


def test_anchors_as_people_use_them_still_load(tmp_path):
    text = "env-common: &env {A: '1', B: '2'}\nsteps: &steps\n  - run: echo one\n  - run: echo two\njobs:\n" + "".join(
        f"  j{i}:\n    env: *env\n    steps: *steps\n    base: {{<<: *env, C: '3'}}\n" for i in range(50)
    )
    path = tmp_path / "ok.yml"
    path.write_text(text)
    data = load_yaml(path)
    assert isinstance(data, LineDict) and data["jobs"]["j49"]["env"] == {"A": "1", "B": "2"}
    assert data["jobs"]["j3"]["base"] == {"A": "1", "B": "2", "C": "3"}
    assert safe_load_bounded("a: &x [1, 2]\nb: *x\n") == {"a": [1, 2], "b": [1, 2]}


def test_a_file_over_the_size_limit_is_refused_with_its_size(tmp_path):
    path = tmp_path / "huge.yml"
    path.write_bytes(b"a: 1\n" * (MAX_YAML_BYTES // 5 + 1))
    with pytest.raises(YamlError, match=r"huge\.yml: file is \d+ bytes, larger than the limit of 1048576 bytes"):
        load_yaml(path)


def test_binary_and_wrong_encoding_are_one_line(tmp_path):
    path = tmp_path / "bin.yml"
    path.write_bytes(b"\xff\xfe\x00a: \x00\x01")
    with pytest.raises(YamlError, match="not UTF-8 text"):
        load_yaml(path)
    path.write_text("a: \x07bell\n")
    with pytest.raises(YamlError, match="invalid YAML"):
        load_yaml(path)


def test_deep_brackets_are_refused_before_the_slow_scanner():
    started = time.monotonic()
    with pytest.raises(yaml_safe.YamlBombError, match="nested deeper than 200 levels"):
        safe_load_bounded("x: " + "[" * 100_000 + "]" * 100_000)
    assert time.monotonic() - started < 1
    value = safe_load_bounded("x: " + "[" * 50 + "]" * 50)["x"]
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    assert value == [] and depth == 49
