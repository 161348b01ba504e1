"""The metrics textfile is written and read without prometheus_client
(core.prom_text); these tests hold it to prometheus_client's own writer and
parser, byte for byte, so node_exporter and Prometheus see what they always saw."""

from __future__ import annotations

import math

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from tw_gates.core import prom_text
from tw_gates.core.metrics import MetricsSink

TRICKY = ["plain", 'with "quotes"', "back\\slash", "new\nline", "ünïcödé ✓", "", "a,b=c}{"]
VALUES = [0, 1, 2.5, -3, 1e7, 123456789.0, 0.000001, math.inf, -math.inf]


class _Collected:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


@pytest.fixture
def no_created():
    prometheus_client.disable_created_metrics()
    yield
    prometheus_client.enable_created_metrics()


def record(sink_or_registry) -> None:
    """The same series, recorded into a MetricsSink or a prometheus_client registry."""
    doc = "help with \\ backslash\nand a newline"
    if isinstance(sink_or_registry, MetricsSink):
        counter = sink_or_registry.counter("t_requests_total", doc, ["path", "code"])
        gauge = sink_or_registry.gauge("t_level", "level", ["path"])
        plain = sink_or_registry.gauge("t_plain", "")
        unused = sink_or_registry.counter("t_unused", "declared, never labelled", ["x"])
        single = sink_or_registry.counter("t_single", "unlabelled counter")
    else:
        reg = sink_or_registry
        counter = prometheus_client.Counter("t_requests", doc, ["path", "code"], registry=reg)
        gauge = prometheus_client.Gauge("t_level", "level", ["path"], registry=reg)
        plain = prometheus_client.Gauge("t_plain", "", registry=reg)
        unused = prometheus_client.Counter("t_unused", "declared, never labelled", ["x"], registry=reg)
        single = prometheus_client.Counter("t_single", "unlabelled counter", registry=reg)
    assert unused is not None
    for i, label in enumerate(TRICKY):
        counter.labels(path=label, code=str(200 + i)).inc(i + 0.5)
        gauge.labels(label).set(VALUES[i % len(VALUES)])
    plain.set(42)
    single.inc(3)


def test_render_is_byte_for_byte_generate_latest(no_created):
    registry = CollectorRegistry()
    record(registry)
    sink = MetricsSink("unused")
    record(sink)
    ours = prom_text.render(metric.family() for metric in sink._metrics.values())
    assert ours == prometheus_client.generate_latest(registry).decode("utf-8")


@pytest.mark.parametrize("value", [*VALUES, 1e22, 1234567.0, 0.1, 100.0, 5e-324])
def test_values_print_as_go_prints_them(value):
    assert prom_text.format_value(value) == floatToGoString(value)


def _as_tuples(families):
    """(name, type, help) of prometheus_client's Metric or our Family."""
    return [
        (
            f.name,
            "untyped" if f.type == "unknown" else f.type,
            getattr(f, "documentation", None) or getattr(f, "help", ""),
        )
        for f in families
    ]


def _samples(families):
    out = []
    for family in families:
        for s in family.samples:
            labels = tuple(sorted(dict(s.labels).items()))
            out.append((family.name, s.name, labels, "nan" if math.isnan(s.value) else s.value))
    return out


HAND_WRITTEN = """\
# a comment, then a family without HELP
# TYPE hand_total counter
hand_total{a="1"} 3
hand_total{a="2",b="x\\"y"} 4.5 1700000000000
# HELP hand_gauge a gauge
# TYPE hand_gauge gauge
hand_gauge NaN

stray_sample{z="1"} 7
# HELP h_seconds a histogram
# TYPE h_seconds histogram
h_seconds_bucket{le="0.5"} 1
h_seconds_bucket{le="+Inf"} 2
h_seconds_sum 0.7
h_seconds_count 2
# TYPE counts counter
counts{k="v"} 1
"""


@pytest.mark.parametrize("source", ["generated", "hand-written"])
def test_parse_reads_what_prometheus_client_reads(no_created, source):
    if source == "generated":
        registry = CollectorRegistry()
        record(registry)
        text = prometheus_client.generate_latest(registry).decode("utf-8")
    else:
        text = HAND_WRITTEN
    theirs = list(text_string_to_metric_families(text))
    ours = prom_text.parse(text)
    assert _as_tuples(ours) == _as_tuples(theirs)
    assert _samples(ours) == _samples(theirs)
    if source == "generated":
        assert prom_text.render(ours) == text  # a round trip changes nothing


@pytest.mark.parametrize(
    "bad",
    [
        "# TYPE x nonsense\n",
        "x{a=1} 1\n",
        'x{a="1"\n',
        "x 1 2 3\n",
        "x one\n",
        "# TYPE 1x gauge\n",
        'x{a="unterminated} 1\n',
    ],
)
def test_malformed_text_is_a_value_error(bad):
    with pytest.raises(ValueError):
        prom_text.parse(bad)


def test_first_flush_matches_the_prometheus_client_file(tmp_path, no_created):
    registry = CollectorRegistry()
    record(registry)
    families = sorted(registry.collect(), key=lambda f: f.name)  # the file is sorted by family
    expected = prometheus_client.generate_latest(_Collected(families)).decode("utf-8")
    sink = MetricsSink(tmp_path)
    record(sink)
    assert sink.flush().read_text(encoding="utf-8") == expected


def test_a_file_written_by_prometheus_client_is_merged(tmp_path, no_created):
    registry = CollectorRegistry()
    prometheus_client.Counter("t_runs", "runs", ["command"], registry=registry).labels("x").inc(5)
    prometheus_client.Gauge("t_kept", "kept", registry=registry).set(9)
    (tmp_path / "tw_gates.prom").write_bytes(prometheus_client.generate_latest(registry))
    sink = MetricsSink(tmp_path)
    sink.counter("t_runs_total", "runs", ["command"]).labels(command="x").inc()
    text = sink.flush().read_text()
    assert 't_runs_total{command="x"} 6.0' in text and "t_kept 9.0" in text


def test_a_corrupt_file_is_replaced(tmp_path):
    (tmp_path / "tw_gates.prom").write_text("this is { not the text format\n")
    sink = MetricsSink(tmp_path)
    sink.counter("only_total", "one").inc()
    assert sink.flush().read_text() == "# HELP only_total one\n# TYPE only_total counter\nonly_total 1.0\n"


def test_series_rules_match_prometheus_client(tmp_path):
    sink = MetricsSink(tmp_path)
    counter = sink.counter("c_total", "c", ["a"])
    with pytest.raises(ValueError):
        counter.inc()  # labelled: a series needs its labels
    with pytest.raises(ValueError):
        counter.labels("x").inc(-1)
    with pytest.raises(ValueError):
        counter.labels("x", "y")
    with pytest.raises(ValueError):
        counter.labels(b="x")
    with pytest.raises(ValueError):
        sink.gauge("c_total", "not a counter")  # same name as a counter
    with pytest.raises(ValueError):
        sink.counter("bad name", "x")
    gauge = sink.gauge("g", "g")
    gauge.set(4)
    gauge.dec(1.5)
    assert "g 2.5" in sink.flush().read_text()
