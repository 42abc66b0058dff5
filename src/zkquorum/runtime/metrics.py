"""ZooKeeper 3.8's metrics, one registry per peer: Prometheus text and the ``mntr`` view.

Facts: ``docs/spec/zk-server.md`` §5.1.  ZooKeeper keeps its metrics in ``ServerMetrics``
(counters, summaries and summary sets, created once) plus gauges that each server role
registers while it runs (``ZooKeeperServer#registerMetrics``,
``LeaderZooKeeperServer#registerMetrics``...).  Two views read them:

* the Prometheus provider (``PrometheusMetricsProvider``, simpleclient 0.9.0): every metric
  under its plain name, ``# HELP <name> <name>``; counters and gauges one sample each;
  summaries ``<name>{quantile="0.5"}`` (plus 0.9 and 0.99 at ADVANCED detail), ``<name>_count``
  and ``<name>_sum``; summary sets, counter sets and gauge sets with the label ``key``.
  :meth:`MetricsRegistry.exposition` writes that text (format 0.0.4).
* the default provider's ``dump`` (what ``mntr`` and the AdminServer's ``monitor`` print):
  a summary ``X`` as ``avg_X`` (float), ``min_X``, ``max_X``, ``cnt_X``, ``sum_X``, plus
  ``p50_X``, ``p95_X``, ``p99_X``, ``p999_X`` at ADVANCED detail; a set member ``k`` as
  ``avg_k_X``...; :meth:`MetricsRegistry.dump`.

Quantiles come from a sliding window: the observations of the last ``window_s`` seconds
(600, as simpleclient's default ``maxAgeSeconds``), at most :data:`WINDOW_SAMPLES` of
them, sorted at scrape time.  Observing is one ``deque.append``; a scrape sorts at most
:data:`WINDOW_SAMPLES` numbers per summary that has any.  An empty window gives ``NaN`` as
simpleclient does.

Nothing here is module-level state: each peer makes its own :class:`MetricsRegistry`, and
two peers in one process never share a value.  zkquorum's own figures use names starting
``zkquorum_`` so that they never collide with a ZooKeeper name.
"""

from __future__ import annotations

import enum
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final

WINDOW_SAMPLES: Final = 2048
"""Most observations a summary keeps for its quantiles."""
WINDOW_SECONDS: Final = 600.0
PROMETHEUS_CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

Number = int | float
GaugeFn = Callable[[], Number | None]
GaugeSetFn = Callable[[], Mapping[str, Number]]


class DetailLevel(enum.Enum):
    """``MetricsContext.DetailLevel``: ADVANCED summaries carry more quantiles."""

    BASIC = "basic"
    ADVANCED = "advanced"


class Kind(enum.Enum):
    COUNTER = "counter"
    GAUGE = "gauge"
    SUMMARY = "summary"


@dataclass(frozen=True, slots=True)
class Spec:
    """One metric ``ServerMetrics`` creates (name, kind, detail level, set or not)."""

    name: str
    kind: Kind
    level: DetailLevel = DetailLevel.BASIC
    labelled: bool = False


