"""Consumer self-audit: the pattern catalog, what is scanned and skipped,
the artifact's identity and signature, and the SARIF output."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tw_gates.core.signing import KeyRing
from tw_gates.schemas.consumer import ConsumerArtifact
from tw_gates.self_audit.scanner import scan_source
from tw_gates.self_audit.self_audit import DEFAULT_CATALOG, PatternCatalog, load_pattern_catalog, scan, scan_text

COMMIT = "0123456789abcdef0123456789abcdef01234567"
IDENTITY = ("--repo", "example-org/example-consumer", "--commit", COMMIT, "--branch", "main")

# One file that must hit and one that must not, for every shipped pattern,
# scanned as the self-audit scans a file of that name. A pattern added to the
# catalog without an entry here fails the test below. (The syntax-aware
# scanner's documented behaviour is tested in detail in test_self_audit_syntax.py.)
EXAMPLES: dict[str, tuple[str, str, str]] = {
    # id: (file name, hit, no hit)
    "jinja2-from-string": ("r.py", "env.from_string(source)", "env.from_string('<p>{{ x }}</p>')"),
    "flask-render-template-string": (
        "r.py",
        "from flask import render_template_string\nrender_template_string(tpl)",
        "from flask import render_template_string\nrender_template_string('<h1>{{ n }}</h1>', n=n)",
    ),
    "flask-render-template-non-html": (
        "r.py",
        "from flask import render_template\nrender_template('mail.txt', b=b)",
        "from flask import render_template\nrender_template('page.html', b=b)",
    ),
    "jinja2-template": (
        "r.py",
        "import jinja2\nt = jinja2.Template(src)",
        "from string import Template\nt = Template(src)",
    ),
    "jinja2-autoescape-disabled": (
        "r.py",
        "from jinja2 import Environment\nEnvironment(autoescape=False)",
        "from jinja2 import Environment\nEnvironment(autoescape=True)",
    ),
    "django-autoescape-disabled": ("settings.py", "OPTIONS = {'autoescape': False}", "OPTIONS = {'autoescape': True}"),
    "markupsafe-markup": (
        "r.py",
        "from markupsafe import Markup\nMarkup(html)",
        "from markupsafe import Markup, escape\nMarkup(escape(html))",
    ),
    "markupsafe-unescape": (
        "r.py",
        "from markupsafe import Markup\nMarkup.unescape(s)",
        "import html\nhtml.unescape(s)",
    ),
    "django-template": (
        "r.py",
        "from django.template import Template\nTemplate(src)",
        "from string import Template\nTemplate(src)",
    ),
    "django-render-to-string": (
        "r.py",
        "from django.template.loader import render_to_string\nrender_to_string('a.html', ctx)",
        "render('a.html', ctx)",
    ),
    "django-mark-safe": (
        "r.py",
        "from django.utils.safestring import mark_safe\nmark_safe(value)",
        "from django.utils.safestring import mark_safe\nmark_safe('<br>')",
    ),
    "django-safestring-subclass": (
        "r.py",
        "from django.utils.safestring import SafeString\nclass H(SafeString):\n    pass",
        "class H(str):\n    pass",
    ),
    "django-filter-is-safe": (
        "r.py",
        "@register.filter(is_safe=True)\ndef f(v):\n    return v",
        "@register.filter\ndef f(v):\n    return v",
    ),
    "django-html-safe": (
        "r.py",
        "from django.utils.html import html_safe\n@html_safe\nclass B:\n    pass",
        "class B:\n    pass",
    ),
    "django-format-html": (
        "r.py",
        "from django.utils.html import format_html\nformat_html(f'<b>{x}</b>')",
        "from django.utils.html import format_html\nformat_html('<b>{}</b>', x)",
    ),
    "python-dunder-html": (
        "r.py",
        "class C:\n    def __html__(self):\n        return self.s",
        "class C:\n    def __str__(self):\n        return self.s",
    ),
    "mako-template": (
        "r.py",
        "from mako.template import Template\nTemplate(text=src)",
        "from mako.template import Template\nTemplate(text=src, default_filters=['h'])",
    ),
    "tornado-template": (
        "r.py",
        "from tornado import template\ntemplate.Template(src)",
        "from tornado import template\ntemplate.Loader('t')",
    ),
    "markdown-it-html-enabled": (
        "r.js",
        "const md = require('markdown-it')({ html: true });",
        "const md = require('markdown-it')({ html: false });",
    ),
    "template-safe-filter": ("t.html", "<p>{{ body|safe }}</p>", "<p>{{ body }}</p>"),
    "template-autoescape-off": ("t.html", "{% autoescape off %}{{ x }}{% endautoescape %}", "{% autoescape on %}"),
    "handlebars-triple-stash": ("t.hbs", "<div>{{{ body }}}</div>", "<div>{{ body }}</div>"),
    "ejs-unescaped-output": ("t.ejs", "<%- body %>", "<%= body %>"),
    "pug-unescaped-output": ("t.pug", "p!= body", "p= body"),
    "rails-html-safe": ("v.rb", "body.html_safe", "sanitize(body)"),
    "thymeleaf-utext": ("t.html", '<p th:utext="${body}"></p>', '<p th:text="${body}"></p>'),
    "react-dangerously-set-inner-html": ("c.jsx", "<div dangerouslySetInnerHTML={{ __html: h }} />", "<div>{h}</div>"),
    "react-markdown-raw-html": (
        "c.jsx",
        "<ReactMarkdown allowDangerousHtml>{md}</ReactMarkdown>",
        "<ReactMarkdown>{md}</ReactMarkdown>",
    ),
    "vue-v-html": (
        "c.vue",
        '<template><div v-html="body"></div></template>',
        '<template><div v-text="body"></div></template>',
    ),
    "dom-inner-html": ("c.js", "el.innerHTML = html;", "if (el.innerHTML === html) {}"),
    "dom-insert-adjacent-html": (
        "c.js",
        "el.insertAdjacentHTML('beforeend', h)",
        "el.insertAdjacentText('beforeend', h)",
    ),
    "dom-document-write": ("c.js", "document.write(h)", "document.title = h"),
    "dom-unsafe-html-parsing": ("c.js", "range.createContextualFragment(h)", "range.createDocumentFragment()"),
    "dom-srcdoc": ("c.js", "frame.srcdoc = page;", "frame.src = url;"),
    "svelte-html-tag": ("c.svelte", "<div>{@html body}</div>", "<div>{body}</div>"),
    "angular-bypass-sanitizer": ("c.ts", "this.s.bypassSecurityTrustHtml(h)", "this.s.sanitize(1, h)"),
    "angular-inner-html-binding": ("c.html", '<div [innerHTML]="body"></div>', '<div [innerText]="body"></div>'),
    "angularjs-sce-trust": ("c.js", "$scope.h = $sce.trustAsHtml(h);", "$scope.h = $sanitize(h);"),
    "jquery-html-sink": ("c.js", "$('#x').html(body)", "$('#x').text(body)"),
    "lodash-template": ("c.js", "const t = _.template(src)", "const t = _.escape(src)"),
    "handlebars-compile": ("c.js", "Handlebars.compile(src)", "Handlebars.registerHelper('x', f)"),
    "handlebars-safe-string": ("c.js", "new Handlebars.SafeString(h)", "Handlebars.escapeExpression(h)"),
    "mustache-escape-overwrite": ("c.js", "Mustache.escape = (t) => t;", "Mustache.render(t, v);"),
    "nunjucks-render-string": (
        "c.js",
        "const nunjucks = require('nunjucks');\nnunjucks.renderString(src, ctx)",
        "const nunjucks = require('nunjucks');\nnunjucks.render('a.njk', ctx)",
    ),
    "nunjucks-autoescape-disabled": (
        "c.js",
        "nunjucks.configure('views', { autoescape: false });",
        "nunjucks.configure('views', { autoescape: true });",
    ),
    "go-template-html-cast": ("v.go", "return template.HTML(body)", "return template.HTMLEscapeString(body)"),
    "go-text-template": ("v.go", 'import "text/template"', 'import "html/template"'),
}


def hit_ids(path: str, text: str) -> set[str]:
    hits, _, _ = scan_source(path, text.encode(), load_pattern_catalog())
    return {h.pattern for h in hits}


def test_every_shipped_pattern_has_an_example():
    assert set(EXAMPLES) == set(load_pattern_catalog().by_id)


@pytest.mark.parametrize("pattern_id", sorted(EXAMPLES))
def test_shipped_pattern_hits_what_it_should_and_not_the_safe_variant(pattern_id):
    name, hit, miss = EXAMPLES[pattern_id]
    assert pattern_id in hit_ids(name, hit)
    assert pattern_id not in hit_ids(name, miss)


def test_catalog_loader_gives_severities_for_the_audit():
    catalog = load_pattern_catalog()
    assert catalog is load_pattern_catalog()  # parsed once
    assert catalog.severity_of("jinja2-from-string") == "critical"
    assert catalog.severity_of("dom-inner-html") == "high"
    assert catalog.severity_of("no-such-pattern") is None
    assert DEFAULT_CATALOG.name == "renderer_patterns.yml"


def test_custom_catalog_replaces_or_extends_the_default(tmp_path):
    own = tmp_path / "own.yml"
    own.write_text(
        "patterns:\n  - {id: eval-call, regex: '\\beval\\(', severity: low, description: eval, globs: ['*.py']}\n"
    )
    assert list(load_pattern_catalog(own).by_id) == ["eval-call"]
    own.write_text(
        "extends_default: true\npatterns:\n"
        "  - {id: eval-call, regex: '\\beval\\(', severity: low, description: eval, globs: ['*.py']}\n"
        "  - {id: dom-inner-html, regex: 'innerHTML', severity: low, description: x, globs: ['*.js']}\n"
    )
    merged = load_pattern_catalog(own)
    assert merged.severity_of("eval-call") == "low"
    assert merged.severity_of("dom-inner-html") == "low"  # same id replaces
    assert merged.severity_of("jinja2-from-string") == "critical"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("patterns:\n  - {id: x, regex: '(', severity: low, description: d, globs: ['*']}\n", "not a valid regex"),
        (
            "patterns:\n  - {id: x, regex: 'a*', severity: low, description: d, globs: ['*']}\n",
            "matches the empty string",
        ),
        ("patterns:\n  - {id: x, regex: 'a', severity: urgent, description: d, globs: ['*']}\n", "severity"),
        (
            "patterns: [{id: x, regex: a, severity: low, description: d, globs: ['*']},"
            " {id: x, regex: b, severity: low, description: d, globs: ['*']}]\n",
            "listed twice",
        ),
        # libyaml and PyYAML word the parse error differently; both name the line.
        ("patterns: [\n", r"is not valid YAML: .* at line 2"),
    ],
    ids=["bad-regex", "empty-match", "bad-severity", "duplicate-id", "bad-yaml"],
)
def test_bad_catalog_is_a_usage_error(cli, tmp_path, content, message):
    catalog = tmp_path / "bad.yml"
    catalog.write_text(content)
    (tmp_path / "repo").mkdir()
    code, out, err = cli(
        "self-audit", "--repo-dir", tmp_path / "repo", "--patterns", catalog, "--out", tmp_path / "a.json", *IDENTITY
    )
    assert code == 1
    assert re.search(message, err) and "Traceback" not in err


def make_tree(root: Path) -> None:
    files = {
        "app/views.py": "from flask import render_template_string\n\ndef v(s):\n    return render_template_string(s)\n",
        "web/a.js": "x.innerHTML = y;\n",
        "node_modules/lib/index.js": "x.innerHTML = y;\n",
        "vendor/lib.js": "x.innerHTML = y;\n",
        "web/dist/app.js": "x.innerHTML = y;\n",
        "web/app.min.js": "x.innerHTML = y;\n",
        "web/bundle.js": "var a=1;" * 1000 + "x.innerHTML = y;\n",
        "docs/readme.md": "x.innerHTML = y  (not a scanned file type)\n",
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "web/binary.js").write_bytes(b"\x00\x01x.innerHTML = y;\n")
    (root / "web/huge.js").write_text("x.innerHTML = y;\n" + "// pad\n" * 400_000)


def test_scan_skips_vendored_minified_binary_and_huge_files(tmp_path):
    make_tree(tmp_path)
    (tmp_path / "web/link.js").symlink_to(tmp_path / "web/a.js")
    result = scan(tmp_path, load_pattern_catalog(), max_file_bytes=1024 * 1024)
    assert [(h.path, h.line, h.pattern) for h in result.hits] == [
        ("app/views.py", 4, "flask-render-template-string"),
        ("web/a.js", 1, "dom-inner-html"),
    ]
    # Walking prunes vendored folders without listing them.
    assert result.skipped == {"binary": 1, "minified": 2, "symlink": 1, "too_large": 1}
    assert result.files_scanned == 2


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "PATH": "/usr/bin:/bin",
            "HOME": str(root),
        },
    ).stdout.strip()


@pytest.fixture
def git_checkout(tmp_path: Path) -> Path:
    if not shutil.which("git"):
        pytest.skip("git is not installed")
    root = tmp_path / "consumer"
    root.mkdir()
    make_tree(root)
    git(root, "init", "-q", "-b", "trunk")
    git(root, "remote", "add", "origin", "git@github.com:acme-corp/widget-shop.git")
    git(root, "add", "-f", ".")
    git(root, "commit", "-q", "-m", "initial")
    return root


def test_in_a_git_checkout_only_tracked_files_are_scanned_and_identity_comes_from_git(cli, git_checkout, tmp_path):
    (git_checkout / "web/untracked.js").write_text("x.innerHTML = y;\n")
    out_file = tmp_path / "artifact.json"
    code, out, err = cli("self-audit", "--repo-dir", git_checkout, "--out", out_file)
    assert code == 0, err
    artifact = json.loads(out_file.read_text())
    assert artifact["repo"] == "acme-corp/widget-shop"
    assert artifact["commit"] == git(git_checkout, "rev-parse", "HEAD")
    assert artifact["branch"] == "trunk"
    assert {h["path"] for h in artifact["hits"]} == {"app/views.py", "web/a.js"}
    # Listed by git, so vendored files are counted as skipped.
    assert "skipped: 1 binary, 2 minified, 1 too_large, 3 vendored" in out


def test_flags_and_runner_env_win_over_git(cli, git_checkout, tmp_path):
    out_file = tmp_path / "artifact.json"
    code, _, err = cli(
        "self-audit",
        "--repo-dir",
        git_checkout,
        "--out",
        out_file,
        "--branch",
        "release",
        env={"GITHUB_REPOSITORY": "acme-corp/from-env", "GITHUB_SHA": COMMIT, "GITHUB_REF_NAME": "main"},
    )
    assert code == 0, err
    artifact = json.loads(out_file.read_text())
    assert (artifact["repo"], artifact["commit"], artifact["branch"]) == ("acme-corp/from-env", COMMIT, "release")


def test_folder_inside_another_repository_needs_its_identity_given(cli, repo_root, tmp_path):
    # examples/consumer lives inside our own repository; it is not that repository.
    code, _, err = cli("self-audit", "--repo-dir", repo_root / "examples/consumer", "--out", tmp_path / "a.json")
    assert code == 1
    assert "cannot tell the artifact's repo, commit, branch" in err and "--repo" in err


def test_a_checkout_without_an_origin_remote_is_told_to_pass_its_repo(cli, git_checkout, tmp_path):
    git(git_checkout, "remote", "remove", "origin")
    code, _, err = cli("self-audit", "--repo-dir", git_checkout, "--out", tmp_path / "a.json")
    assert code == 1 and "Traceback" not in err
    assert "cannot tell the artifact's repo: the checkout has no 'origin' remote" in err and "pass --repo" in err


def test_bad_identity_is_a_usage_error_naming_the_field(cli, tmp_path):
    code, _, err = cli(
        "self-audit",
        "--repo-dir",
        tmp_path,
        "--out",
        tmp_path / "a.json",
        "--repo",
        "not a repo",
        "--commit",
        COMMIT,
        "--branch",
        "main",
    )
    assert code == 1 and "repo" in err and "Traceback" not in err


def test_example_consumer_artifact_is_signed_and_valid(cli, repo_root, tmp_path):
    out_file = tmp_path / "artifact.json"
    code, out, err = cli(
        "self-audit",
        "--repo-dir",
        repo_root / "examples/consumer",
        "--out",
        out_file,
        *IDENTITY,
        env={"TW_HMAC_KEY": "consumer-signing-key-1-0123456789ab", "TW_HMAC_KEY_ID": "k2026"},
    )
    assert code == 0, err
    document = json.loads(out_file.read_text())
    ConsumerArtifact.model_validate(document)
    assert KeyRing({"k2026": "consumer-signing-key-1-0123456789ab"}).verify(document) == "k2026"
    hits = {(h["path"], h["pattern"]) for h in document["hits"]}
    assert ("app/rendering/templates/token.html", "template-safe-filter") in hits  # registered path
    # A constant template and constant markup are not findings.
    assert not any(p == "app/rendering/markdown_view.py" for p, _ in hits)
    assert ("app/views/profile.py", "flask-render-template-string") in hits  # unregistered
    assert ("web/src/comments.js", "dom-inner-html") in hits
    # The optional fields: where each hit lies and how it was found.
    where = {(h["path"], h["context"], h["scanner"]) for h in document["hits"]}
    assert ("tests/test_profile.py", "test", "syntax") in where
    assert ("app/rendering/templates/token.html", "production", "template") in where
    assert not any(p.startswith(("node_modules/", "web/dist/")) for p, _ in hits)
    assert "signed, key id k2026" in out


def test_unsigned_artifact_warns(cli, repo_root, tmp_path):
    code, out, err = cli(
        "self-audit", "--repo-dir", repo_root / "examples/consumer", "--out", tmp_path / "a.json", *IDENTITY
    )
    assert code == 0
    assert "signature" not in json.loads((tmp_path / "a.json").read_text())
    assert "unsigned" in out and "POLICY_REQUIRE_HMAC=true will reject it" in err


def test_sarif_output_locates_every_hit(cli, repo_root, tmp_path):
    code, _, err = cli(
        "self-audit",
        "--repo-dir",
        repo_root / "examples/consumer",
        "--out",
        tmp_path / "a.json",
        "--sarif",
        tmp_path / "hits.sarif",
        *IDENTITY,
    )
    assert code == 0, err
    artifact = json.loads((tmp_path / "a.json").read_text())
    sarif = json.loads((tmp_path / "hits.sarif").read_text())
    assert sarif["version"] == "2.1.0" and sarif["$schema"].endswith("sarif-2.1.0.json")
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(load_pattern_catalog().by_id)
    assert all(r["properties"]["security-severity"] for r in rules)
    # Each rule says what to do about a hit, how precise it is, and that it is CWE-79.
    by_id = {r["id"]: r for r in rules}
    mark_safe = by_id["django-mark-safe"]
    assert "format_html" in mark_safe["help"]["text"] and "**Fix:**" in mark_safe["help"]["markdown"]
    assert mark_safe["properties"]["precision"] == "high" and mark_safe["properties"]["security-severity"] == "8.0"
    assert "external/cwe/cwe-79" in mark_safe["properties"]["tags"]
    assert {r["properties"]["precision"] for r in rules} <= {"very-high", "high", "medium", "low"}
    located = []
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note") and result["message"]["text"]
        location = result["locations"][0]["physicalLocation"]
        assert location["artifactLocation"]["uriBaseId"] == "%SRCROOT%"
        located.append((location["artifactLocation"]["uri"], location["region"]["startLine"], result["ruleId"]))
    assert located == [(h["path"], h["line"], h["pattern"]) for h in artifact["hits"]]
    assert run["versionControlProvenance"][0]["revisionId"] == COMMIT


def test_sarif_fingerprint_survives_a_line_moving(tmp_path):
    catalog = load_pattern_catalog()
    patterns = [p for p in catalog.patterns if p.applies_to("a.js")]
    before = scan_text("a.js", "el.innerHTML = x;\n", patterns)[0]
    after = scan_text("a.js", "// new comment\n\n   el.innerHTML  =  x;\n", patterns)[0]
    changed = scan_text("a.js", "el.innerHTML = other;\n", patterns)[0]
    assert after.line == 3 and before.fingerprint == after.fingerprint != changed.fingerprint


def test_runner_outputs_and_annotations(cli, repo_root, tmp_path):
    output = tmp_path / "github_output"
    output.touch()  # the runner creates it
    code, out, _ = cli(
        "self-audit",
        "--repo-dir",
        repo_root / "examples/consumer",
        "--out",
        tmp_path / "a.json",
        *IDENTITY,
        env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(output)},
    )
    assert code == 0
    text = output.read_text()
    assert "signed" in text and "artifact" in text
    assert "8" in text.split("hits", 1)[1].splitlines()[1]  # hits<<delimiter, 8, delimiter
    assert (
        "::warning title=tw-gates self-audit,file=app/views/profile.py,line=15::"
        "renderer pattern flask-render-template-string (critical)" in out
    )


def test_catalog_schema_is_published(cli):
    code, out, _ = cli("schema", "renderer-patterns")
    assert code == 0 and json.loads(out)["title"] == PatternCatalog.model_config["title"]


@pytest.mark.parametrize(
    ("regex", "needles"),
    [
        (r"\.from_string\s*\(", (".from_string",)),
        (r"\b(?:jinja2\.)?Template\s*\(", ("Template",)),  # the optional group is not required
        (r"\b(?:mark_safe|SafeString)\s*\(", ("mark_safe", "SafeString")),
        (r"\.html_safe\b|<%==|\braw\s*\(", (".html_safe", "<%==", "raw")),
        (r"foo|\w+bar", ("foo", "bar")),
        (r"foo|\w+", None),  # an alternative without a literal
        (r"(?i)template", None),  # case-insensitive: no literal test
        (r"ab(?i:cdef)g", ("ab",)),
        (r"x*", None),
    ],
    ids=lambda value: str(value),
)
def test_required_literals_are_a_necessary_condition(regex, needles):
    from tw_gates.self_audit.self_audit import required_literals

    assert required_literals(regex) == needles


def test_prefilter_never_hides_a_hit():
    """The literal prefilter only skips files the regexes would not match."""
    import random

    from tw_gates.self_audit.self_audit import RendererPattern

    catalog = load_pattern_catalog()
    unfiltered = []
    for pattern in catalog.patterns:
        copy = RendererPattern.model_validate(pattern.model_dump())
        copy._needles = copy._requires_needles = None
        unfiltered.append(copy)
    words = [
        "Template(",
        "template.",
        "jinja2",
        "django.template",
        "mako",
        "innerHTML =",
        "{{{x}}}",
        "|safe",
        ".from_string(",
        "$('#a').html(x)",
        "jQuery",
        "v-html=",
        "raw(",
        "<%==",
        "x",
        " ",
        "\n",
        "autoescape=False",
    ]
    rng = random.Random(3)
    for _ in range(500):
        text = "".join(rng.choice(words) for _ in range(rng.randrange(1, 12)))
        for name in ("a.py", "a.js", "a.html", "a.rb", "a.go"):
            fast = [p for p in catalog.patterns if p.applies_to(name)]
            slow = [p for p in unfiltered if p.applies_to(name)]
            assert scan_text(name, text, fast) == scan_text(name, text, slow), (name, text)
