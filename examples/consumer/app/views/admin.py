"""Admin pages (Django)."""

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe


def token_preview(request, token_html: str) -> str:
    return render_to_string("admin/preview.html", {"preview": mark_safe(token_html)})
