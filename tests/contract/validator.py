"""GitHub's REST description as a judge of one HTTP exchange.

``Contract`` loads the pinned subset (``api.github.com.subset.json``, see
``extract_openapi.py``) and checks a request and its response:

* the request: its operation is in the description (method + path template);
  every query parameter is one the operation defines, with a valid value; a JSON
  body is valid against the operation's request body, and a body field the
  description does not define is an error (GitHub ignores unknown fields, so a
  misspelt one would silently do nothing); a request tw-gates itself sent (its
  User-Agent starts ``tw-gates/``) carries ``X-GitHub-Api-Version: 2022-11-28`` and
  ``Accept: application/vnd.github+json``;
* the response: its status is one the operation documents, or one GitHub may send
  to any request (304 to a conditional GET, 401, 403, 404, 422, 429, 5xx) with
  GitHub's error body; a documented JSON body is valid against its schema.

The description is OpenAPI 3.0 (``nullable``); schemas are turned into JSON Schema
(draft 7, whose ``$ref`` semantics match OpenAPI 3.0's) and checked with
``jsonschema``. Formats (``uri``, ``date-time``) are not checked.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from tests.emulator.traffic import Exchange

SUBSET = Path(__file__).resolve().parent / "api.github.com.subset.json"
API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
PRODUCT_AGENT = "tw-gates/"
_BASE = "urn:github-rest-subset"
# Statuses GitHub may answer to any request (rate limits, auth, outages), documented
# for the API as a whole rather than per operation.
GENERIC_STATUSES = {401, 403, 404, 422, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Violation:
    operation: str  # "GET /repos/{owner}/{repo}" or the raw "GET /path" when unknown
    where: str  # request | response
    message: str

    def __str__(self) -> str:
        return f"{self.operation}: {self.where}: {self.message}"


@dataclass
class Operation:
    method: str
    template: str
    regex: re.Pattern[str]
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        return f"{self.method.upper()} {self.template}"


def _nullable(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema, ``#/`` refs made absolute."""
    if isinstance(node, list):
        return [_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _nullable(value) for key, value in node.items() if key != "nullable"}
    if isinstance(out.get("$ref"), str) and out["$ref"].startswith("#/"):
        out["$ref"] = _BASE + out["$ref"]
    if node.get("nullable") is True:
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if isinstance(out.get("type"), str) and "$ref" not in out:
            out["type"] = [out["type"], "null"]
        elif "type" not in out:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def _closed(schema: dict[str, Any]) -> dict[str, Any]:
    """A request schema in which an object allows only the properties it names."""
    schema = copy.deepcopy(schema)
    if schema.get("type") == "object" and "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False
    for key in ("oneOf", "anyOf"):
        if key in schema:
            schema[key] = [_closed(branch) for branch in schema[key]]
    return schema


def _template_regex(template: str) -> re.Pattern[str]:
    out, pos = [], 0
    for match in re.finditer(r"\{(\w+)\}", template):
        out.append(re.escape(template[pos : match.start()]))
        # A branch name may hold slashes; every other parameter is one segment.
        out.append(r"(.+?)" if match.group(1) == "branch" else r"([^/]+)")
        pos = match.end()
    out.append(re.escape(template[pos:]))
    return re.compile("^" + "".join(out) + "$")


