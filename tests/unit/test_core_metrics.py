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


def test_push_to_gateway(tmp_path):
    import http.server
    import threading

    received = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_PUT(self):
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sink = MetricsSink(tmp_path, pushgateway_url=f"http://127.0.0.1:{server.server_port}")
        sink.counter("audit_fp_marked_total", "fp").inc(2)
        sink.flush()
    finally:
        server.shutdown()
    assert received and received[0][0] == "/metrics/job/tw_gates"
    assert b"audit_fp_marked_total 2.0" in received[0][1]
