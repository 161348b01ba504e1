"""The syntax-aware self-audit, case by case, from the documented behaviour of
each API: what renders a value unescaped is a hit on the line where the
construct starts; what escapes, sanitizes or only mentions it is not.

Sources: Django "Filters and auto-escaping", django.utils.safestring and
django.utils.html (mark_safe, SafeString, html_safe, format_html); Jinja2 API
(Environment autoescape defaults to False, select_autoescape); Flask
templating (autoescaping for .html/.htm/.xml/.xhtml/.svg templates only);
markupsafe (Markup, escape, Markup.unescape); MDN (innerHTML, outerHTML,
insertAdjacentHTML, document.write, Range.createContextualFragment,
Element.setHTMLUnsafe, Document.parseHTMLUnsafe, iframe srcdoc); React
(dangerouslySetInnerHTML) and react-markdown (allowDangerousHtml,
escapeHtml, rehype-raw); Vue (v-html); Svelte ({@html}); Angular
(DomSanitizer.bypassSecurityTrust*) and AngularJS ($sce.trustAs*,
$sceProvider.enabled); jQuery (.html()); Mustache/Handlebars ({{{x}}},
{{&x}}, SafeString, noEscape); EJS (<%- and include); Pug (!{}, !=,
&attributes); Nunjucks (autoescape, renderString)."""

from __future__ import annotations

import pytest

from tw_gates.self_audit.catalog import load_pattern_catalog
from tw_gates.self_audit.scanner import scan_source


def hits(name: str, source: str, harmless: str = "drop") -> set[tuple[int, str]]:
    found, _, _ = scan_source(name, source.encode(), load_pattern_catalog(), harmless=harmless)  # type: ignore[arg-type]
    return {(h.line, h.pattern) for h in found}


