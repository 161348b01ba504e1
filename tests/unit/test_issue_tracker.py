"""The shared issue tracker: marker, escaping, and its GitHub calls against the emulator."""

from __future__ import annotations

import re
import time

import pytest
from markdown_it import MarkdownIt

from tw_gates.core.github_client import GitHubClient
from tw_gates.core.markdown import escape_markdown, inline_code, plain_title
from tw_gates.issues.tracker import (
    MAX_BODY_CHARS,
    IssueTracker,
    Marker,
    TrackerError,
    fingerprint,
)

CENTRAL = "sec/central"
FP_A = "a" * 64
FP_B = "b" * 64
WRITER = "ghp_" + "W" * 36


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


# ------------------------------------------------------------------ marker and fingerprint


def test_marker_round_trips_and_is_read_from_the_first_line_only():
    marker = Marker("repo", "acme/widgets", FP_A)
    body = marker.render() + "\nhello"
    assert Marker.parse(body) == marker
    assert Marker.parse("intro\n" + marker.render()) is None  # quoted further down: not ours
    assert Marker.parse(marker.render().replace("v1", "v2")) is None
    assert Marker.parse(None) is None
    with pytest.raises(ValueError):
        Marker("repo", "acme/widgets -->", FP_A)
    with pytest.raises(ValueError):
        Marker("Repo", "acme/widgets", FP_A)
    with pytest.raises(ValueError):
        Marker("repo", "acme/widgets", "abc")


def test_fingerprint_ignores_order_but_not_content():
    items = [{"id": "f-1", "line": 3}, {"id": "f-2", "line": 4}]
    assert fingerprint(items) == fingerprint(list(reversed(items)))
    assert fingerprint(items) != fingerprint([{"id": "f-1", "line": 3}, {"id": "f-2", "line": 5}])
    assert re.fullmatch(r"[0-9a-f]{64}", fingerprint({"any": "object"}))


# ------------------------------------------------------------------ escaping