def _specs() -> tuple[Spec, ...]:
    c, s, b, a = Kind.COUNTER, Kind.SUMMARY, DetailLevel.BASIC, DetailLevel.ADVANCED
    basic_summaries = """fsynctime snapshottime dbinittime follower_sync_time observer_sync_time
        election_time connection_token_deficit inflight_snap_count inflight_diff_count
        node_created_watch_count node_deleted_watch_count node_changed_watch_count
        node_children_watch_count prep_processor_queue_size prep_process_time
        proposal_process_time unavailable_time leader_unavailable_time requests_in_session_queue
        pending_session_queue_size reads_after_write_in_session_queue
        reads_issued_from_session_queue session_queues_drained
        time_waiting_empty_pool_in_commit_processor_read_ms write_batch_time_in_commit_processor
        concurrent_request_processing_in_commit_processor read_commit_proc_req_queued
        write_commit_proc_req_queued commit_commit_proc_req_queued read_commit_proc_issued
        write_commit_proc_issued commit_process_time startup_txns_loaded startup_txns_load_time
        startup_snap_load_time sync_processor_queue_size sync_process_time
        sync_processor_batch_size netty_queued_buffer_capacity
        learner_request_processor_queue_size socket_closing_time"""
    advanced_summaries = """readlatency updatelatency propagation_latency
        dead_watchers_cleaner_latency prep_processor_queue_time_ms close_session_prep_time
        read_commitproc_time_ms write_commitproc_time_ms local_write_committed_time_ms
        server_write_committed_time_ms om_proposal_process_time_ms om_commit_process_time_ms
        read_final_proc_time_ms write_final_proc_time_ms proposal_latency
        proposal_ack_creation_latency commit_propagation_latency
        sync_processor_queue_and_flush_time_ms sync_processor_queue_time_ms
        sync_processor_queue_flush_time_ms quorum_ack_latency request_throttle_queue_time_ms
        jvm_pause_time_ms"""
    counters = """looking_count diff_count snap_count commit_count connection_request_count
        connection_rejected bytes_received_count unrecoverable_error_count
        add_dead_watcher_stall_time dead_watchers_queued dead_watchers_cleared
        response_packet_cache_hits response_packet_cache_misses
        response_packet_get_children_cache_hits response_packet_get_children_cache_misses
        ensemble_auth_success ensemble_auth_fail ensemble_auth_skip prep_processor_request_queued
        outstanding_changes_queued outstanding_changes_removed revalidate_count
        connection_drop_count connection_revalidate_count sessionless_connections_expired
        stale_sessions_expired request_commit_queued throttled_ops learner_proposal_received_count
        learner_commit_received_count sync_processor_request_queued proposal_count
        quit_leading_due_to_disloyal_voter stale_requests stale_requests_dropped stale_replies
        request_throttle_wait_count large_requests_rejected digest_mismatches_count
        unsuccessful_handshake insecure_admin_count tls_handshake_exceeded
        cnxn_closed_without_zk_server_running skip_learner_request_to_next_processor_count
        requests_not_forwarded_to_commit_processor response_bytes watch_bytes"""
    return (
        *(Spec(n, s, b) for n in basic_summaries.split()),
        *(Spec(n, s, a) for n in advanced_summaries.split()),
        *(Spec(n, c) for n in counters.split()),
        Spec("write_per_namespace", s, b, labelled=True),
        Spec("read_per_namespace", s, b, labelled=True),
        Spec("learner_handler_qp_size", s, b, labelled=True),
        Spec("learner_handler_qp_time_ms", s, a, labelled=True),
        Spec("ack_latency", s, a, labelled=True),
        Spec("quota_exceeded_error_per_namespace", c, labelled=True),
    )


SERVER_METRICS: Final[tuple[Spec, ...]] = _specs()
"""Everything 3.8.0's ``ServerMetrics`` creates (``server/ServerMetrics.java``)."""


def observe_requests(
    registry: MetricsRegistry,
    latencies: Iterable[tuple[bool, float]],
    namespace_bytes: Iterable[tuple[bool, str, int]] = (),
) -> None:
    """What a server step answered and touched: each request's latency (ms) into
    ``updatelatency`` (writes and new sessions) or ``readlatency`` (the rest), as
    ``ServerStats#updateLatency``; the bytes of each node read or written into
    ``read_per_namespace``/``write_per_namespace`` under its top-level namespace."""
    read = registry.summary("readlatency", DetailLevel.ADVANCED)
    update = registry.summary("updatelatency", DetailLevel.ADVANCED)
    for write, ms in latencies:
        (update if write else read).observe(ms)
    for write, namespace, size in namespace_bytes:
        name = "write_per_namespace" if write else "read_per_namespace"
        registry.summary_set(name, namespace).observe(size)