class Contract:
    def __init__(self, path: Path = SUBSET) -> None:
        raw = json.loads(path.read_text())
        self.source: dict[str, Any] = raw.get("x-source", {})
        self.document = _nullable(raw)
        self._registry = Registry().with_resource(_BASE, Resource(contents=self.document, specification=DRAFT7))
        self.operations = [
            Operation(method, template, _template_regex(template), spec)
            for template, item in self.document["paths"].items()
            for method, spec in item.items()
        ]
        # The most literal template first: /branches/{branch}/protection before /branches/{branch}.
        self.operations.sort(key=lambda op: (-len(re.sub(r"\{\w+\}", "", op.template)), op.template))
        self._validators: dict[str, Draft7Validator] = {}

    @cached_property
    def names(self) -> set[str]:
        return {op.name for op in self.operations}

    def match(self, method: str, path: str) -> Operation | None:
        path = re.sub(r"^/api/v3(?=/)", "", path)
        for op in self.operations:
            if op.method == method.lower() and op.regex.match(path):
                return op
        return None

    # ----------------------------------------------------------------- schemas

    def _resolve(self, node: Any) -> Any:
        """Follow ``$ref`` (parameters, responses, schemas) to what it names."""
        for _ in range(20):
            if not (isinstance(node, dict) and isinstance(node.get("$ref"), str)):
                break
            pointer = node["$ref"].partition("#/")[2]
            node = self.document
            for part in pointer.split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def _errors(self, key: str, schema: dict[str, Any], instance: Any) -> list[str]:
        validator = self._validators.get(key)
        if validator is None:
            validator = self._validators[key] = Draft7Validator(schema, registry=self._registry)
        found = []
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            where = "".join("[*]" if isinstance(p, int) else f".{p}" for p in error.absolute_path) or "(root)"
            found.append(f"{where}: {_short(error.message)}")
        return found

    # ----------------------------------------------------------------- requests

    def check(self, ex: Exchange) -> list[Violation]:
        op = self.match(ex.method, ex.path)
        if op is None:
            return [Violation(f"{ex.method} {ex.path}", "request", "no such operation in GitHub's description")]
        found = [Violation(op.name, "request", m) for m in self._request(op, ex)]
        found += [Violation(op.name, "response", m) for m in self._response(op, ex)]
        return found

    def _parameters(self, op: Operation, where: str) -> dict[str, dict[str, Any]]:
        params = {}
        for param in op.spec.get("parameters", []):
            param = self._resolve(param)
            if param.get("in") == where:
                params[param["name"]] = param
        return params

    def _request(self, op: Operation, ex: Exchange) -> list[str]:
        problems = []
        defined = self._parameters(op, "query")
        for name, value in ex.query:
            param = defined.get(name)
            if param is None:
                problems.append(f"query parameter {name!r} is not defined for this operation")
                continue
            schema = param.get("schema", {})
            for message in self._errors(f"{op.name} ?{name}", schema, _coerce(value, schema)):
                problems.append(f"query parameter {name}={value!r}: {message}")
        problems += self._request_body(op, ex)
        if ex.headers.get("user-agent", "").startswith(PRODUCT_AGENT):
            if ex.headers.get("x-github-api-version") != API_VERSION:
                problems.append(f"no X-GitHub-Api-Version: {API_VERSION} header")
            if MEDIA_TYPE not in ex.headers.get("accept", ""):
                problems.append(f"no Accept: {MEDIA_TYPE} header")
        return problems

    def _request_body(self, op: Operation, ex: Exchange) -> list[str]:
        spec = op.spec.get("requestBody")
        if not ex.body.strip():
            return ["the request body is required"] if spec and spec.get("required") else []
        if spec is None:
            return ["a body was sent to an operation that takes none"]
        try:
            body = json.loads(ex.body)
        except ValueError:
            return ["the request body is not JSON"]
        schema = spec.get("content", {}).get("application/json", {}).get("schema")
        if schema is None:
            return []
        closed = _closed(self._resolve(schema))
        return [f"body {m}" for m in self._errors(f"{op.name} body", closed, body)]

    # ----------------------------------------------------------------- responses

    def _response(self, op: Operation, ex: Exchange) -> list[str]:
        responses = op.spec.get("responses", {})
        spec = responses.get(str(ex.status))
        if spec is None:
            if ex.status == 304 and op.method == "get" and ex.headers.get("if-none-match"):
                return [] if not ex.response_body else ["a 304 with a body"]
            if ex.status not in GENERIC_STATUSES:
                return [f"status {ex.status} is not one GitHub documents for this operation ({', '.join(responses)})"]
            spec = {"content": {"application/json": {"schema": {"$ref": _BASE + "#/components/schemas/basic-error"}}}}
        spec = self._resolve(spec)
        content = spec.get("content") or {}
        schema = (content.get("application/json") or next(iter(content.values()), {})).get("schema")
        if schema is None:
            empty = ex.response_body in (None, b"", "")
            return [] if empty else [f"status {ex.status} documents no body, but one was sent"]
        if isinstance(ex.response_body, bytes):
            return [f"status {ex.status}: the body is not JSON"]
        return self._errors(f"{op.name} {ex.status}", schema, ex.response_body)


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    if kind == "integer" and re.fullmatch(r"-?\d+", value):
        return int(value)
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    return value


def _short(message: str) -> str:
    return message if len(message) <= 200 else message[:197] + "..."
