"""A test that builds a safe string on purpose: the self-audit reports it in
the `test` context, and the central audit counts it without filing an issue."""

from django.utils.safestring import mark_safe


def test_bio_is_rendered_as_given():
    bio = "<p>hello</p>"
    rendered = mark_safe(bio + "<hr>" if bio else "")
    assert str(rendered).startswith("<p>")


def test_preview_marks_the_fragment_safe(fragment="<b>x</b>"):
    assert mark_safe(fragment) == fragment
