"""C1 telemetry: Prometheus metrics in textfile format.

Every command records into one process sink. At the end of the command the
sink is merged into ``$TW_METRICS_DIR/tw_gates.prom`` under a file lock:
counters add to what earlier runs left there (so they stay cumulative across
runs, as Prometheus expects of a counter), gauges replace their previous value,
series this run did not touch are kept. The file is replaced atomically, so
node_exporter's textfile collector never reads half of it. With
TW_PUSHGATEWAY_URL set, the same merged families are pushed under a grouping
key per repository and workflow job (``repository``, ``workflow_job``, and
``group`` from TW_METRICS_GROUP for the legs of a matrix): each job owns its
group, so a second job's push never replaces a first job's counters, and a
rerun of a job replaces only that job's group (a counter reset Prometheus'
increase() and rate() handle). The push adds to its group (POST) rather than
replacing it, so families another command of the same job pushed stay. See
docs/runbook.md, "Telemetry across jobs".

Counters and gauges here behave as prometheus_client's (labels, non-negative
counter increments, an unlabelled series that exists from creation), and the
file is the text format prometheus_client writes (``core.prom_text``).
prometheus_client itself is imported only to push: it costs about 0.15 s to
import, which every command, `tw-gates platform` included, would otherwise pay
to record its run. For the same reason the file is locked and replaced here
with ``fcntl.flock`` and ``os.replace`` rather than through ``core.fsio``
(portalocker adds about 0.1 s to start-up); flock is the lock portalocker
takes on Linux, so writers of either kind exclude each other."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from tw_gates.core import prom_text
from tw_gates.core.metric_catalog import CATALOG

TYPE_CHECKING = False  # typing stays out of the start-up path (every command records its run)
if TYPE_CHECKING:
    from tw_gates.core.metric_catalog import Kind

TEXTFILE_NAME = "tw_gates.prom"
LOCK_TIMEOUT_S = 30.0


class Series:
    """One labelled series of a counter or gauge (what ``.labels()`` returns)."""

    def __init__(self, metric: _Metric, values: tuple[str, ...]) -> None:
        self._metric = metric
        self._values = values

    def inc(self, amount: float = 1) -> None:
        if self._metric.kind == "counter" and amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self._metric._add(self._values, float(amount))

    def dec(self, amount: float = 1) -> None:
        if self._metric.kind == "counter":
            raise AttributeError("a counter cannot be decremented")
        self._metric._add(self._values, -float(amount))

    def set(self, value: float) -> None:
        if self._metric.kind == "counter":
            raise AttributeError("a counter cannot be set")
        self._metric._set(self._values, float(value))

    def set_to_current_time(self) -> None:
        self.set(time.time())


class _Metric(Series):
    """A counter or gauge; unlabelled, it is its own series."""

    def __init__(self, kind: Kind, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        if not prom_text.METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labelnames:
            if not prom_text.LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r}")
        super().__init__(self, ())
        self.kind, self.name, self.documentation = kind, name, documentation
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()
        # An unlabelled series exists (at 0) from creation, as in prometheus_client.
        self._series: dict[tuple[str, ...], float] = {} if self.labelnames else {(): 0.0}

    def labels(self, *values: object, **named: object) -> Series:
        if not self.labelnames:
            raise ValueError(f"no label names were set for metric {self.name}")
        if values and named:
            raise ValueError("Can't pass both *args and **kwargs")
        if named:
            if sorted(named) != sorted(self.labelnames):
                raise ValueError("Incorrect label names")
            values = tuple(named[label] for label in self.labelnames)
        elif len(values) != len(self.labelnames):
            raise ValueError("Incorrect label count")
        key = tuple(str(value) for value in values)
        with self._lock:
            self._series.setdefault(key, 0.0)
        return Series(self, key)

    def _check_observable(self, values: tuple[str, ...]) -> None:
        if self.labelnames and not values:
            raise ValueError(f"{self.kind} metric is missing label values")

    def _add(self, values: tuple[str, ...], amount: float) -> None:
        self._check_observable(values)
        with self._lock:
            self._series[values] = self._series.get(values, 0.0) + amount

    def _set(self, values: tuple[str, ...], value: float) -> None:
        self._check_observable(values)
        with self._lock:
            self._series[values] = value

    def family(self) -> prom_text.Family:
        sample_name = f"{self.name}_total" if self.kind == "counter" else self.name
        with self._lock:
            series = list(self._series.items())
        samples = [
            prom_text.Sample(sample_name, tuple(sorted(zip(self.labelnames, values, strict=True))), value)
            for values, value in series
        ]
        return prom_text.Family(self.name, self.kind, self.documentation, samples)


# The names gates call them by (``sink.counter(...)`` returns a Counter).
Counter = _Metric
Gauge = _Metric


class MetricsSink:
    """The metrics of one command run."""

    def __init__(
        self,
        directory: str | Path | None = ".metrics",
        pushgateway_url: str | None = None,
        job: str = "tw_gates",
        grouping_key: Mapping[str, str] | None = None,
    ) -> None:
        # None: the metrics are recorded (and pushed when a Pushgateway is set) but no file is written.
        self.directory = Path(directory) if directory is not None else None
        self.pushgateway_url = pushgateway_url
        self.job = job
        self.grouping_key = dict(grouping_key) if grouping_key is not None else push_grouping_key()
        self._metrics: dict[str, _Metric] = {}
        self._lock = threading.Lock()

    def counter(self, name: str, documentation: str | None = None, labelnames: Sequence[str] = ()) -> Counter:
        """The counter ``name`` of the catalogue (help and labels from there)."""
        return self._get("counter", name, documentation, labelnames)

    def gauge(self, name: str, documentation: str | None = None, labelnames: Sequence[str] = ()) -> Gauge:
        """The gauge ``name`` of the catalogue (help and labels from there)."""
        return self._get("gauge", name, documentation, labelnames)

    def _get(self, kind: Kind, name: str, documentation: str | None, labelnames: Sequence[str]) -> _Metric:
        spec = CATALOG.get(name)
        if spec is not None:
            if spec.kind != kind:
                raise ValueError(f"metric {name} is a {spec.kind} in the catalogue")
            documentation, labelnames = spec.help, spec.labels
        elif documentation is None:
            # Product code names catalogue metrics only; an ad-hoc series needs its help text.
            raise ValueError(f"metric {name} is not in tw_gates.core.metric_catalog")
        # A counter's family name is without _total (its samples carry it); accept either spelling.
        base = name[: -len("_total")] if kind == "counter" and name.endswith("_total") else name
        with self._lock:
            metric = self._metrics.get(base)
            if metric is None:
                metric = _Metric(kind, base, documentation, labelnames)
                # A gauge `x_total` beside a counter `x` would write one series twice.
                taken = {n for other in self._metrics.values() for n in _names(other.kind, other.name)}
                if taken & _names(kind, base):
                    raise ValueError(f"metric {name} clashes with a metric already recorded")
                self._metrics[base] = metric
            elif metric.kind != kind:
                raise ValueError(f"metric {name} already registered as another type")
            return metric

    @property
    def textfile(self) -> Path | None:
        return self.directory / TEXTFILE_NAME if self.directory is not None else None

    def _take(self) -> list[prom_text.Family]:
        with self._lock:
            current = [metric.family() for metric in self._metrics.values()]
            self._metrics = {}
        return current

    def flush(self) -> Path | None:
        """Merge into the textfile (locked, atomic); push if configured.

        The recorded values move into the file: the sink starts afresh, so a
        second flush in the same process never counts them twice."""
        textfile = self.textfile
        if self.directory is None or textfile is None:
            merged = prom_text.merge([], self._take())
        else:
            self.directory.mkdir(parents=True, exist_ok=True)
            with _locked(self.directory / f".{TEXTFILE_NAME}.lock", LOCK_TIMEOUT_S):
                previous: list[prom_text.Family] = []
                if textfile.exists():
                    try:
                        previous = prom_text.parse(textfile.read_text(encoding="utf-8"))
                    except ValueError:
                        previous = []  # a corrupt file is replaced, not propagated
                merged = prom_text.merge(previous, self._take())
                _replace(textfile, prom_text.render(merged).encode("utf-8"))
        if self.pushgateway_url:
            _push(self.pushgateway_url, self.job, merged, self.grouping_key)
        return textfile


def _names(kind: Kind, name: str) -> set[str]:
    return {name, f"{name}_total"} if kind == "counter" else {name}


@contextlib.contextmanager
def _locked(path: Path, timeout: float) -> Iterator[None]:
    """An exclusive flock on ``path``, waited for up to ``timeout`` seconds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"could not lock {path} within {timeout:g}s: another writer holds it") from None
                time.sleep(0.005)
        yield
    finally:
        os.close(fd)  # releases the lock