PYTHON_CASES = [
    # aliases resolved through the file's imports
    ("from markupsafe import Markup as M\nM(user_html)\n", {(2, "markupsafe-markup")}),
    ("from django.utils.safestring import mark_safe as ms\nms(value)\n", {(2, "django-mark-safe")}),
    ("from flask import render_template_string as rts\nrts(src)\n", {(2, "flask-render-template-string")}),
    ("import django.utils.safestring as s\ns.mark_safe(v)\n", {(2, "django-mark-safe")}),
    ("import markupsafe\nMK = markupsafe.Markup\nMK(v)\n", {(3, "markupsafe-markup")}),
    # a def of a sink-named function is not a call, and a call to it is not the library's
    ("def mark_safe(v):\n    return v\nmark_safe(x)\n", set()),
    # comments, docstrings and string literals never match
    ('"""mark_safe(x) and Markup(x)."""\n# render_template_string(x)\ns = "Environment()"\n', set()),
    # argument awareness
    ("from django.utils.safestring import mark_safe\nmark_safe('<b>secure</b>')\n", set()),
    (
        "from django.utils.html import escape\nfrom django.utils.safestring import mark_safe\nmark_safe(escape(v))\n",
        set(),
    ),
    ("import bleach\nfrom markupsafe import Markup\nMarkup(bleach.clean(v))\n", set()),
    ("import nh3\nfrom markupsafe import Markup\nMarkup(nh3.clean(v))\n", set()),
    ("from markupsafe import Markup, escape\nMarkup('<b>%s</b>' % escape(v))\n", set()),
    ("from markupsafe import Markup\nMarkup('<b>{}</b>').format(v)\n", set()),
    ("from markupsafe import Markup\nMarkup('<b>%s</b>' % v)\n", {(2, "markupsafe-markup")}),
    ("from markupsafe import Markup\nMarkup(f'<b>{v}</b>')\n", {(2, "markupsafe-markup")}),
    # a name bound only to literals in its scope is a constant; a parameter is not
    ("from django.utils.safestring import mark_safe\ndef f():\n    s = '<b>x</b>'\n    return mark_safe(s)\n", set()),
    (
        "from django.utils.safestring import mark_safe\ndef f(s='<b>x</b>'):\n    return mark_safe(s)\n",
        {(3, "django-mark-safe")},
    ),
    (
        "from django.utils.safestring import mark_safe\ndef f(s):\n    return mark_safe('<b>{}</b>'.format(s))\n",
        {(3, "django-mark-safe")},
    ),
    # Jinja2 environments: autoescape defaults to False
    ("from jinja2 import Environment\nEnvironment(loader=l)\n", {(2, "jinja2-autoescape-disabled")}),
    ("import jinja2\njinja2.Environment(autoescape=flag)\n", {(2, "jinja2-autoescape-disabled")}),
    ("import jinja2\njinja2.Environment(autoescape=jinja2.select_autoescape())\n", set()),
    (
        "from jinja2 import Environment\nEnvironment(\n    loader=l,\n    autoescape=False,\n)\n",
        {(2, "jinja2-autoescape-disabled")},
    ),
    ("from jinja2 import Environment\nEnvironment(**options)\n", set()),
    # autoescape=False as a parameter default is not a sink
    ("def render(self, value, autoescape=False):\n    return value\n", set()),
    ("TEMPLATES = [{'OPTIONS': {\n    'autoescape': False,\n}}]\n", {(2, "django-autoescape-disabled")}),
    ("from django.template import Context\nContext(d, autoescape=False)\n", {(2, "django-autoescape-disabled")}),
    # class bases, decorators, __html__
    (
        "from django.utils.safestring import SafeData\nclass X(SafeData):\n    pass\n",
        {(2, "django-safestring-subclass")},
    ),
    ("from string import Template\nclass T(Template):\n    delimiter = '%'\n", set()),
    ("import jinja2\nfrom string import Template\nclass T(Template):\n    pass\nT('$x')\n", set()),
    ("@register.filter('f', is_safe=True)\ndef f(v):\n    return v\n", {(1, "django-filter-is-safe")}),
    ("from django.utils.html import html_safe\n@html_safe\nclass B:\n    pass\n", {(2, "django-html-safe")}),
    ("class C:\n    def __html__(self):\n        return ''\n", {(2, "python-dunder-html")}),
    ("from django.utils.html import format_html\nformat_html(f'<a href=\"{u}\">x</a>')\n", {(2, "django-format-html")}),
    ("from django.utils.html import format_html\nformat_html('<a href=\"{}\">x</a>', u)\n", set()),
    # Flask: autoescaping only for .html, .htm, .xml, .xhtml, .svg templates
    ("from flask import render_template\nrender_template('mail.txt', b=b)\n", {(2, "flask-render-template-non-html")}),
    ("from flask import render_template\nrender_template('icon.svg', b=b)\n", set()),
    (
        "from flask import render_template\ndef v():\n    page = 'x.j2'\n    return render_template(page)\n",
        {(4, "flask-render-template-non-html")},
    ),
    ("from markupsafe import Markup\nMarkup(v).unescape()\n", {(2, "markupsafe-markup"), (2, "markupsafe-unescape")}),
    ("import html\nhtml.unescape(v)\n", set()),
    # a template literal a template engine compiles is scanned as a template
    ("import jinja2\njinja2.Template('''\n<p>{{ body|safe }}</p>\n''')\n", {(3, "template-safe-filter")}),
    (
        "from django.template import Template\nTemplate('{% autoescape off %}{{ x }}{% endautoescape %}')\n",
        {(2, "template-autoescape-off")},
    ),
]


@pytest.mark.parametrize(("source", "expected"), PYTHON_CASES, ids=[str(i) for i in range(len(PYTHON_CASES))])
def test_python(source, expected):
    assert hits("app/views.py", source) == expected


