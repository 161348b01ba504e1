import pytest
from prometheus_client.parser import text_string_to_metric_families

from tw_gates.core.metrics import MetricsSink


def samples(path):
    out = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_counters_accumulate_across_runs_and_gauges_replace(tmp_path):
    for run, quota in [(1, 4000), (2, 3500)]:
        sink = MetricsSink(tmp_path)
        sink.counter("audit_digest_created_total", "digests").inc()
        sink.counter("tw_gates_github_api_calls_total", "calls", ["endpoint"]).labels("GET /x").inc(3)
        sink.gauge("github_api_quota_remaining", "quota").set(quota)
        if run == 1:
            sink.counter("only_first_total", "kept").inc(7)
        path = sink.flush()
    values = samples(path)
    assert values[("audit_digest_created_total", ())] == 2
    assert values[("tw_gates_github_api_calls_total", (("endpoint", "GET /x"),))] == 6
    assert values[("github_api_quota_remaining", ())] == 3500
    assert values[("only_first_total", ())] == 7  # series this run did not touch are kept
    assert not any(name.endswith("_created") for name, _ in values)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["tw_gates.prom"]


class FakePushgateway:
    """The Pushgateway's grouping semantics over real HTTP on loopback: a group
    per URL path (job plus grouping key); PUT replaces the group, POST replaces
    only the metric families it sends."""

    def __init__(self) -> None:
        import http.server
        import threading

        from prometheus_client.parser import text_string_to_metric_families

        self.groups: dict[str, dict[str, object]] = {}
        self.requests: list[tuple[str, str]] = []
        gateway = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _store(self, replace: bool) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                gateway.requests.append((self.command, self.path))
                families = {f.name: f for f in text_string_to_metric_families(body)}
                group = {} if replace else gateway.groups.get(self.path, {})
                group.update(families)
                gateway.groups[self.path] = group
                self.send_response(200)
                self.end_headers()

            def do_PUT(self):
                self._store(replace=True)

            def do_POST(self):
                self._store(replace=False)

            def log_message(self, *a):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def counter(self, path_part: str, name: str) -> float:
        total = 0.0
        for path, families in self.groups.items():
            if path_part in path and name in families:
                total += sum(s.value for s in families[name].samples if s.name == name + "_total")
        return total


@pytest.fixture
def pushgateway():
    gateway = FakePushgateway()
    yield gateway
    gateway.server.shutdown()


def test_push_to_gateway(tmp_path, pushgateway):
    sink = MetricsSink(tmp_path, pushgateway_url=pushgateway.url, grouping_key={"repository": "local"})
    sink.counter("audit_fp_marked_total", "fp").inc(2)
    sink.flush()
    assert pushgateway.requests == [("POST", "/metrics/job/tw_gates/repository/local")]
    assert pushgateway.counter("/", "audit_fp_marked") == 2


def test_pushes_from_two_jobs_keep_both_jobs_counters(tmp_path, pushgateway, monkeypatch):
    # Two jobs of one workflow run on two runners: each has its own metrics folder.
    monkeypatch.setenv("GITHUB_REPOSITORY", "acme/central")
    for job, count in (("ingest", 3), ("file-issues", 5)):
        monkeypatch.setenv("GITHUB_JOB", job)
        sink = MetricsSink(tmp_path / job, pushgateway_url=pushgateway.url)
        sink.counter("audit_fp_marked_total", "fp").inc(count)
        sink.flush()
    paths = sorted({path for _, path in pushgateway.requests})
    # The repository holds a "/": prometheus_client sends it base64-encoded (repository@base64/...).
    assert len(paths) == 2 and all(p.startswith("/metrics/job/tw_gates/repository@base64/") for p in paths)
    # The second job's push did not erase the first job's counter.
    assert pushgateway.counter("/workflow_job/ingest", "audit_fp_marked") == 3
    assert pushgateway.counter("/workflow_job/file-issues", "audit_fp_marked") == 5
    assert pushgateway.counter("/", "audit_fp_marked") == 8
    # A second run of the same job (same folder) pushes its cumulative count into its own group.
    monkeypatch.setenv("GITHUB_JOB", "ingest")
    sink = MetricsSink(tmp_path / "ingest", pushgateway_url=pushgateway.url)
    sink.counter("audit_fp_marked_total", "fp").inc(1)
    sink.flush()
    assert pushgateway.counter("/workflow_job/ingest", "audit_fp_marked") == 4
    assert pushgateway.counter("/workflow_job/file-issues", "audit_fp_marked") == 5


def test_matrix_legs_get_their_own_group(monkeypatch):
    from tw_gates.core.metrics import push_grouping_key

    env = {"GITHUB_REPOSITORY": "acme/central", "GITHUB_JOB": "shard", "TW_METRICS_GROUP": "2"}
    assert push_grouping_key(env) == {"repository": "acme/central", "workflow_job": "shard", "group": "2"}
    assert push_grouping_key({}) == {"repository": "local", "workflow_job": "local"}
