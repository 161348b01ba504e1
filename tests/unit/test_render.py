import json

import pytest
import yaml

from tw_gates.phases.render import (
    RenderError,
    UnresolvedPlaceholders,
    find_placeholders,
    load_values,
    render_text,
)

TRICKY = "He said: \"hi\" # not a comment\nsecond line \\ {{NOT_EXPANDED}} 'quoted', [x]: {y}"


def test_markdown_gets_values_as_they_are_and_spaced_placeholders_count():
    out = render_text(
        "# Phase {{PHASE}} - {{ PHASE_NAME }}\n\n{{LIST}}\n",
        {"PHASE": 1, "PHASE_NAME": "Ingest *gate*", "LIST": "- a\n- b"},
        "text",
    )
    assert out == "# Phase 1 - Ingest *gate*\n\n- a\n- b\n"


def test_github_expressions_lowercase_and_triple_braces_are_not_placeholders():
    text = 'token: "${{ secrets.GITHUB_TOKEN }}" ${{ GITHUB_TOKEN }} {{lower}} {{{TRIPLE}}} {{A}}'
    assert [p.name for p in find_placeholders(text)] == ["A"]
    assert render_text(text, {"A": "ok"}) == text.replace("{{A}}", "ok")


def test_unresolved_placeholders_exit_2_with_names_and_lines():
    with pytest.raises(UnresolvedPlaceholders) as caught:
        render_text("{{A}}\n{{B}} {{A}}\n\n{{C}}", {"B": "x", "C": None}, "text", source="t.md")
    assert caught.value.exit_code == 2
    assert caught.value.missing == {"A": [1, 2], "C": [4]}
    assert str(caught.value) == "2 placeholders unresolved in t.md: A (lines 1, 2), C (line 4)"


def test_values_are_not_expanded_again():
    assert render_text("{{A}}", {"A": "{{B}}", "B": "no"}) == "{{B}}"


def test_json_values_are_escaped_in_strings_and_typed_as_values():
    template = (
        '{"name": "{{NAME}}", "msg": "pre {{NAME}} post", "n": {{COUNT}}, "gates": {{GATES}}, '
        '"flag": {{FLAG}}, "count_text": "{{COUNT}}"}'
    )
    out = render_text(template, {"NAME": TRICKY, "COUNT": 14, "GATES": ["G1", "G2"], "FLAG": False}, "json")
    data = json.loads(out)
    assert data == {
        "name": TRICKY,
        "msg": f"pre {TRICKY} post",
        "n": 14,
        "gates": ["G1", "G2"],
        "flag": False,
        "count_text": "14",
    }


def test_json_that_cannot_be_valid_is_refused():
    with pytest.raises(RenderError, match="valid JSON"):
        render_text('{"a": {{A}} {{B}}}', {"A": 1, "B": 2}, "json")


YAML_TEMPLATE = """\
# {{NAME}} in a comment
name: {{NAME}}
count: {{COUNT}}
double: "x {{NAME}} y"
single: 'a {{COUNT}} b'
part: Phase {{COUNT}} done
gates: {{GATES}}
block: |
  first {{NAME}}
  last
items:
  - {{NAME}}
  - {inner: {{COUNT}}, text: "{{NAME}}"}
expr: ${{ inputs.phase }}
"""


def test_yaml_values_land_intact_whatever_they_contain():
    out = render_text(YAML_TEMPLATE, {"NAME": TRICKY, "COUNT": 7, "GATES": ["G1", "yes", "1.0"]}, "yaml")
    data = yaml.safe_load(out)
    assert data["name"] == TRICKY
    assert data["count"] == 7
    assert data["double"] == f"x {TRICKY} y"
    assert data["single"] == "a 7 b"
    assert data["part"] == "Phase 7 done"
    assert data["gates"] == ["G1", "yes", "1.0"]  # strings stay strings, not booleans or floats
    assert data["block"] == f"first {TRICKY}\nlast\n"
    assert data["items"] == [TRICKY, {"inner": 7, "text": TRICKY}]
    assert data["expr"] == "${{ inputs.phase }}"
    assert out.splitlines()[0].startswith("# He said")  # the comment stays one line


def test_yaml_string_that_looks_like_other_types_stays_a_string():
    out = render_text("a: {{V}}\nb: {{W}}\n", {"V": "true", "W": "0x10"}, "yaml")
    assert yaml.safe_load(out) == {"a": "true", "b": "0x10"}


def test_yaml_unsafe_value_inside_plain_scalar_is_refused_with_the_line():
    with pytest.raises(RenderError, match=r"NAME \(line 1\).*quote that value"):
        render_text("title: Phase {{NAME}} done\n", {"NAME": "a: b"}, "yaml")


def test_yaml_single_quoted_with_line_break_is_refused():
    with pytest.raises(RenderError, match="double-quoted"):
        render_text("a: 'x {{NAME}}'\n", {"NAME": "two\nlines"}, "yaml")
    assert yaml.safe_load(render_text("a: 'x {{NAME}}'\n", {"NAME": "it's"}, "yaml")) == {"a": "x it's"}


def test_yaml_control_characters_are_escaped():
    out = render_text('a: "{{V}}"\nb: {{V}}\n', {"V": "bell\x07 del\x7f nul\x00"}, "yaml")
    assert yaml.safe_load(out) == {"a": "bell\x07 del\x7f nul\x00", "b": "bell\x07 del\x7f nul\x00"}


def test_cli_render_to_file_and_unresolved_exit_2(cli, tmp_path):
    template = tmp_path / "t.json"
    template.write_text('{"phase": {{PHASE}}, "name": "{{PHASE_NAME}}"}\n')
    values = tmp_path / "v.yml"
    values.write_text("PHASE: 2\nPHASE_NAME: 'say \"hi\"'\nEXTRA: 1\n")
    out = tmp_path / "out" / "r.json"
    code, stdout, err = cli("render", template, "--values", values, "--out", out)
    assert code == 0, err
    assert json.loads(out.read_text()) == {"phase": 2, "name": 'say "hi"'}
    assert "values not used" in err and "EXTRA" in err

    template.write_text('{"phase": {{PHASE}},\n "x": "{{MISSING}}"}\n')
    out.unlink()
    code, stdout, err = cli("render", template, "--values", values, "--out", out)
    assert code == 2
    assert "MISSING (line 2)" in err
    assert not out.exists()


def test_cli_render_to_stdout_and_format_override(cli, tmp_path):
    template = tmp_path / "t.tmpl"
    template.write_text("name: {{N}}\n")
    values = tmp_path / "v.json"
    values.write_text('{"N": "a: b"}')
    code, out, _ = cli("render", template, "--values", values, "--format", "yaml")
    assert code == 0
    assert yaml.safe_load(out) == {"name": "a: b"}
    code, out, _ = cli("render", template, "--values", values)  # plain text: as is
    assert out == "name: a: b\n"


def test_values_files_merge_and_bad_values_are_usage_errors(tmp_path, cli):
    a = tmp_path / "a.yml"
    a.write_text("X: 1\nY: 2\n")
    b = tmp_path / "b.json"
    b.write_text('{"Y": 3}')
    assert load_values([a, b]) == {"X": 1, "Y": 3}
    bad = tmp_path / "bad.yml"
    bad.write_text("- a list\n")
    template = tmp_path / "t.md"
    template.write_text("{{X}}")
    code, _, err = cli("render", template, "--values", bad)
    assert code == 1 and "must be a mapping" in err
    code, _, err = cli("render", tmp_path / "nope.md", "--values", a)
    assert code == 1 and "template not found" in err
