"""The metrics registry: ZooKeeper's names and types, Prometheus text as the Prometheus
client library parses it, the ``mntr`` view, one registry per peer."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from zkquorum.runtime.metrics import (
    SERVER_METRICS,
    WINDOW_SAMPLES,
    DetailLevel,
    Kind,
    MetricsRegistry,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def parse(text: str) -> dict[str, object]:
    """Prometheus families by name, as the official parser reads them."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples by (name, labels) as they are on the wire.

    The client library's parser names a counter's sample ``<name>_total`` (its OpenMetrics
    habit); 3.8's simpleclient 0.9.0, and this text, write the plain name, which is what
    Prometheus stores and dashboards query: map it back.
    """
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            name = s.name
            if family.type == "counter" and name == f"{family.name}_total":
                name = family.name
            out[(name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_every_server_metric_is_exposed_with_its_type() -> None:
    reg = MetricsRegistry()
    families = parse(reg.exposition())
    for spec in SERVER_METRICS:
        assert spec.name in families, spec.name
        assert families[spec.name].type == spec.kind.value, spec.name
    # The ones operators graph (docs/spec/zk-server.md §5.1).
    for name in ("looking_count", "commit_count", "digest_mismatches_count", "snap_count"):
        assert families[name].type == "counter"
    for name in ("fsynctime", "snapshottime", "election_time", "readlatency", "updatelatency"):
        assert families[name].type == "summary"


def test_counters_summaries_and_quantiles_as_simpleclient_writes_them() -> None:
    clock = FakeClock()
    reg = MetricsRegistry(clock=clock)
    reg.counter("looking_count").inc()
    reg.counter("looking_count").inc(2)
    for v in range(1, 101):
        reg.summary("readlatency", DetailLevel.ADVANCED).observe(v)
        reg.summary("fsynctime").observe(v)
    text = reg.exposition()
    assert "\nlooking_count 3.0\n" in text  # the plain name on the wire, as 3.8's
    got = samples(text)
    assert got[("looking_count", ())] == 3
    # ADVANCED: 0.5, 0.9, 0.99; BASIC: 0.5 only.
    assert got[("readlatency", (("quantile", "0.5"),))] == 50
    assert got[("readlatency", (("quantile", "0.9"),))] == 90
    assert got[("readlatency", (("quantile", "0.99"),))] == 99
    assert got[("readlatency_count", ())] == 100
    assert got[("readlatency_sum", ())] == 5050
    assert got[("fsynctime", (("quantile", "0.5"),))] == 50
    assert ("fsynctime", (("quantile", "0.9"),)) not in got
    # An empty window is NaN, as simpleclient's; count and sum stay.
    assert math.isnan(got[("snapshottime", (("quantile", "0.5"),))])
    assert got[("snapshottime_count", ())] == 0


def test_quantiles_forget_old_observations_but_count_and_sum_do_not() -> None:
    clock = FakeClock()
    reg = MetricsRegistry(clock=clock, window_s=600)
    s = reg.summary("election_time")
    s.observe(5000)
    clock.now += 601
    s.observe(200)
    got = samples(reg.exposition())
    assert got[("election_time", (("quantile", "0.5"),))] == 200
    assert got[("election_time_count", ())] == 2
    assert got[("election_time_sum", ())] == 5200


def test_window_is_bounded() -> None:
    reg = MetricsRegistry(clock=FakeClock())
    s = reg.summary("fsynctime")
    for v in range(WINDOW_SAMPLES + 500):
        s.observe(v)
    assert len(s.recent()) == WINDOW_SAMPLES
    assert s.count == WINDOW_SAMPLES + 500


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300))
def test_quantile_is_a_nearest_rank_of_the_observations(values: list[float]) -> None:
    reg = MetricsRegistry(clock=FakeClock())
    s = reg.summary("updatelatency", DetailLevel.ADVANCED)
    for v in values:
        s.observe(v)
    ordered = sorted(values)
    got = samples(reg.exposition())
    for q in (0.5, 0.9, 0.99):
        value = got[("updatelatency", (("quantile", str(q)),))]
        assert value in ordered
        below = sum(1 for v in ordered if v < value)
        assert below < max(1, math.ceil(q * len(ordered)))
        assert sum(1 for v in ordered if v <= value) >= q * len(ordered)


def test_summary_sets_carry_the_key_label() -> None:
    reg = MetricsRegistry(clock=FakeClock())
    reg.summary_set("write_per_namespace", "app").observe(10)
    reg.summary_set("write_per_namespace", "zookeeper").observe(3)
    reg.summary_set("ack_latency", "2", DetailLevel.ADVANCED).observe(4)
    reg.counter_set("quota_exceeded_error_per_namespace", "app").inc()
    got = samples(reg.exposition())
    assert got[("write_per_namespace", (("key", "app"), ("quantile", "0.5")))] == 10
    assert got[("write_per_namespace_count", (("key", "zookeeper"),))] == 1
    assert got[("ack_latency", (("key", "2"), ("quantile", "0.99")))] == 4
    assert got[("quota_exceeded_error_per_namespace", (("key", "app"),))] == 1
    dump = dict(reg.dump())
    assert dump["cnt_app_write_per_namespace"] == 1
    assert dump["p99_2_ack_latency"] == 4
    assert dump["app_quota_exceeded_error_per_namespace"] == 1


def test_label_values_are_escaped() -> None:
    reg = MetricsRegistry(clock=FakeClock())
    reg.summary_set("read_per_namespace", 'we"ird\\name\n').observe(1)
    got = samples(reg.exposition())
    assert got[("read_per_namespace_count", (("key", 'we"ird\\name\n'),))] == 1


def test_gauges_are_read_at_scrape_time_and_none_reads_zero() -> None:
    reg = MetricsRegistry()
    box = {"v": 1}
    reg.register_gauge("znode_count", lambda: box["v"])
    reg.register_gauge("leader_uptime", lambda: None)
    reg.register_gauge("zkquorum_elections", lambda: 7, kind=Kind.COUNTER)
    assert samples(reg.exposition())[("znode_count", ())] == 1
    box["v"] = 42
    fams = parse(reg.exposition())
    assert fams["znode_count"].samples[0].value == 42
    assert fams["znode_count"].type == "gauge"
    assert fams["leader_uptime"].samples[0].value == 0
    assert fams["zkquorum_elections"].type == "counter"
    reg.unregister_gauge("znode_count")
    assert "znode_count" not in parse(reg.exposition())


def test_hooks_run_once_per_scrape() -> None:
    reg = MetricsRegistry()
    calls = []
    reg.before_scrape(lambda: calls.append(1))
    reg.exposition()
    reg.dump()
    assert len(calls) == 2


def test_two_registries_share_nothing() -> None:
    a, b = MetricsRegistry(), MetricsRegistry()
    a.counter("commit_count").inc(5)
    a.summary("fsynctime").observe(3)
    a.register_gauge("learners", lambda: 2)
    got_b = samples(b.exposition())
    assert got_b[("commit_count", ())] == 0
    assert got_b[("fsynctime_count", ())] == 0
    assert ("learners", ()) not in got_b
    assert samples(a.exposition())[("commit_count", ())] == 5


def test_wrong_use_is_refused() -> None:
    reg = MetricsRegistry()
    with pytest.raises(ValueError):
        reg.counter("fsynctime")  # a summary
    with pytest.raises(ValueError):
        reg.counter("commit_count").inc(-1)
    with pytest.raises(ValueError):
        reg.register_gauge("commit_count", lambda: 1)
    with pytest.raises(ValueError):
        reg.summary_set("fsynctime", "x")


def test_mntr_dump_has_the_default_providers_keys_and_types() -> None:
    reg = MetricsRegistry(clock=FakeClock())
    reg.summary("election_time").observe(230)
    reg.summary("election_time").observe(210)
    reg.summary("readlatency", DetailLevel.ADVANCED).observe(4)
    dump = dict(reg.dump())
    assert dump["avg_election_time"] == 220.0
    assert isinstance(dump["avg_election_time"], float)
    assert (dump["min_election_time"], dump["max_election_time"]) == (210, 230)
    assert (dump["cnt_election_time"], dump["sum_election_time"]) == (2, 440)
    assert dump["p50_readlatency"] == 4 and dump["p999_readlatency"] == 4
    # An empty summary: zeros, avg 0.0 (3.8's AvgMinMaxCounter).
    assert (dump["avg_fsynctime"], dump["min_fsynctime"], dump["max_fsynctime"]) == (0.0, 0, 0)
    assert "p50_fsynctime" not in dump  # BASIC
    assert dump["looking_count"] == 0


def test_reset_summaries_forgets_observations() -> None:
    reg = MetricsRegistry(clock=FakeClock())
    reg.summary("fsynctime").observe(9)
    reg.reset_summaries()
    assert dict(reg.dump())["cnt_fsynctime"] == 0


@settings(max_examples=100)
@given(st.integers(0, 50), st.integers(-3, 40))
def test_observe_range_is_observe_of_each(start: int, n: int) -> None:
    one, each = (MetricsRegistry(clock=FakeClock()).summary("q") for _ in range(2))
    one.observe_range(start, start + n)
    for v in range(start, start + n):
        each.observe(v)
    assert (one.count, one.total, one.min, one.max) == (each.count, each.total, each.min, each.max)
    assert one.recent() == each.recent()
