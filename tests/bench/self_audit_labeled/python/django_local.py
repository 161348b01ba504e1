# ruff: noqa  (labeled benchmark snippets: sinks on purpose)
"""A module that defines its own mark_safe and Template: no Django here."""

from string import Template


# tw:neg django
def mark_safe(value):
    return value.replace("<", "&lt;")


def show(value):
    # tw:neg django
    return mark_safe(value)


# tw:neg django
class MailTemplate(Template):
    delimiter = "%"


def greet(who):
    # tw:neg django
    return Template("$who says hi").substitute(who=who)