def _quantile(ordered: list[float], q: float) -> float:
    """Nearest-rank quantile of a sorted list (NaN when empty)."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


class Counter:
    """A count that only grows (``Counter#add``)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0

    def inc(self, delta: int = 1) -> None:
        if delta < 0:
            raise ValueError(f"a counter only grows (delta {delta})")
        self.value += delta


class Summary:
    """Observations: count, sum, min, max since start, and a window for quantiles."""

    __slots__ = ("_clock", "_window", "_window_s", "count", "max", "min", "total")

    def __init__(self, clock: Callable[[], float], window_s: float) -> None:
        self._clock = clock
        self._window_s = window_s
        self._window: deque[tuple[float, float]] = deque(maxlen=WINDOW_SAMPLES)
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self._window.append((self._clock(), value))

    def observe_range(self, start: int, stop: int) -> None:
        """``observe`` each of ``range(start, stop)``, at one reading of the clock."""
        n = stop - start
        if n <= 0:
            return
        self.count += n
        self.total += (start + stop - 1) * n / 2
        self.min = min(self.min, start)
        self.max = max(self.max, stop - 1)
        now = self._clock()
        self._window.extend([(now, float(v)) for v in range(start, stop)])

    def recent(self) -> list[float]:
        """The window's values, sorted (old observations dropped first)."""
        horizon = self._clock() - self._window_s
        window = self._window
        while window and window[0][0] < horizon:
            window.popleft()
        return sorted(v for _, v in window)

    def reset(self) -> None:
        self._window.clear()
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf


class _Family:
    """Members of one metric by ``key`` label value (one unlabelled member: key "")."""

    __slots__ = ("members", "spec")

    def __init__(self, spec: Spec) -> None:
        self.spec = spec
        self.members: dict[str, Counter | Summary] = {}


@dataclass(frozen=True, slots=True)
class Sample:
    """One line of Prometheus text: name, labels, value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: Kind
    help: str
    samples: tuple[Sample, ...]


class MetricsRegistry:
    """One peer's metrics: ZooKeeper's ``ServerMetrics`` plus gauges the runtime registers.

    The runtime feeds it through :meth:`counter` (``.inc()``), :meth:`summary`
    (``.observe(ms)``), :meth:`summary_set` / :meth:`counter_set` (with a key) and
    :meth:`register_gauge` (a callable read at scrape time; ``None`` reads as 0, as in 3.8).
    ``before_scrape`` callables run once at the start of every :meth:`exposition` and
    :meth:`dump` (take one status snapshot there, and let the gauges read it).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        window_s: float = WINDOW_SECONDS,
        server_metrics: Iterable[Spec] = SERVER_METRICS,
    ) -> None:
        self._clock = clock
        self._window_s = window_s
        self._families: dict[str, _Family] = {}
        self._gauges: dict[str, tuple[GaugeFn, Kind, str]] = {}
        self._gauge_sets: dict[str, tuple[GaugeSetFn, str]] = {}
        self._before: list[Callable[[], None]] = []
        self._summaries: dict[tuple[str, str], Summary] = {}
        """Summaries by name and key, as made: a request's observations find theirs in
        one lookup (a member, once made, is never replaced)."""
        for spec in server_metrics:
            family = _Family(spec)
            self._families[spec.name] = family
            if not spec.labelled:
                family.members[""] = self._new(spec.kind)

    def _new(self, kind: Kind) -> Counter | Summary:
        return Counter() if kind is Kind.COUNTER else Summary(self._clock, self._window_s)

    def _family(self, name: str, kind: Kind, level: DetailLevel, labelled: bool) -> _Family:
        family = self._families.get(name)
        if family is None:
            if name in self._gauges or name in self._gauge_sets:
                raise ValueError(f"{name} is a gauge")
            family = _Family(Spec(name, kind, level, labelled))
            self._families[name] = family
        elif family.spec.kind is not kind or family.spec.labelled is not labelled:
            raise ValueError(
                f"{name} is a {family.spec.kind.value}, labelled={family.spec.labelled}"
            )
        return family

    # -- feeding ------------------------------------------------------------------------

    def counter(self, name: str) -> Counter:
        family = self._family(name, Kind.COUNTER, DetailLevel.BASIC, False)
        member = family.members.get("")
        if member is None:
            member = family.members[""] = Counter()
        assert isinstance(member, Counter)
        return member

    def summary(self, name: str, level: DetailLevel = DetailLevel.BASIC) -> Summary:
        made = self._summaries.get((name, ""))
        if made is not None:
            return made
        family = self._family(name, Kind.SUMMARY, level, False)
        member = family.members.get("")
        if member is None:
            member = family.members[""] = Summary(self._clock, self._window_s)
        assert isinstance(member, Summary)
        self._summaries[name, ""] = member
        return member

    def summary_set(self, name: str, key: str, level: DetailLevel = DetailLevel.BASIC) -> Summary:
        made = self._summaries.get((name, key))
        if made is not None and key:
            return made
        family = self._family(name, Kind.SUMMARY, level, True)
        member = family.members.get(key)
        if member is None:
            member = family.members[key] = Summary(self._clock, self._window_s)
        assert isinstance(member, Summary)
        if key:
            self._summaries[name, key] = member
        return member

    def counter_set(self, name: str, key: str) -> Counter:
        family = self._family(name, Kind.COUNTER, DetailLevel.BASIC, True)
        member = family.members.get(key)
        if member is None:
            member = family.members[key] = Counter()
        assert isinstance(member, Counter)
        return member

    def register_gauge(
        self, name: str, read: GaugeFn, *, kind: Kind = Kind.GAUGE, help: str | None = None
    ) -> None:
        """A value read at scrape time.  ``kind=COUNTER`` for a count kept elsewhere
        (exported as a counter).  Registering a name again replaces the reader."""
        if name in self._families:
            raise ValueError(f"{name} is a {self._families[name].spec.kind.value}")
        if kind is Kind.SUMMARY:
            raise ValueError("a gauge is a gauge or a counter")
        self._gauges[name] = (read, kind, help or name)

    def unregister_gauge(self, name: str) -> None:
        self._gauges.pop(name, None)

    def register_gauge_set(self, name: str, read: GaugeSetFn, help: str | None = None) -> None:
        if name in self._families:
            raise ValueError(f"{name} is a {self._families[name].spec.kind.value}")
        self._gauge_sets[name] = (read, help or name)

    def unregister_gauge_set(self, name: str) -> None:
        self._gauge_sets.pop(name, None)

    def before_scrape(self, hook: Callable[[], None]) -> None:
        self._before.append(hook)

    def gauge_names(self) -> frozenset[str]:
        return frozenset(self._gauges)

    def reset_summaries(self) -> None:
        """Forget every summary's observations (``srst`` on the default provider)."""
        for family in self._families.values():
            for member in family.members.values():
                if isinstance(member, Summary):
                    member.reset()

    # -- reading ------------------------------------------------------------------------

    def _run_hooks(self) -> None:
        for hook in self._before:
            hook()

    def families(self) -> Iterator[Family]:
        """Every metric as Prometheus families (sorted by name); runs the hooks first."""
        self._run_hooks()
        out: list[Family] = []
        for name, family in self._families.items():
            out.append(self._family_samples(name, family))
        for name, (read, kind, help_text) in self._gauges.items():
            out.append(Family(name, kind, help_text, (Sample(name, (), _number(read())),)))
        for name, (read_set, help_text) in self._gauge_sets.items():
            samples = tuple(
                Sample(name, (("key", key),), float(value)) for key, value in read_set().items()
            )
            out.append(Family(name, Kind.GAUGE, help_text, samples))
        out.sort(key=lambda f: f.name)
        return iter(out)

    def _family_samples(self, name: str, family: _Family) -> Family:
        spec = family.spec
        samples: list[Sample] = []
        quantiles = (0.5, 0.9, 0.99) if spec.level is DetailLevel.ADVANCED else (0.5,)
        for key, member in family.members.items():
            base = (("key", key),) if spec.labelled else ()
            if isinstance(member, Counter):
                samples.append(Sample(name, base, float(member.value)))
                continue
            ordered = member.recent()
            for q in quantiles:
                samples.append(Sample(name, (*base, ("quantile", str(q))), _quantile(ordered, q)))
            samples.append(Sample(f"{name}_count", base, float(member.count)))
            samples.append(Sample(f"{name}_sum", base, float(member.total)))
        return Family(name, spec.kind, name, tuple(samples))

    def exposition(self) -> str:
        """Prometheus text format 0.0.4."""
        lines: list[str] = []
        for family in self.families():
            lines.append(f"# HELP {family.name} {_escape_help(family.help)}")
            lines.append(f"# TYPE {family.name} {family.kind.value}")
            for s in family.samples:
                if s.labels:
                    labels = ",".join(f'{k}="{_escape_label(v)}"' for k, v in s.labels)
                    lines.append(f"{s.name}{{{labels}}} {_format(s.value)}")
                else:
                    lines.append(f"{s.name} {_format(s.value)}")
        lines.append("")
        return "\n".join(lines)

    def dump(self) -> list[tuple[str, Number]]:
        """The default provider's ``dump`` (``mntr``'s metric lines, without ``zk_``)."""
        self._run_hooks()
        out: list[tuple[str, Number]] = []
        for name, (read, _kind, _help) in self._gauges.items():
            out.append((name, _plain(read())))
        for name, (read_set, _help) in self._gauge_sets.items():
            out.extend((f"{key}_{name}", _plain(v)) for key, v in read_set().items())
        for name, family in self._families.items():
            advanced = family.spec.level is DetailLevel.ADVANCED
            for key, member in family.members.items():
                full = f"{key}_{name}" if family.spec.labelled else name
                if isinstance(member, Counter):
                    out.append((full, member.value))
                else:
                    out.extend(_summary_dump(full, member, advanced))
        return out


def _summary_dump(name: str, s: Summary, advanced: bool) -> list[tuple[str, Number]]:
    """``AvgMinMaxCounter#values`` (and ``AvgMinMaxPercentileCounter``'s percentiles)."""
    count = s.count
    avg = round(s.total / count, 4) if count else 0.0
    rows: list[tuple[str, Number]] = [
        (f"avg_{name}", avg),
        (f"min_{name}", round(s.min) if count else 0),
        (f"max_{name}", round(s.max) if count else 0),
        (f"cnt_{name}", count),
        (f"sum_{name}", round(s.total)),
    ]
    if advanced:
        ordered = s.recent()
        for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
            value = _quantile(ordered, q)
            rows.append((f"{label}_{name}", 0 if math.isnan(value) else round(value)))
    return rows


def _number(value: Number | None) -> float:
    return 0.0 if value is None else float(value)


def _plain(value: Number | None) -> Number:
    return 0 if value is None else value


def _format(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