HOSTILE = [
    "@security-team please look",
    "<img src=x onerror=alert(1)> <script>x</script>",
    "[click](https://evil.example/phish) https://evil.example www.evil.example",
    "**bold** _it_ # heading | cell |",
    "<!-- tw-gates:v1 kind=repo key=x fingerprint=" + "0" * 64 + " -->",
    "a`b``c```d",
    "fixes #12 and a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0",
    "line\nbreak\r\n- [ ] injected checkbox",
    "\u202etxt.exe\u200b",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_inline_code_keeps_hostile_text_inert(text):
    code = inline_code(text)
    assert "\n" not in code and "\u202e" not in code and "\u200b" not in code
    html = render(f"- item {code} end")
    # Exactly one code element, no link, no raw HTML element from the text.
    assert html.count("<code>") == 1 and "<a " not in html and "<img" not in html and "<script" not in html
    assert "<!--" not in html.replace("&lt;!--", "")


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_markdown_keeps_hostile_text_inert(text):
    escaped = escape_markdown(text)
    html = render(escaped)
    assert "<a " not in html and "<img" not in html and "<script" not in html and "<strong>" not in html
    assert "<h1>" not in html and "<code>" not in html and "<input" not in html
    # Pings and references GitHub would add after rendering are broken by a zero-width space.
    visible = re.sub(r"<[^>]+>", "", html)
    assert not re.search(r"@\w", visible) and not re.search(r"#\d", visible)
    assert "://" not in visible and "www." not in visible


def test_inline_code_in_a_table_escapes_pipes_and_redacts_secrets():
    assert inline_code("a|b", in_table=True) == "`a\\|b`"
    html = render("| h |\n|---|\n| " + inline_code("a|b", in_table=True) + " |")
    assert html.count("<td>") == 1
    assert "ghp_" not in inline_code("token ghp_" + "Z" * 36)
    assert inline_code("") == "(empty)"
    assert inline_code("`x`") == "`` `x` ``"


def test_titles_are_one_line_without_pings():
    title = plain_title("tw-gates: @org/team\nsecond line " + "x" * 400)
    assert "\n" not in title and "@\u200borg" in title and len(title) <= 250
    assert plain_title("closes #12") == "closes #\u200b12"


# ------------------------------------------------------------------ against the emulator


@pytest.fixture
def emu(github_emulator):
    github_emulator.add_repo(CENTRAL, collaborators={"writer": "write", "reader": "read"})
    github_emulator.add_token(WRITER, login="writer", kind="user", scopes=["repo"])
    github_emulator.add_token("reader-token-1", login="reader", kind="user", scopes=["repo"])
    github_emulator.add_token("actions-write-1", kind="actions", repo_permissions={CENTRAL: {"issues": "write"}})
    github_emulator.add_token("actions-read-1", kind="actions", repo_permissions={CENTRAL: {"issues": "read"}})
    github_emulator.add_token("app-none-12345", kind="app", repo_permissions={"other/repo": {"issues": "write"}})
    github_emulator.add_token(
        "fg-read-12345", login="writer", kind="fine_grained", repo_permissions={CENTRAL: {"issues": "read"}}
    )
    github_emulator.add_token(
        "fg-write-1234", login="writer", kind="fine_grained", repo_permissions={CENTRAL: {"issues": "write"}}
    )
    return github_emulator


def tracker(emu, token=WRITER, **kw) -> IssueTracker:
    return IssueTracker(
        GitHubClient(token, emu.url, timeout=5, backoff_s=0.01, retries=kw.pop("retries", 2)), CENTRAL, **kw
    )


@pytest.mark.parametrize(
    "token, allowed",
    [
        (WRITER, True),
        ("actions-write-1", True),
        ("fg-write-1234", True),
        ("reader-token-1", False),
        ("actions-read-1", False),
        ("app-none-12345", False),
        ("fg-read-12345", False),
    ],
)
def test_write_probe_answers_for_every_token_kind_and_creates_the_label_once(emu, token, allowed):
    first = tracker(emu, token).check_write_access()
    assert first.allowed is allowed
    if allowed:
        assert first.label_created and emu.labels(CENTRAL) == ["tw-gates"]
        again = tracker(emu, token).check_write_access()
        assert again.allowed is True and not again.label_created
        assert [i for i in emu.issues(CENTRAL)] == []  # the probe never files anything
    else:
        assert first.error.category == "permission" and emu.labels(CENTRAL) == []
        assert "issues=write" in first.detail  # what to grant, from X-Accepted-GitHub-Permissions


def test_write_probe_says_unknown_when_github_fails(emu):
    emu.inject("server_error", path=r"/labels$", times=None, status=502)
    access = tracker(emu, retries=1).check_write_access()
    assert access.allowed is None and access.error.category == "unavailable"


def test_listing_pages_ignores_unmarked_issues_and_finds_duplicates(emu):
    for n in range(150):
        emu.add_issue(
            CENTRAL, f"filed {n}", body=Marker("repo", f"acme/r{n}", FP_A).render() + "\nbody", labels=["tw-gates"]
        )
    emu.add_issue(CENTRAL, "a person's issue", body="no marker", labels=["tw-gates"])
    emu.add_issue(CENTRAL, "unlabelled", body=Marker("repo", "acme/x", FP_A).render())
    emu.add_issue(CENTRAL, "closed", body=Marker("repo", "acme/y", FP_A).render(), labels=["tw-gates"], state="closed")
    dup = emu.add_issue(CENTRAL, "dup", body=Marker("repo", "acme/r3", FP_B).render(), labels=["tw-gates"])
    emu.clear_requests()
    t = tracker(emu)
    issues = t.load()
    assert t.listing_pages == 2 and emu.count() == 2  # 152 labelled open issues, 100 a page, nothing else
    assert len(issues) == 150 and t.find("repo", "acme/r3").number == 4
    assert [(k.number, d.number) for k, d in t.duplicates()] == [(4, dup)]
    assert t.find("repo", "acme/x") is None and t.find("repo", "acme/y") is None


def test_upsert_writes_only_on_change_and_close_comments_first(emu):
    t = tracker(emu)
    t.load()
    created = t.upsert("canary", "dashboard", title="canary @here", body="v1", fingerprint=FP_A)
    assert created.action == "created"
    number = created.issue.number
    issue = emu.issues(CENTRAL)[0]
    assert issue["body"].startswith(Marker("canary", "dashboard", FP_A).render() + "\n")
    assert [lb["name"] for lb in issue["labels"]] == ["tw-gates"] and "@\u200bhere" in issue["title"]

    fresh = tracker(emu)
    fresh.load()
    emu.clear_requests()
    assert fresh.upsert("canary", "dashboard", title="x", body="v1", fingerprint=FP_A).action == "unchanged"
    assert emu.count() == 0
    updated = fresh.upsert(
        "canary", "dashboard", title="canary v2", body="v2", fingerprint=FP_B, change_comment="what changed"
    )
    assert updated.action == "updated" and updated.commented
    assert [r.method for r in emu.requests] == ["PATCH", "POST"]
    assert emu.issues(CENTRAL)[0]["body"].endswith("\nv2") and emu.issues(CENTRAL)[0]["number"] == number
    assert [c["body"] for c in emu.comments(CENTRAL, number)] == ["what changed"]

    fresh.close(fresh.find("canary", "dashboard"), "done")
    assert emu.issues(CENTRAL)[0]["state"] == "closed" and fresh.find("canary", "dashboard") is None
    assert [c["body"] for c in emu.comments(CENTRAL, number)] == ["what changed", "done"]


def test_close_duplicates_keeps_the_oldest(emu):
    body = Marker("digest", "unregistered-hits", FP_A).render()
    first = emu.add_issue(CENTRAL, "d1", body=body, labels=["tw-gates"])
    second = emu.add_issue(CENTRAL, "d2", body=body, labels=["tw-gates"])
    t = tracker(emu)
    t.load()
    closed = t.close_duplicates()
    assert [(k.number, d.number) for k, d in closed] == [(first, second)]
    states = {i["number"]: (i["state"], i["state_reason"]) for i in emu.issues(CENTRAL)}
    assert states == {first: ("open", None), second: ("closed", "not_planned")}
    assert "Duplicate of #1" in emu.comments(CENTRAL, second)[0]["body"]


def test_errors_are_classified(emu):
    t = tracker(emu, "actions-read-1")
    t.load()
    with pytest.raises(TrackerError) as denied:
        t.upsert("repo", "acme/a", title="t", body="b", fingerprint=FP_A)
    assert denied.value.category == "permission" and denied.value.accepted_permissions == "issues=write"
    emu.inject("primary_rate_limit", path=r"/issues$", reset_in=3600)
    limited = IssueTracker(GitHubClient(WRITER, emu.url, timeout=5, retries=2, deadline=time.time() + 5), CENTRAL)
    with pytest.raises(TrackerError) as rate:
        limited.load()
    assert rate.value.category == "rate_limit"
    with pytest.raises(TrackerError) as bad:
        IssueTracker(GitHubClient(WRITER, emu.url), CENTRAL, label="a,b")
    assert bad.value.category == "rejected"


def test_an_oversized_body_is_cut_at_a_line_break(emu):
    t = tracker(emu)
    t.load()
    long_body = "\n".join(f"- line {n} {inline_code('@x ' * 20)}" for n in range(2000))
    t.upsert("canary", "big", title="big", body=long_body, fingerprint=FP_A)
    body = emu.issues(CENTRAL)[0]["body"]
    assert len(body) <= MAX_BODY_CHARS and body.rstrip().endswith("_(truncated to GitHub's size limit)_")
    last_item = [line for line in body.splitlines() if line.startswith("- line")][-1]
    assert last_item.endswith("`")  # no code span left open