JS_CASES = [
    ("el['innerHTML'] = x;", {(1, "dom-inner-html")}),
    ("Object.assign(el, {innerHTML: x});", {(1, "dom-inner-html")}),
    ("document\n  .write(x);", {(1, "dom-document-write")}),
    ("el.insertAdjacentHTML('beforeend', x);", {(1, "dom-insert-adjacent-html")}),
    ("range.createContextualFragment(x);", {(1, "dom-unsafe-html-parsing")}),
    ("el.setHTMLUnsafe(x);", {(1, "dom-unsafe-html-parsing")}),
    ("$scope.h = $sce.trustAsHtml(x);", {(1, "angularjs-sce-trust")}),
    ("$sceProvider.enabled(false);", {(1, "angularjs-sce-trust")}),
    ("const a = <ReactMarkdown source={md} escapeHtml={false} />;", {(1, "react-markdown-raw-html")}),
    ("const a = <div dangerouslySetInnerHTML={{__html: x}} />;", {(1, "react-dangerously-set-inner-html")}),
    # constant or sanitized arguments
    ("el.innerHTML = '';", set()),
    ("el.innerHTML = DOMPurify.sanitize(x);", set()),
    ("const a = <div dangerouslySetInnerHTML={{__html: DOMPurify.sanitize(x)}} />;", set()),
    ("document.write('<p>static</p>');", set()),
    ("function f() {\n  const m = '<b>ok</b>';\n  el.innerHTML = m;\n}", set()),
    ("function f(m) {\n  el.innerHTML = m;\n}", {(2, "dom-inner-html")}),
    # comments and strings never match; reading or comparing is not writing
    ("// el.innerHTML = x\nconst s = 'document.write(x)';\nif (el.innerHTML === x) {}", set()),
    ("el.dataset.innerHTML = x;", set()),
]


@pytest.mark.parametrize(("source", "expected"), JS_CASES, ids=[str(i) for i in range(len(JS_CASES))])
def test_javascript(source, expected):
    assert hits("web/app.jsx", source) == expected


def test_typescript_and_tsx():
    assert hits("a.ts", "const h: string = x;\nel!.innerHTML = h as string;\n") == {(2, "dom-inner-html")}
    assert hits("a.ts", "this.t = this.s.bypassSecurityTrustHtml('<b>ok</b>');\n") == set()
    assert hits("a.tsx", "const C = (p: P) => <div dangerouslySetInnerHTML={{ __html: p.h }} />;\n") == {
        (1, "react-dangerously-set-inner-html")
    }


TEMPLATE_CASES = [
    ("t.html", "<p>{{ items|safeseq }}</p>", {(1, "template-safe-filter")}),
    ("t.html", '{# {{ x|safe }} #}\n<p>{{ "<br>"|safe }}</p>', set()),
    ("t.html", "{% comment %}\n{{ x|safe }}\n{% endcomment %}", set()),
    ("t.html", "{% autoescape false %}{{ x }}{% endautoescape %}", {(1, "template-autoescape-off")}),
    ("t.mustache", "<p>{{&name}}</p>\n<p>{{name}}</p>", {(1, "handlebars-triple-stash")}),
    ("t.hbs", "{{!-- {{{x}}} --}}\n<p>{{{x}}}</p>", {(2, "handlebars-triple-stash")}),
    ("t.ejs", "<%- include('header') %>\n<%- body %>\n<%= body %>", {(2, "ejs-unescaped-output")}),
    (
        "t.pug",
        "p Hello !{name}\na(href!=url) x\n//- p!= body\np= body",
        {(1, "pug-unescaped-output"), (2, "pug-unescaped-output")},
    ),
    ("t.twig", "<p>{{ body|raw }}</p>", {(1, "template-safe-filter")}),
]


@pytest.mark.parametrize(
    ("name", "source", "expected"), TEMPLATE_CASES, ids=[c[0] + str(i) for i, c in enumerate(TEMPLATE_CASES)]
)
def test_templates(name, source, expected):
    assert hits(name, source) == expected


