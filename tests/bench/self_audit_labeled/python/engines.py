# ruff: noqa  (labeled benchmark snippets: sinks on purpose)
"""Mako, Tornado and markdown-it-py."""

import mako.template
from mako.lookup import TemplateLookup
from mako.template import Template as MakoTemplate
from markdown_it import MarkdownIt
from tornado import template

PAGE = "<p>${name}</p>"


def mako_pages(text):
    # tw:pos mako
    a = mako.template.Template(text)
    # tw:pos mako
    b = MakoTemplate(PAGE)
    # tw:neg mako
    c = MakoTemplate(PAGE, default_filters=["h"])
    # tw:neg mako
    d = TemplateLookup(directories=["templates"], default_filters=["h"])
    return a, b, c, d


def tornado_pages(source):
    # tw:pos tornado
    a = template.Template(source)
    # tw:neg tornado
    b = template.Template("<p>{{ name }}</p>")
    # tw:neg tornado
    c = template.Loader("templates")
    return a, b, c


def markdown():
    # tw:pos markdown
    a = MarkdownIt("commonmark", {"html": True})
    # tw:neg markdown
    b = MarkdownIt("commonmark", {"html": False})
    return a, b