def _replace(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, then rename over
    it: a reader sees the old file or the new one, never half of one, even
    after a crash. Called under the lock, so one temp name is enough; the file
    gets the mode a plain open() would (0666 less the umask). The folder is not
    fsync'd (core.fsio does that): after a power cut the file may be the
    previous run's, which costs a counter one run's increment, never its
    history; on a busy disk that second fsync was most of recording a run."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a crashed writer's leftover
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _push(url: str, job: str, families: list[prom_text.Family], grouping_key: Mapping[str, str]) -> None:
    """POST the families to a Pushgateway: added to this job's group, never
    replacing another job's (see push_grouping_key)."""
    # Imported here: 0.15 s that only a configured Pushgateway should cost.
    import prometheus_client  # noqa: PLC0415
    from prometheus_client.core import Metric  # noqa: PLC0415
    from prometheus_client.samples import Sample  # noqa: PLC0415

    metrics = []
    for family in families:
        metric = Metric(family.name, family.help, family.type)
        metric.samples = [Sample(s.name, dict(s.labels), s.value) for s in family.samples]
        metrics.append(metric)

    class _Families:
        def collect(self) -> list[Metric]:
            return metrics

    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Families())
    prometheus_client.pushadd_to_gateway(url, job=job, registry=registry, grouping_key=dict(grouping_key), timeout=10)


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


