"""User profile page. Renders the user's bio, which is Markdown."""

from flask import Flask, render_template_string, request

from app.util.tokens import parse_tokens

app = Flask(__name__)


@app.route("/profile/<name>")
def profile(name: str) -> str:
    bio = request.args.get("bio", "")
    html = "".join(token.html for token in parse_tokens(bio))
    # Unregistered renderer: the bio becomes part of the template source.
    return render_template_string("<h1>{{ name }}</h1>" + html, name=name)
