# ruff: noqa  (labeled benchmark snippets: sinks on purpose)
"""Django views and template helpers: mark_safe and friends."""

from django import template
from django.template import Context, Engine, Template, engines
from django.utils import safestring
from django.utils.html import conditional_escape, escape, format_html, format_html_join, html_safe, strip_tags
from django.utils.safestring import SafeString, SafeText, mark_safe
from django.utils.safestring import mark_safe as ms

import bleach
import nh3

register = template.Library()
BANNER = "<strong>maintenance tonight</strong>"


def profile(request):
    name = request.GET.get("name", "")
    # tw:pos django
    return mark_safe(name)


def greeting(name):
    # tw:pos django
    html = mark_safe("<b>%s</b>" % name)
    # tw:pos django
    other = mark_safe(f"<p>{name}</p>")
    # tw:pos django
    aliased = ms(name)
    # tw:pos django
    through_module = safestring.mark_safe(name)
    # tw:pos django
    wrapped = SafeString(name)
    # tw:pos django
    legacy = SafeText(name)
    # tw:pos django
    joined = mark_safe("<ul>" + "".join(name) + "</ul>")
    return html, other, aliased, through_module, wrapped, legacy, joined


def safe_greeting(name, body):
    # tw:neg django
    a = mark_safe("<br>")
    # tw:neg django
    b = mark_safe("<b>%s</b>" % escape(name))
    # tw:neg django
    c = mark_safe(conditional_escape(name))
    # tw:neg django
    d = mark_safe(bleach.clean(body))
    # tw:neg django
    e = mark_safe(nh3.clean(body))
    # tw:neg django
    f = mark_safe(BANNER)
    # tw:neg django
    g = format_html("<b>{}</b>", name)
    # tw:neg django
    h = format_html_join("\n", "<li>{}</li>", ((item,) for item in body))
    # tw:neg django
    i = mark_safe(f"<i>{escape(name)}</i>")
    # tw:neg django
    j = escape(name)
    # tw:neg django
    k = strip_tags(body)
    # mark_safe(name) would be wrong here: this comment must not match.
    # tw:neg django
    note = "mark_safe(name) marks a string safe"
    return a, b, c, d, e, f, g, h, i, j, k, note


# tw:pos django
class TrustedHtml(SafeString):
    pass


# tw:pos django
class LegacyHtml(SafeText):
    pass


# tw:pos django
class AnySafe(safestring.SafeData):
    pass


# tw:neg django
class Plain(str):
    pass


# tw:pos django
@register.filter(is_safe=True)
def shout(value):
    return value.upper()


# tw:pos django
@register.filter(name="markdown", is_safe=True)
def markdown_filter(value):
    return value


# tw:neg django
@register.filter(is_safe=False)
def whisper(value):
    return value.lower()


# tw:neg django
@register.filter
def plain_filter(value):
    return value


def render_md(value):
    return value


# tw:pos django
register.filter("render_md", render_md, is_safe=True)
# tw:pos django
render_md.is_safe = True


# tw:pos django
@html_safe
class Badge:
    def __init__(self, label):
        self.label = label

    def __str__(self):
        return self.label


class Card:
    # tw:pos django
    def __html__(self):
        return self.body

    # tw:neg django
    def __str__(self):
        return escape(self.body)


def links(url, label, name, body):
    # tw:pos django
    a = format_html(f"<a href='{url}'>{label}</a>")
    # tw:pos django
    b = format_html("<b>{}</b>".format(name))
    # tw:pos django
    c = format_html("<i>%s</i>" % name)
    # tw:pos django
    d = format_html("<p>" + body + "</p>")
    # tw:neg django
    e = format_html("<a href='{}'>{}</a>", url, label)
    return a, b, c, d, e


def compile_template(request, source):
    # tw:pos django
    t = Template(request.POST["tpl"])
    # tw:pos django
    u = template.Template(source)
    # tw:neg django
    v = Template("<p>{{ name }}</p>")
    # tw:pos django
    w = engines["django"].from_string(source)
    # tw:neg django
    x = engines["django"].from_string("<p>{{ name }}</p>")
    return t, u, v, w, x


def contexts(values, flag):
    # tw:pos django
    a = Context(values, autoescape=False)
    # tw:pos django
    b = Engine(autoescape=False)
    # tw:neg django
    c = Context(values)
    # tw:neg django
    d = Context(values, autoescape=True)
    # tw:neg django
    e = Engine(dirs=["templates"])
    return a, b, c, d, e


TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {
            # tw:pos django
            "autoescape": False,
            "context_processors": [],
        },
    },
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        # tw:neg django
        "OPTIONS": {"autoescape": True},
    },
]


class Widget:
    # tw:neg django
    def render(self, name, value, autoescape=False):
        """Renders with mark_safe(value) when autoescape is off."""
        return conditional_escape(value)


# tw:pos django
@mark_safe
def footer():
    return "<footer>" + BANNER + "</footer>"
