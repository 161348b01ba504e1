"""Renders Token Warehouse tokens to HTML: the registered rendering path."""

from jinja2 import Environment, select_autoescape
from markupsafe import Markup

from app.util.tokens import parse_tokens

ENV = Environment(autoescape=select_autoescape(["html"]))
TOKEN_TEMPLATE = ENV.get_template("token.html")


def render_tokens(markdown_source: str) -> str:
    tokens = parse_tokens(markdown_source)
    return TOKEN_TEMPLATE.render(tokens=tokens)


def render_heading(text: str) -> Markup:
    # The heading text is escaped by the token parser before it gets here.
    return Markup("<h2>{}</h2>").format(text)


def render_inline(fragment: str) -> str:
    return ENV.from_string("<span class=\"tw-inline\">{{ fragment }}</span>").render(fragment=fragment)
