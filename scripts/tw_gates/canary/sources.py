"""Where the canary's checks come from.

* Prometheus: one ``query_range`` per metric over the whole window (step =
  interval), sent concurrently. The window is rebuilt from Prometheus on every
  run, so a missed cron run loses nothing.
* A metrics file: one check per run. The checks live in the canary's state
  (``state``: kept in the dashboard issue, or a local file).

Times are epoch seconds aligned on the interval; a check is identified by the
start of the interval it describes (its bucket)."""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ConfigDict, Field
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from tw_gates import DATA_DIR
from tw_gates.core.errors import ExternalServiceError, UsageError
from tw_gates.core.fsio import load_model
from tw_gates.core.redact import REDACTOR
from tw_gates.schemas.canary import ALL_METRICS, CanaryMetrics

MAX_INPUT_BYTES = 1024 * 1024
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS_PER_QUERY = 11_000
DEFAULT_QUERIES = DATA_DIR / "canary_queries.yml"


@dataclass
class Observation:
    """The metric values measured over one interval [bucket, bucket + interval).
    A value is None when the source had nothing for it."""

    bucket: int
    values: dict[str, float | None] = field(default_factory=dict)


def bucket_of(epoch: float, interval_s: int) -> int:
    return math.floor(epoch / interval_s) * interval_s


# -- the metrics file source ----------------------------------------------------------------


def observation_from_metrics(metrics: CanaryMetrics, bucket: int) -> Observation:
    return Observation(bucket, {name: float(getattr(metrics, name)) for name in ALL_METRICS})


# -- the Prometheus source ------------------------------------------------------------------


class QuerySet(BaseModel):
    """PromQL for each metric (``canary_queries.yml``)."""

    model_config = ConfigDict(extra="forbid")

    vars: dict[str, str] = Field(default_factory=dict)
    queries: dict[str, str]

    def render(self, interval_s: int) -> dict[str, str]:
        """Each metric's PromQL with {{interval}} and the vars filled in."""
        missing = [m for m in ALL_METRICS if not (self.queries.get(m) or "").strip()]
        if missing:
            raise UsageError(f"queries file has no query for: {', '.join(missing)}")
        unknown_metrics = sorted(set(self.queries) - set(ALL_METRICS))
        if unknown_metrics:
            raise UsageError(
                f"queries file names unknown metric(s): {', '.join(unknown_metrics)} (known: {', '.join(ALL_METRICS)})"
            )
        values = {**self.vars, "interval": f"{interval_s}s"}
        rendered = {}
        for metric in ALL_METRICS:

            def fill(match: re.Match[str], metric: str = metric) -> str:
                key = match.group(1)
                if key not in values:
                    raise UsageError(f"query for {metric} uses {{{{{key}}}}}, which is not in the queries file's vars")
                return values[key]

            rendered[metric] = _PLACEHOLDER.sub(fill, self.queries[metric]).strip()
        return rendered


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def load_queries(path: Path | None) -> QuerySet:
    return load_model(path or DEFAULT_QUERIES, QuerySet, "queries file", max_bytes=MAX_INPUT_BYTES)


class PrometheusSource:
    """Range queries against the Prometheus HTTP API (also Thanos, Mimir,
    VictoriaMetrics: any server with ``/api/v1/query_range``)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        backoff_s: float = 0.5,
    ) -> None:
        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise UsageError(f"--prometheus must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        self.queries_sent = 0
        self.warnings: list[str] = []
        self.session = requests.Session()
        # Retries for a restart or an overloaded server; a refused connection
        # is retried too (quickly) before we give up with exit 1.
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            backoff_factor=backoff_s,
            status_forcelist=(429, 502, 503, 504),
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry, pool_maxsize=len(ALL_METRICS))
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["Accept"] = "application/json"
        # requests sends user:password@ from the URL as basic auth; keep the password out of messages.
        REDACTOR.register(urlsplit(self.base_url).password)
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.session.close()

    def query_range(self, metric: str, promql: str, start: int, end: int, step: int) -> dict[int, float | None]:
        """{timestamp: value} of the one series ``promql`` returns (NaN -> None)."""
        with self._lock:
            self.queries_sent += 1
        try:
            # POST: a long PromQL does not run into URL length limits of proxies.
            response = self.session.post(
                f"{self.base_url}/api/v1/query_range",
                data={"query": promql, "start": str(start), "end": str(end), "step": f"{step}s"},
                timeout=self.timeout_s,
            )
        except requests.RequestException as exc:
            raise ExternalServiceError(f"Prometheus at {self.base_url} unreachable: {_short(exc)}") from None
        payload = _json_or_none(response)
        if response.status_code != 200 or not isinstance(payload, dict) or payload.get("status") != "success":
            detail = ""
            if isinstance(payload, dict) and payload.get("error"):
                detail = f" ({payload.get('errorType', 'error')}: {payload['error']})"
            if response.status_code in (400, 422):
                raise UsageError(f"Prometheus rejected the query for {metric}{detail}: {promql}")
            raise ExternalServiceError(
                f"Prometheus at {self.base_url} answered HTTP {response.status_code} to the query for {metric}{detail}"
            )
        for warning in payload.get("warnings") or []:
            with self._lock:
                self.warnings.append(f"Prometheus warning for {metric}: {warning}")
        data = payload.get("data") or {}
        if data.get("resultType") != "matrix":
            raise UsageError(f"query for {metric} must return a range vector (matrix), got {data.get('resultType')!r}")
        series = data.get("result") or []
        if len(series) > 1:
            labels = ", ".join(json.dumps(s.get("metric", {}), sort_keys=True) for s in series[:3])
            raise UsageError(
                f"query for {metric} returned {len(series)} series ({labels}...); aggregate it to one, "
                "e.g. sum(...) or histogram_quantile(q, sum by (le) (...))"
            )
        points: dict[int, float | None] = {}
        for timestamp, raw in (series[0].get("values") or []) if series else []:
            value = float(raw)
            points[round(float(timestamp))] = value if math.isfinite(value) else None
        return points

    def fetch(
        self, queries: Mapping[str, str], *, window_start: int, window_end: int, interval_s: int
    ) -> dict[int, Observation]:
        """Every interval of [window_start, window_end) from one range query per
        metric. The point at T describes the interval (T - step, T], so the
        points are the interval ends."""
        points = (window_end - window_start) // interval_s
        if points > MAX_POINTS_PER_QUERY:
            raise UsageError(
                f"window/interval = {points} points per query; Prometheus allows at most "
                f"{MAX_POINTS_PER_QUERY}: use a longer --interval"
            )
        first, last = window_start + interval_s, window_end
        with ThreadPoolExecutor(max_workers=len(queries)) as pool:
            futures = {
                metric: pool.submit(self.query_range, metric, promql, first, last, interval_s)
                for metric, promql in queries.items()
            }
            results = {metric: future.result() for metric, future in futures.items()}
        observations: dict[int, Observation] = {}
        for metric, series in results.items():
            for end_ts, value in series.items():
                bucket = end_ts - interval_s
                if window_start <= bucket < window_end and value is not None:
                    observations.setdefault(bucket, Observation(bucket, {m: None for m in ALL_METRICS}))
                    observations[bucket].values[metric] = value
        return observations


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _short(exc: Exception) -> str:
    text = str(exc)
    # urllib3 nests the cause in a long repr; keep the part a person needs.
    match = re.search(r"\[Errno -?\d+\] [^')\"]+|Read timed out|Connection refused|Name or service not known", text)
    if match:
        return match.group(0)
    return f"{type(exc).__name__}: {text[:200]}"