class MetricsSettings:
    """Where the metrics go: read from the environment directly (an empty
    value means unset), so recording a run needs no settings machinery.

    The textfile goes to TW_METRICS_DIR; without it, to ``.metrics/`` on a
    GitHub runner only: a person running a gate on their machine finds no
    folder they did not ask for."""

    __slots__ = ("metrics_dir", "pushgateway_url")

    def __init__(self, metrics_dir: Path | None = Path(".metrics"), pushgateway_url: str | None = None) -> None:
        self.metrics_dir = metrics_dir
        self.pushgateway_url = pushgateway_url

    @classmethod
    def from_env(cls) -> MetricsSettings:
        configured = os.environ.get("TW_METRICS_DIR")
        on_runner = os.environ.get("GITHUB_ACTIONS") == "true"
        directory = Path(configured) if configured else Path(".metrics") if on_runner else None
        return cls(directory, os.environ.get("TW_PUSHGATEWAY_URL") or None)


_current: MetricsSink | None = None


def current() -> MetricsSink:
    """The sink of this process (the CLI configures it from the environment)."""
    global _current
    if _current is None:
        settings = MetricsSettings.from_env()
        _current = MetricsSink(settings.metrics_dir, settings.pushgateway_url)
    return _current


def configure(sink: MetricsSink | None) -> MetricsSink | None:
    """Replace the process sink (tests and the CLI); returns the old one."""
    global _current
    old, _current = _current, sink
    return old
