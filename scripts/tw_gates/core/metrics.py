"""C1 telemetry: Prometheus metrics in textfile format.

Every command records into one process registry (prometheus_client). At the
end of the command the registry is merged into ``$TW_METRICS_DIR/tw_gates.prom``
under a portalocker lock: counters add to what earlier runs left there (so
they stay cumulative across runs, as Prometheus expects of a counter), gauges
replace their previous value, series this run did not touch are kept. The
file is replaced atomically, so node_exporter's textfile collector never reads
half of it.

With TW_PUSHGATEWAY_URL set, the same merged families are pushed under a
grouping key per repository and workflow job (``repository``,
``workflow_job``, and ``group`` from TW_METRICS_GROUP for the legs of a
matrix): each job owns its group, so a second job's push never replaces a
first job's counters, and a rerun of a job replaces only that job's group
(a counter reset Prometheus' increase() and rate() handle). The push adds to
its group (POST) rather than replacing it, so families another command of the
same job pushed stay. See docs/runbook.md, "Telemetry across jobs".
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families

from tw_gates.core.fsio import atomic_write_bytes, file_lock
from tw_gates.core.metric_catalog import CATALOG

TEXTFILE_NAME = "tw_gates.prom"

# A `_created` sample per counter would be reset by every run and make the
# merged file lie about when a series started; leave it out.
prometheus_client.disable_created_metrics()


class _MergedCollector:
    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterable[Metric]:
        return iter(self._families)


def _sample_key(sample) -> tuple:
    return (sample.name, tuple(sorted(sample.labels.items())))


def merge_families(previous: Iterable[Metric], current: Iterable[Metric]) -> list[Metric]:
    """Counters: previous + current. Gauges and others: current wins.
    Series or families only in ``previous`` are kept unchanged."""
    merged: dict[str, Metric] = {}
    for family in previous:
        merged[family.name] = family
    for family in current:
        old = merged.get(family.name)
        if old is None or old.type != family.type:
            merged[family.name] = family
            continue
        samples = {_sample_key(s): s for s in old.samples}
        for sample in family.samples:
            key = _sample_key(sample)
            if family.type == "counter" and key in samples and not sample.name.endswith("_created"):
                sample = sample._replace(value=samples[key].value + sample.value)
            samples[key] = sample
        fresh = Metric(family.name, family.documentation or old.documentation, family.type, family.unit)
        fresh.samples = sorted(samples.values(), key=_sample_key)
        merged[family.name] = fresh
    return [merged[name] for name in sorted(merged)]


class MetricsSink:
    """The metrics of one command run."""

    def __init__(
        self,
        directory: str | Path = ".metrics",
        pushgateway_url: str | None = None,
        job: str = "tw_gates",
        grouping_key: Mapping[str, str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.pushgateway_url = pushgateway_url
        self.job = job
        self.grouping_key = dict(grouping_key) if grouping_key is not None else push_grouping_key()
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Counter | Gauge] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, documentation: str | None = None, labelnames: Sequence[str] = ()) -> Counter:
        """The counter ``name`` of the catalogue (help and labels from there)."""
        return self._get(Counter, name, documentation, labelnames)

    def gauge(self, name: str, documentation: str | None = None, labelnames: Sequence[str] = ()) -> Gauge:
        """The gauge ``name`` of the catalogue (help and labels from there)."""
        return self._get(Gauge, name, documentation, labelnames)

    def _get(self, kind, name: str, documentation: str | None, labelnames: Sequence[str]):
        spec = CATALOG.get(name)
        if spec is not None:
            if spec.kind != ("counter" if kind is Counter else "gauge"):
                raise ValueError(f"metric {name} is a {spec.kind} in the catalogue")
            documentation, labelnames = spec.help, spec.labels
        elif documentation is None:
            # Product code names catalogue metrics only; an ad-hoc series needs its help text.
            raise ValueError(f"metric {name} is not in tw_gates.core.metric_catalog")
        # prometheus_client appends _total to counters itself; accept either spelling.
        base = name[: -len("_total")] if kind is Counter and name.endswith("_total") else name
        with self._lock:
            metric = self._metrics.get(base)
            if metric is None:
                metric = kind(base, documentation, labelnames=tuple(labelnames), registry=self.registry)
                self._metrics[base] = metric
            elif not isinstance(metric, kind):
                raise ValueError(f"metric {name} already registered as another type")
            return metric

    @property
    def textfile(self) -> Path:
        return self.directory / TEXTFILE_NAME

    def flush(self) -> Path:
        """Merge into the textfile (locked, atomic); push if configured.

        The recorded values move into the file: the sink starts afresh, so a
        second flush in the same process never counts them twice."""
        self.directory.mkdir(parents=True, exist_ok=True)
        with file_lock(self.directory / f".{TEXTFILE_NAME}.lock", timeout=30):
            previous: list[Metric] = []
            if self.textfile.exists():
                text = self.textfile.read_text(encoding="utf-8")
                try:
                    previous = list(text_string_to_metric_families(text))
                except ValueError:
                    previous = []  # a corrupt file is replaced, not propagated
            merged = merge_families(previous, self.registry.collect())
            registry = CollectorRegistry(auto_describe=False)
            registry.register(_MergedCollector(merged))
            atomic_write_bytes(self.textfile, prometheus_client.generate_latest(registry))
            with self._lock:
                self.registry = CollectorRegistry(auto_describe=True)
                self._metrics = {}
        if self.pushgateway_url:
            prometheus_client.pushadd_to_gateway(
                self.pushgateway_url, job=self.job, registry=registry, grouping_key=self.grouping_key, timeout=10
            )
        return self.textfile


_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.:/@+-]")


def push_grouping_key(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The Pushgateway group of this job: repository and workflow job from the
    runner (``local`` off a runner), plus TW_METRICS_GROUP when set (one value
    per matrix leg, e.g. ``${{ strategy.job-index }}``, or the legs would
    share, and overwrite, one group)."""
    env = os.environ if environ is None else environ
    key = {
        "repository": env.get("GITHUB_REPOSITORY") or "local",
        "workflow_job": env.get("GITHUB_JOB") or "local",
    }
    if env.get("TW_METRICS_GROUP"):
        key["group"] = env["TW_METRICS_GROUP"]
    # prometheus_client base64-encodes values with a "/", so any text is safe in
    # the URL; keep them short and printable all the same.
    return {name: _LABEL_VALUE.sub("_", value)[:200] for name, value in key.items()}


_current: MetricsSink | None = None


def current() -> MetricsSink:
    """The sink of this process (the CLI configures it from settings)."""
    global _current
    if _current is None:
        from tw_gates.core.settings import MetricsSettings, load_settings

        settings = load_settings(MetricsSettings)
        _current = MetricsSink(settings.metrics_dir, settings.pushgateway_url)
    return _current


def configure(sink: MetricsSink | None) -> MetricsSink | None:
    """Replace the process sink (tests and the CLI); returns the old one."""
    global _current
    old, _current = _current, sink
    return old
