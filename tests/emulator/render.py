"""State objects → JSON shaped like GitHub's REST responses (the fields PyGithub reads)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

from . import access
from .state import Artifact, Comment, Issue, Label, Protection, RateBucket, Repo, Ruleset, State, Token, WorkflowRun


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(prefix: str, ident: int | str) -> str:
    return prefix + "_" + base64.b64encode(f"emu:{ident}".encode()).decode().rstrip("=")


class Renderer:
    def __init__(self, state: State, base: str, html_base: str) -> None:
        self.state, self.base, self.html = state, base, html_base

    def user(self, login: str) -> dict[str, Any]:
        uid = self.state.user_id(login)
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": f"{self.base}/users/{login}",
            "html_url": f"{self.html}/{login}",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "site_admin": False,
        }

    def repo(self, repo: Repo, token: Token | None = None) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}"
        data = {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "owner": self.user(repo.owner),
            "html_url": f"{self.html}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": url,
            "archived": False,
            "disabled": False,
            "default_branch": repo.default_branch,
            "has_issues": True,
            "open_issues_count": sum(1 for i in repo.issues.values() if i.state == "open"),
            "issues_url": url + "/issues{/number}",
            "labels_url": url + "/labels{/name}",
            "branches_url": url + "/branches{/branch}",
            "collaborators_url": url + "/collaborators{/collaborator}",
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
            "pushed_at": iso(repo.created_at),
        }
        perms = access.repo_permissions_object(token, repo) if token else None
        if perms is not None:
            data["permissions"] = perms
        return data

    def label(self, repo: Repo, label: Label) -> dict[str, Any]:
        return {
            "id": label.id,
            "node_id": node_id("LA", label.id),
            "url": f"{self.base}/repos/{repo.full_name}/labels/{label.name}",
            "name": label.name,
            "color": label.color,
            "default": False,
            "description": label.description,
        }

    def issue(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/issues/{issue.number}"
        labels = [self.label(repo, lb) for lb in (repo.label(n) for n in issue.labels) if lb]
        assignees = [self.user(a) for a in issue.assignees]
        return {
            "url": url,
            "repository_url": f"{self.base}/repos/{repo.full_name}",
            "labels_url": url + "/labels{/name}",
            "comments_url": url + "/comments",
            "events_url": url + "/events",
            "html_url": f"{self.html}/{repo.full_name}/issues/{issue.number}",
            "id": issue.id,
            "node_id": node_id("I", issue.id),
            "number": issue.number,
            "title": issue.title,
            "user": self.user(issue.user),
            "labels": labels,
            "state": issue.state,
            "locked": False,
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees,
            "milestone": None,
            "comments": len(issue.comments),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(issue.closed_at),
            "author_association": self._association(repo, issue.user),
            "active_lock_reason": None,
            "body": issue.body,
            "state_reason": issue.state_reason,
            "performed_via_github_app": None,
        }

    def comment(self, repo: Repo, issue: Issue, comment: Comment) -> dict[str, Any]:
        return {
            "id": comment.id,
            "node_id": node_id("IC", comment.id),
            "url": f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}",
            "html_url": f"{self.html}/{repo.full_name}/issues/{issue.number}#issuecomment-{comment.id}",
            "issue_url": f"{self.base}/repos/{repo.full_name}/issues/{issue.number}",
            "body": comment.body,
            "user": self.user(comment.user),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": self._association(repo, comment.user),
            "performed_via_github_app": None,
        }

    def branch(self, repo: Repo, name: str) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/branches/{name}"
        sha = hashlib.sha1(f"{repo.full_name}:{name}".encode()).hexdigest()
        return {
            "name": name,
            "commit": {"sha": sha, "url": f"{self.base}/repos/{repo.full_name}/commits/{sha}"},
            "_links": {"self": url, "html": f"{self.html}/{repo.full_name}/tree/{name}"},
            "protected": name in repo.protections,
            "protection_url": url + "/protection",
        }

    def required_status_checks(self, repo: Repo, branch: str, p: Protection) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/branches/{branch}/protection/required_status_checks"
        return {
            "url": url,
            "strict": p.strict,
            "contexts": list(p.contexts),
            "checks": [{"context": c, "app_id": None} for c in p.contexts],
            "contexts_url": url + "/contexts",
        }

    def protection(self, repo: Repo, branch: str, p: Protection) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/branches/{branch}/protection"
        return {
            "url": url,
            "required_status_checks": self.required_status_checks(repo, branch, p),
            "enforce_admins": {"url": url + "/enforce_admins", "enabled": p.enforce_admins},
            "required_linear_history": {"enabled": False},
            "allow_force_pushes": {"enabled": False},
            "allow_deletions": {"enabled": False},
            "block_creations": {"enabled": False},
            "required_conversation_resolution": {"enabled": False},
            "lock_branch": {"enabled": False},
            "allow_fork_syncing": {"enabled": False},
        }

    def ruleset_rules(self, rs: Ruleset) -> list[dict[str, Any]]:
        rules = list(rs.extra_rules)
        if rs.required_checks:
            rules.append(
                {
                    "type": "required_status_checks",
                    "parameters": {
                        "strict_required_status_checks_policy": rs.strict,
                        "do_not_enforce_on_create": False,
                        "required_status_checks": [dict(c) for c in rs.required_checks],
                    },
                }
            )
        return rules

    def ruleset(self, repo: Repo, rs: Ruleset, *, full: bool = True) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/rulesets/{rs.id}"
        data: dict[str, Any] = {
            "id": rs.id,
            "name": rs.name,
            "target": "branch",
            "source_type": "Repository",
            "source": repo.full_name,
            "enforcement": rs.enforcement,
            "node_id": node_id("RRS", rs.id),
            "_links": {"self": {"href": url}, "html": {"href": f"{self.html}/{repo.full_name}/rules/{rs.id}"}},
            "created_at": iso(rs.created_at),
            "updated_at": iso(rs.created_at),
        }
        if full:
            data.update(
                {
                    "bypass_actors": [],
                    "current_user_can_bypass": "never",
                    "conditions": {"ref_name": {"include": list(rs.branch_patterns), "exclude": []}},
                    "rules": self.ruleset_rules(rs),
                }
            )
        return data

    def run(self, repo: Repo, run: WorkflowRun) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/actions/runs/{run.id}"
        slim_repo = self.slim_repo(repo.id, repo.full_name)
        head_repo = slim_repo if run.head_repository is None else self.fork(run.head_repository)
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("WFR", run.id),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.name,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": int(hashlib.sha1(run.path.encode()).hexdigest()[:7], 16),
            "url": url,
            "html_url": f"{self.html}/{repo.full_name}/actions/runs/{run.id}",
            "created_at": iso(run.created_at),
            "updated_at": iso(run.created_at),
            "run_started_at": iso(run.created_at),
            "run_attempt": run.run_attempt,
            "jobs_url": url + "/jobs",
            "logs_url": url + "/logs",
            "artifacts_url": url + "/artifacts",
            "cancel_url": url + "/cancel",
            "rerun_url": url + "/rerun",
            "check_suite_url": url + "/check-suite",
            "workflow_url": f"{self.base}/repos/{repo.full_name}/actions/workflows/{run.path.rsplit('/', 1)[-1]}",
            "pull_requests": [],
            "repository": slim_repo,
            "head_repository": head_repo,
        }

    def slim_repo(self, repo_id: int, full_name: str) -> dict[str, Any]:
        owner, name = full_name.split("/", 1)
        return {
            "id": repo_id,
            "name": name,
            "full_name": full_name,
            "url": f"{self.base}/repos/{full_name}",
            "owner": self.user(owner),
        }

    def fork(self, full_name: str) -> dict[str, Any]:
        """A head repository the emulator does not hold (a fork): a stable id from its name."""
        return self.slim_repo(int(hashlib.sha1(full_name.encode()).hexdigest()[:7], 16), full_name)

    def artifact(self, repo: Repo, art: Artifact) -> dict[str, Any]:
        url = f"{self.base}/repos/{repo.full_name}/actions/artifacts/{art.id}"
        run = repo.runs[art.run_id]
        blob = art.zip_bytes()
        return {
            "id": art.id,
            "node_id": node_id("MDg", art.id),
            "name": art.name,
            "size_in_bytes": len(blob),
            "url": url,
            "archive_download_url": url + "/zip",
            "expired": art.expired,
            "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
            "created_at": iso(art.created_at),
            "updated_at": iso(art.created_at),
            "expires_at": iso(art.created_at + 90 * 86400) if not art.expired else iso(art.created_at),
            "workflow_run": {
                "id": run.id,
                "repository_id": repo.id,
                "head_repository_id": repo.id if run.head_repository is None else self.fork(run.head_repository)["id"],
                "head_branch": run.head_branch,
                "head_sha": run.head_sha,
            },
        }

    @staticmethod
    def rate(name: str, bucket: RateBucket) -> dict[str, Any]:
        return {
            "limit": bucket.limit,
            "remaining": bucket.remaining,
            "reset": int(bucket.reset_at),
            "used": bucket.used,
            "resource": name,
        }

    @staticmethod
    def _association(repo: Repo, login: str) -> str:
        role = repo.role_of(login)
        if login.lower() == repo.owner.lower():
            return "OWNER"
        return "COLLABORATOR" if role else "NONE"
