"""Canary data contracts: the metrics of one check, the baseline they are
compared with, the binding thresholds, and the report ``tw-gates canary`` writes.

Metric names (the canary's contract with its metrics source): latency_p50_ms, latency_p95_ms, error_rate_pct,
baseline_mismatch_rate_pct, parse_count (the number of parses, i.e. samples,
behind one check)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

# The four metrics a binding gate can judge, and the sample count.
GATED_METRICS = ("latency_p50_ms", "latency_p95_ms", "error_rate_pct", "baseline_mismatch_rate_pct")
SAMPLE_METRIC = "parse_count"
ALL_METRICS = (*GATED_METRICS, SAMPLE_METRIC)

GatedMetric = Literal["latency_p50_ms", "latency_p95_ms", "error_rate_pct", "baseline_mismatch_rate_pct"]
Decision = Literal["PROMOTE", "HOLD", "ROLLBACK"]
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class CanaryMetrics(BaseModel):
    """One check of the canary: what it measured over one interval.
    Unknown fields are ignored, so a capture script may add its own."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, title="tw-gates canary metrics 1.0")

    schema_version: Literal["1.0"] = "1.0"
    observed_at: AwareDatetime | None = Field(
        None, description="when the interval measured ended (default: the time of the run)"
    )
    latency_p50_ms: float = Field(ge=0)
    latency_p95_ms: float = Field(ge=0)
    error_rate_pct: float = Field(ge=0, le=100)
    baseline_mismatch_rate_pct: float = Field(ge=0, le=100)
    parse_count: int = Field(ge=0, description="parses (samples) behind this check")


class CanaryBaseline(BaseModel):
    """The reference the canary is judged against (captured before the canary).
    Latencies are required: the relative gates need them."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False, title="tw-gates canary baseline 1.0")

    schema_version: Literal["1.0"] = "1.0"
    captured_at: AwareDatetime | None = None
    revision: str | None = Field(None, max_length=200, description="what the baseline measured (commit, version)")
    latency_p50_ms: float = Field(gt=0)
    latency_p95_ms: float = Field(gt=0)
    error_rate_pct: float | None = Field(None, ge=0, le=100)
    baseline_mismatch_rate_pct: float | None = Field(None, ge=0, le=100)
    parse_count: int | None = Field(None, ge=0)


class GateThreshold(BaseModel):
    """One binding gate: an upper bound on a metric, either absolute (``max``)
    or relative to the baseline (``max_increase_pct``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    metric: GatedMetric
    max: float | None = Field(None, ge=0, description="absolute upper bound, in the metric's unit")
    max_increase_pct: float | None = Field(None, ge=0, description="upper bound as baseline + this many percent")
    judge_below_min_samples: bool = Field(
        False,
        description="also judge checks with fewer samples than min_samples (for counts where one occurrence "
        "is a fact, not a statistic, such as a mismatch)",
    )

    @model_validator(mode="after")
    def _one_bound(self) -> GateThreshold:
        if (self.max is None) == (self.max_increase_pct is None):
            raise ValueError(f"gate {self.name}: give exactly one of max or max_increase_pct")
        return self


class CanaryThresholds(BaseModel):
    """The binding gates and the decision rules (``canary_thresholds.yml``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, title="tw-gates canary thresholds 1.0")

    schema_version: Literal["1.0"] = "1.0"
    min_samples: int = Field(1000, ge=1, description="fewer samples in a check: inconclusive, never clean")
    failure_threshold: int = Field(
        1, ge=1, description="failed checks in the window before ROLLBACK (Flagger's threshold)"
    )
    min_coverage_pct: float = Field(
        95.0, gt=0, le=100, description="clean checks, as a share of the window's intervals, needed to PROMOTE"
    )
    gates: list[GateThreshold] = Field(min_length=1, max_length=50)

    @field_validator("gates")
    @classmethod
    def _unique_names(cls, gates: list[GateThreshold]) -> list[GateThreshold]:
        names = [g.name for g in gates]
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise ValueError(f"duplicate gate name(s): {', '.join(duplicated)}")
        return gates


# -- the report ------------------------------------------------------------------------------


class Breach(BaseModel):
    """A binding gate over its limit in one interval."""

    model_config = ConfigDict(extra="forbid")

    gate: str
    metric: str
    interval_start: AwareDatetime
    interval_end: AwareDatetime
    value: float
    limit: float


class CheckRecord(BaseModel):
    """One interval of the window and what became of it."""

    model_config = ConfigDict(extra="forbid")

    interval_start: AwareDatetime
    status: Literal["clean", "failed", "inconclusive", "missing"]
    values: dict[str, float | None] = Field(default_factory=dict)
    breached: list[str] = Field(default_factory=list, description="gates over their limit (binding)")
    note: str = ""


class GateStatus(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    metric: str
    rule: str = Field(description="the bound in words, e.g. '<= baseline 12 ms +8% = 12.96 ms'")
    limit: float
    status: Literal["pass", "fail", "no_data"]
    last_value: float | None = None
    worst_value: float | None = None
    worst_at: AwareDatetime | None = None
    failed_checks: int = 0


class WindowSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: AwareDatetime
    end: AwareDatetime
    duration_s: int
    interval_s: int
    started_at: AwareDatetime | None = Field(None, description="when the canary's first interval began")
    complete: bool
    time_left_s: int
    intervals_total: int
    clean: int
    failed: int
    inconclusive: int
    missing: int = Field(description="intervals since the canary started with no check")
    before_start: int = Field(0, description="intervals of the window before the canary started")
    coverage_pct: float = Field(description="clean intervals as a share of the window's intervals")


class CanaryReport(BaseModel):
    """What one ``tw-gates canary`` run decided and why."""

    model_config = ConfigDict(extra="forbid", title="tw-gates canary report 1.0")

    schema_version: Literal["1.0"] = "1.0"
    name: str = Field(pattern=NAME_PATTERN)
    revision: str | None = None
    source: Literal["file", "prometheus"]
    evaluated_at: AwareDatetime
    decision: Decision
    exit_code: int
    reason: str
    window: WindowSummary
    failed_checks: int
    failure_threshold: int
    baseline: CanaryBaseline
    thresholds: CanaryThresholds
    gates: list[GateStatus]
    breaches: list[Breach] = Field(default_factory=list)
    checks: list[CheckRecord] = Field(default_factory=list)
    queries_sent: int | None = Field(None, description="Prometheus range queries sent (prometheus source)")
    warnings: list[str] = Field(default_factory=list)
