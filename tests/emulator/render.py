"""State objects → JSON shaped like GitHub's REST responses (the fields PyGithub reads)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime, timezone
from typing import Any

from . import access
from .state import (
    DEFAULT_LOGINS,
    Artifact,
    Comment,
    Issue,
    Label,
    Protection,
    RateBucket,
    Repo,
    Ruleset,
    State,
    Token,
    WorkflowRun,
)


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
        """GitHub's ``simple-user``: the user object embedded everywhere."""
        uid = self.state.user_id(login)
        url = f"{self.base}/users/{login}"
        return {
            "login": login,
            "id": uid,
            "node_id": node_id("U", uid),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{uid}?v=4",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.html}/{login}",
            "followers_url": url + "/followers",
            "following_url": url + "/following{/other_user}",
            "gists_url": url + "/gists{/gist_id}",
            "starred_url": url + "/starred{/owner}{/repo}",
            "subscriptions_url": url + "/subscriptions",
            "organizations_url": url + "/orgs",
            "repos_url": url + "/repos",
            "events_url": url + "/events{/privacy}",
            "received_events_url": url + "/received_events",
            "type": "Bot" if login.endswith("[bot]") else "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def full_user(self, login: str, *, private: bool = False) -> dict[str, Any]:
        """``public-user`` (GET /users/{login}), or ``private-user`` (GET /user, the token's own)."""
        stamp = iso(self.state.epoch)
        data = {
            **self.user(login),
            "name": login,
            "company": None,
            "blog": "",
            "location": None,
            "email": None,
            "hireable": None,
            "bio": None,
            "twitter_username": None,
            "public_repos": sum(1 for r in self.state.repos.values() if r.owner == login and not r.private),
            "public_gists": 0,
            "followers": 0,
            "following": 0,
            "created_at": stamp,
            "updated_at": stamp,
        }
        if private:
            data.update(
                user_view_type="private",
                private_gists=0,
                total_private_repos=sum(1 for r in self.state.repos.values() if r.owner == login and r.private),
                owned_private_repos=sum(1 for r in self.state.repos.values() if r.owner == login and r.private),
                disk_usage=0,
                collaborators=0,
                two_factor_authentication=True,
            )
        return data

    def minimal_repo(self, repo: Repo) -> dict[str, Any]:
        """GitHub's ``minimal-repository`` (embedded in workflow runs)."""
        url = f"{self.base}/repos/{repo.full_name}"
        links = {
            name: url + suffix
            for name, suffix in (
                ("archive_url", "/{archive_format}{/ref}"),
                ("assignees_url", "/assignees{/user}"),
                ("blobs_url", "/git/blobs{/sha}"),
                ("branches_url", "/branches{/branch}"),
                ("collaborators_url", "/collaborators{/collaborator}"),
                ("comments_url", "/comments{/number}"),
                ("commits_url", "/commits{/sha}"),
                ("compare_url", "/compare/{base}...{head}"),
                ("contents_url", "/contents/{+path}"),
                ("contributors_url", "/contributors"),
                ("deployments_url", "/deployments"),
                ("downloads_url", "/downloads"),
                ("events_url", "/events"),
                ("forks_url", "/forks"),
                ("git_commits_url", "/git/commits{/sha}"),
                ("git_refs_url", "/git/refs{/sha}"),
                ("git_tags_url", "/git/tags{/sha}"),
                ("hooks_url", "/hooks"),
                ("issue_comment_url", "/issues/comments{/number}"),
                ("issue_events_url", "/issues/events{/number}"),
                ("issues_url", "/issues{/number}"),
                ("keys_url", "/keys{/key_id}"),
                ("labels_url", "/labels{/name}"),
                ("languages_url", "/languages"),
                ("merges_url", "/merges"),
                ("milestones_url", "/milestones{/number}"),
                ("notifications_url", "/notifications{?since,all,participating}"),
                ("pulls_url", "/pulls{/number}"),
                ("releases_url", "/releases{/id}"),
                ("stargazers_url", "/stargazers"),
                ("statuses_url", "/statuses/{sha}"),
                ("subscribers_url", "/subscribers"),
                ("subscription_url", "/subscription"),
                ("tags_url", "/tags"),
                ("teams_url", "/teams"),
                ("trees_url", "/git/trees{/sha}"),
            )
        }
        return {
            "id": repo.id,
            "node_id": node_id("R", repo.id),
            "name": repo.name,
            "full_name": repo.full_name,
            "private": repo.private,
            "owner": self.user(repo.owner),
            "html_url": f"{self.html}/{repo.full_name}",
            "description": None,
            "fork": False,
            "url": url,
            **links,
        }

    def repo(self, repo: Repo, token: Token | None = None) -> dict[str, Any]:
        """GitHub's ``full-repository`` (GET /repos/{owner}/{repo})."""
        open_issues = sum(1 for i in repo.issues.values() if i.state == "open")
        host = self.html.split("://", 1)[-1]
        data = {
            **self.minimal_repo(repo),
            "git_url": f"git://{host}/{repo.full_name}.git",
            "ssh_url": f"git@{host}:{repo.full_name}.git",
            "clone_url": f"{self.html}/{repo.full_name}.git",
            "svn_url": f"{self.html}/{repo.full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks": 0,
            "forks_count": 0,
            "stargazers_count": 0,
            "watchers": 0,
            "watchers_count": 0,
            "size": 0,
            "default_branch": repo.default_branch,
            "open_issues": open_issues,
            "open_issues_count": open_issues,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private" if repo.private else "public",
            "license": None,
            "allow_forking": True,
            "web_commit_signoff_required": False,
            "network_count": 0,
            "subscribers_count": 0,
            "pushed_at": iso(repo.created_at),
            "created_at": iso(repo.created_at),
            "updated_at": iso(repo.created_at),
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
            "timeline_url": url + "/timeline",
            "reactions": self._reactions(url),
        }

    def search_item(self, repo: Repo, issue: Issue) -> dict[str, Any]:
        """``issue-search-result-item``: an issue as search lists it (no null body)."""
        item = {**self.issue(repo, issue), "score": 1.0}
        if item["body"] is None:
            del item["body"]
        return item

    @staticmethod
    def _reactions(url: str) -> dict[str, Any]:
        kinds = ("+1", "-1", "laugh", "confused", "heart", "hooray", "eyes", "rocket")
        return {"url": url + "/reactions", "total_count": 0, **dict.fromkeys(kinds, 0)}

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
            "reactions": self._reactions(f"{self.base}/repos/{repo.full_name}/issues/comments/{comment.id}"),
        }

    def branch(self, repo: Repo, name: str) -> dict[str, Any]:
        """GitHub's ``branch-with-protection``: its ``protection`` summarises the classic
        branch protection for every reader (no admin right needed)."""
        url = f"{self.base}/repos/{repo.full_name}/branches/{name}"
        sha = hashlib.sha1(f"{repo.full_name}:{name}".encode(), usedforsecurity=False).hexdigest()
        commit_url = f"{self.base}/repos/{repo.full_name}/commits/{sha}"
        person = {"name": repo.owner, "email": f"{repo.owner}@users.noreply.github.com", "date": iso(repo.created_at)}
        p = repo.protections.get(name)
        status = {
            "enforcement_level": ("everyone" if p.enforce_admins else "non_admins") if p and p.contexts else "off",
            "contexts": list(p.contexts) if p else [],
            "checks": [{"context": c, "app_id": None} for c in p.contexts] if p else [],
        }
        return {
            "name": name,
            "commit": {
                "sha": sha,
                "node_id": node_id("C", sha),
                "url": commit_url,
                "html_url": f"{self.html}/{repo.full_name}/commit/{sha}",
                "comments_url": commit_url + "/comments",
                "commit": {
                    "url": f"{self.base}/repos/{repo.full_name}/git/commits/{sha}",
                    "author": person,
                    "committer": person,
                    "message": "Initial commit",
                    "comment_count": 0,
                    "tree": {"sha": sha, "url": f"{self.base}/repos/{repo.full_name}/git/trees/{sha}"},
                },
                "author": self.user(repo.owner),
                "committer": self.user(repo.owner),
                "parents": [],
            },
            "_links": {"self": url, "html": f"{self.html}/{repo.full_name}/tree/{name}"},
            "protected": p is not None,
            "protection": {"enabled": p is not None, "required_status_checks": status},
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
                        # integration_id is left out, not null, when any app may report the check
                        "required_status_checks": [
                            {k: v for k, v in c.items() if v is not None} for c in rs.required_checks
                        ],
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
        slim_repo = self.minimal_repo(repo)
        head_repo = slim_repo if run.head_repository is None else self.fork(run.head_repository)
        actor = self.user(DEFAULT_LOGINS["actions"] if run.event == "schedule" else repo.owner)
        suite = int(hashlib.sha1(f"suite:{run.id}".encode(), usedforsecurity=False).hexdigest()[:8], 16)
        return {
            "id": run.id,
            "name": run.name,
            "node_id": node_id("WFR", run.id),
            "check_suite_id": suite,
            "check_suite_node_id": node_id("CS", suite),
            "head_branch": run.head_branch,
            "head_sha": run.head_sha,
            "path": run.path,
            "display_title": run.name,
            "run_number": run.run_number,
            "event": run.event,
            "status": run.status,
            "conclusion": run.conclusion,
            "workflow_id": int(hashlib.sha1(run.path.encode(), usedforsecurity=False).hexdigest()[:7], 16),
            "url": url,
            "html_url": f"{self.html}/{repo.full_name}/actions/runs/{run.id}",
            "created_at": iso(run.created_at),
            "updated_at": iso(run.created_at),
            "run_started_at": iso(run.created_at),
            "run_attempt": run.run_attempt,
            "actor": actor,
            "triggering_actor": actor,
            "referenced_workflows": [],
            "jobs_url": url + "/jobs",
            "logs_url": url + "/logs",
            "artifacts_url": url + "/artifacts",
            "cancel_url": url + "/cancel",
            "rerun_url": url + "/rerun",
            "previous_attempt_url": None,
            "check_suite_url": f"{self.base}/repos/{repo.full_name}/check-suites/{suite}",
            "workflow_url": f"{self.base}/repos/{repo.full_name}/actions/workflows/{run.path.rsplit('/', 1)[-1]}",
            "pull_requests": [],
            "head_commit": {
                "id": run.head_sha,
                "tree_id": run.head_sha,
                "message": run.name,
                "timestamp": iso(run.created_at),
                "author": {"name": repo.owner, "email": f"{repo.owner}@users.noreply.github.com"},
                "committer": {"name": "GitHub", "email": "noreply@github.com"},
            },
            "repository": slim_repo,
            "head_repository": head_repo,
            "head_repository_id": head_repo["id"],
        }

    def fork(self, full_name: str) -> dict[str, Any]:
        """A head repository the emulator does not hold (a fork): a stable id from its name."""
        fork_id = int(hashlib.sha1(full_name.encode(), usedforsecurity=False).hexdigest()[:7], 16)
        return self.minimal_repo(Repo(id=fork_id, full_name=full_name))

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