def test_vue_component_template_and_script_are_split():
    source = (
        "<template>\n"
        '  <div v-html="body"></div>\n'
        '  <!-- <p v-html="x"></p> -->\n'
        "  <p v-html=\"'<br>'\"></p>\n"
        "</template>\n"
        '<script setup lang="ts">\n'
        "const b: string = props.x;\n"
        "document.write(b);\n"
        "</script>\n"
    )
    assert hits("Post.vue", source) == {(2, "vue-v-html"), (8, "dom-document-write")}


def test_svelte_markup_and_script():
    source = "<script>\n  node.innerHTML = h;\n</script>\n{@html body}\n<!-- {@html x} -->\n{@html '<br>'}\n"
    assert hits("Post.svelte", source) == {(2, "dom-inner-html"), (4, "svelte-html-tag")}


def test_mdx_jsx_blocks_but_not_code():
    source = (
        "# Title\n\n<div dangerouslySetInnerHTML={{ __html: p.h }} />\n\n"
        "```jsx\n<div dangerouslySetInnerHTML={{ __html: h }} />\n```\n"
    )
    assert hits("post.mdx", source) == {(3, "react-dangerously-set-inner-html")}


def test_inline_script_in_html():
    source = (
        "<p>x</p>\n<script>\n  el.innerHTML = location.hash;\n</script>\n"
        '<script type="application/json">{"innerHTML": 1}</script>\n'
    )
    assert hits("index.html", source) == {(3, "dom-inner-html")}


def test_harmless_arguments_are_reported_at_info_when_asked():
    source = "from django.utils.safestring import mark_safe\nmark_safe('<br>')\n"
    assert hits("a.py", source) == set()
    found, dropped, _ = scan_source("a.py", source.encode(), load_pattern_catalog(), harmless="info")
    assert dropped == 0
    assert [(h.line, h.pattern, h.argument) for h in found] == [(2, "django-mark-safe", "constant")]
    _, dropped, _ = scan_source("a.py", source.encode(), load_pattern_catalog())
    assert dropped == 1


def test_what_does_not_parse_falls_back_to_the_line_scanner_and_says_so():
    catalog = load_pattern_catalog()
    # One statement that does not parse: only its lines are line-scanned.
    source = b"from markupsafe import Markup\nprint 'x', Markup(a)\nMarkup(v)\nMarkup('<b>ok</b>')\n# Markup(c)\n"
    found, _, _ = scan_source("a.py", source, catalog)
    assert [(h.line, h.pattern, h.scanner) for h in found] == [
        (2, "markupsafe-markup", "line"),
        (3, "markupsafe-markup", "syntax"),
    ]
    # Most of the file does not parse: all of it is line-scanned (comments too).
    python2 = b"from markupsafe import Markup\nprint 'a'\nprint 'b'\n# Markup(c)\n"
    found, _, _ = scan_source("b.py", python2, catalog)
    assert [(h.line, h.scanner) for h in found] == [(4, "line")]
    # JavaScript: the ERROR region alone.
    js = (
        b"function a(x) { el.innerHTML = x; }\n// el.innerHTML = y;\n"
        b"function b(x) { el.innerHTML = x +; }\nel.innerHTML = '';\n"
    )
    found, _, _ = scan_source("a.js", js, catalog)
    assert [(h.line, h.scanner) for h in found] == [(1, "syntax"), (3, "line")]


def test_custom_catalog_without_the_syntax_patterns_only_line_scans():
    from tw_gates.self_audit.catalog import PatternCatalog

    catalog = PatternCatalog.model_validate(
        {
            "patterns": [
                {"id": "eval-call", "regex": r"\beval\(", "severity": "low", "description": "d", "globs": ["*.py"]}
            ]
        }
    )
    found, _, _ = scan_source("a.py", b"from markupsafe import Markup\nMarkup(v)\neval(x)\n", catalog)
    assert [(h.line, h.pattern, h.scanner) for h in found] == [(3, "eval-call", "line")]
