# ruff: noqa  (labeled benchmark snippets: sinks on purpose)
"""Flask views and Jinja2 environments."""

import html
import string

import flask
import jinja2
import markupsafe
from flask import Flask, render_template, render_template_string, request
from flask import render_template_string as rts
from jinja2 import Environment, FileSystemLoader, select_autoescape
from jinja2 import Template as JT
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup, escape
from markupsafe import Markup as M

app = Flask(__name__)
USE_ESCAPING = True


@app.route("/page")
def page():
    tpl = request.args.get("tpl", "")
    name = request.args.get("name", "")
    # tw:pos flask
    a = render_template_string(tpl)
    # tw:pos flask
    b = render_template_string("<h1>" + name + "</h1>")
    # tw:pos flask
    c = rts(f"<p>{name}</p>")
    # tw:pos flask
    d = flask.render_template_string(tpl, name=name)
    # tw:neg flask
    e = render_template_string("<h1>{{ name }}</h1>", name=name)
    return a + b + c + d + e


@app.route("/mail")
def mail():
    body = request.args.get("body", "")
    # tw:pos flask
    text = render_template("email.txt", body=body)
    # tw:pos flask
    other = render_template("page.jinja2", body=body)
    # tw:neg flask
    page = render_template("page.html", body=body)
    # tw:neg flask
    feed = render_template("feed.xml", body=body)
    # tw:neg flask
    icon = render_template("icon.svg", body=body)
    return text + other + page + feed + icon


def environments(loader, settings):
    # tw:pos jinja2
    a = Environment(loader=FileSystemLoader("templates"))
    # tw:pos jinja2
    b = jinja2.Environment()
    # tw:pos jinja2
    c = Environment(autoescape=False)
    # tw:pos jinja2
    d = Environment(loader=loader, autoescape=USE_ESCAPING)
    # tw:pos jinja2
    e = jinja2.Environment(autoescape=settings.AUTOESCAPE)
    # tw:pos jinja2
    f = SandboxedEnvironment()
    # tw:neg jinja2
    g = Environment(autoescape=True)
    # tw:neg jinja2
    h = Environment(loader=loader, autoescape=select_autoescape(["html", "xml"]))
    # tw:neg jinja2
    i = jinja2.Environment(autoescape=jinja2.select_autoescape())
    # tw:neg jinja2
    j = jinja2.Environment(loader=loader, autoescape=True, trim_blocks=True)
    return a, b, c, d, e, f, g, h, i, j


def templates(source, env, body):
    # tw:pos jinja2
    t = jinja2.Template(source)
    # tw:pos jinja2
    u = JT(source)
    # tw:pos jinja2
    v = env.from_string(source).render()
    # tw:neg jinja2
    w = JT("<p>{{ x }}</p>")
    # tw:neg jinja2
    x = env.from_string("<p>{{ x }}</p>").render(x=body)
    # tw:neg jinja2
    y = env.get_template("page.html").render(body=body)
    # tw:pos jinja2
    z = JT("{% autoescape false %}{{ body }}{% endautoescape %}")
    # tw:pos jinja2
    zz = JT("<div>{{ body|safe }}</div>")
    return t, u, v, w, x, y, z, zz


# tw:pos jinja2
app.jinja_env.autoescape = False
# tw:neg jinja2
app.jinja_env.autoescape = select_autoescape(["html"])


def markup(body, name, stored):
    # tw:pos markupsafe
    a = Markup(body)
    # tw:pos markupsafe
    b = M(body)
    # tw:pos markupsafe
    c = markupsafe.Markup(f"<b>{name}</b>")
    # tw:pos markupsafe
    d = flask.Markup(body)
    # tw:pos markupsafe
    e = Markup(stored).unescape()
    # tw:pos markupsafe
    f = Markup.unescape(stored)
    # tw:pos markupsafe
    g = Markup("<b>" + name + "</b>")
    # tw:pos markupsafe
    h = Markup("<b>%s</b>" % name)
    # tw:neg markupsafe
    i = Markup("<br>")
    # tw:neg markupsafe
    j = Markup("<b>{}</b>").format(name)
    # tw:neg markupsafe
    k = Markup(escape(name))
    # tw:neg markupsafe
    m = Markup.escape(name)
    # tw:neg markupsafe
    n = escape(name)
    # tw:neg markupsafe
    o = html.unescape(stored)
    # tw:neg markupsafe
    p = Markup("<b>%s</b>") % name
    return a, b, c, d, e, f, g, h, i, j, k, m, n, o, p


# Environment() without autoescape is unsafe; render_template_string(source) is SSTI.
# tw:neg jinja2
DOC = "Markup(x) marks x safe; Environment() defaults to no escaping"


class Renderer:
    # tw:neg flask
    def render_template_string(self, source):
        """render_template_string(source) compiles source: never call it with user input."""
        return source

    # tw:neg jinja2
    def configure(self, autoescape=False):
        self.autoescape = autoescape


def stdlib(who):
    # tw:neg jinja2
    return string.Template("$who").substitute(who=who)
