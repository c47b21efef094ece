"""What ``edge run`` measures: per-stage latencies, decisions, drops, reconnects — as a
Prometheus endpoint (with ``/healthz``) while it runs, and as the summary when it ends."""

from __future__ import annotations

import socketserver
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
from prometheus_client import CollectorRegistry, Histogram, make_wsgi_app
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edge.config import Section, within
from edge.errors import ConfigError
from edge.runtime.analyze import Result

#: Stages of a frame, in order. ``overhead`` is the loop's own share: everything except the
#: model's inference and decoding; ``total`` runs from capture to the decision's hand-off.
STAGES = (
    "decode",
    "preprocess",
    "inference",
    "scores",
    "policy",
    "drift",
    "handoff",
    "overhead",
    "total",
)
#: Seconds a scraper's connection may stay silent before it is closed.
REQUEST_TIMEOUT = 10.0
#: Buckets in seconds: 50 µs to 2.5 s.
BUCKETS = (5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5)
LiveValues = Callable[[], Mapping[str, Mapping[str, float]]]


class MetricsConfig(Section):
    """The Prometheus endpoint (``[metrics]``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    #: 0 picks a free port (printed at start).
    port: int = 9108

    def __post_init__(self) -> None:
        within("metrics.port", self.port, 0, 65535)


class Latencies:
    """The last ``capacity`` values of each stage, for percentiles that describe the run now
    rather than its whole history, in fixed memory."""

    def __init__(self, capacity: int = 1 << 13) -> None:
        # Filled, not np.zeros: calloc'd pages would be faulted in one by one as frames
        # arrive, and the ring's first lap would look like a leak in the process's RSS.
        self._values = np.full((len(STAGES), capacity), 0.0)
        self._n = 0

    def add(self, timings: Mapping[str, float]) -> None:
        column = self._n % self._values.shape[1]
        for i, stage in enumerate(STAGES):
            self._values[i, column] = timings.get(stage, 0.0)
        self._n += 1

    def percentiles(self) -> dict[str, dict[str, float]]:
        """Per stage: p50, p95, p99 and mean, in milliseconds."""
        n = min(self._n, self._values.shape[1])
        if n == 0:
            return {}
        q = np.percentile(self._values[:, :n], [50, 95, 99], axis=1) * 1e3
        mean = self._values[:, :n].mean(axis=1) * 1e3
        return {
            stage: {"p50": q[0, i], "p95": q[1, i], "p99": q[2, i], "mean": mean[i]}
            for i, stage in enumerate(STAGES)
        }


class Telemetry:
    """Per-frame figures (decisions, latencies) plus the live counters of the parts of the
    loop, which are read when scraped rather than pushed per frame."""

    def __init__(self, live: LiveValues) -> None:
        self.registry = CollectorRegistry()
        self.latencies = Latencies()
        self.decisions: Counter[tuple[str, str, str]] = Counter()
        self._stage_seconds = Histogram(
            "edge_stage_seconds",
            "Time a frame spends in each stage of the loop.",
            ["stage"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._stage = [self._stage_seconds.labels(stage) for stage in STAGES]
        self._decisions = PromCounter(
            "edge_decisions",
            "Frames by decision, reason and label.",
            ["decision", "reason", "label"],
            registry=self.registry,
        )
        self.registry.register(_LiveCollector(live))
        self._server: WSGIServer | None = None
        self._healthy: Callable[[], tuple[bool, str]] = lambda: (True, "ok")
        self._observers: list[Callable[[Result], None]] = []

    def observe(self, callback: Callable[[Result], None]) -> None:
        """Calls ``callback`` with every frame's result, after it is recorded: for a caller
        that keeps more than this class does (``edge bench`` keeps every frame's timings,
        the ring above only the last few thousand). It runs on the loop's judging thread."""
        self._observers.append(callback)

    def record(self, result: Result) -> None:
        timings = result.timings
        self.latencies.add(timings)
        for stage, child in zip(STAGES, self._stage, strict=True):
            child.observe(timings.get(stage, 0.0))
        key = (result.decision, result.reason, result.label)
        self.decisions[key] += 1
        self._decisions.labels(*key).inc()
        for callback in self._observers:
            callback(result)

    def serve(self, host: str, port: int, healthy: Callable[[], tuple[bool, str]]) -> int:
        """Serve ``/metrics`` and ``/healthz`` on a daemon thread; returns the bound port."""
        self._healthy = healthy
        metrics = make_wsgi_app(self.registry)

        def app(environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
            if environ.get("PATH_INFO") == "/healthz":
                ok, why = self._healthy()
                start(
                    "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
                )
                return [why.encode() + b"\n"]
            return metrics(environ, start)  # type: ignore[no-any-return]

        try:
            self._server = make_server(
                host, port, app, server_class=_ThreadingServer, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise ConfigError(
                f"metrics.port: cannot listen on {host}:{port}: {exc.strerror or exc} "
                "(another edge run? give another --metrics-port, 0 for any free one, or "
                "--no-metrics)"
            ) from None
        threading.Thread(
            target=self._server.serve_forever, name="edge-metrics", daemon=True
        ).start()
        return int(self._server.server_port)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    """A thread per connection: one scraper that connects and says nothing must not keep
    ``/metrics`` and ``/healthz`` from everyone else. Daemon threads, not joined on close:
    a stuck client never holds up the end of a run."""

    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # a client that timed out or hung up: its loss, not news for the log
        super().handle_error(request, client_address)


class _QuietHandler(WSGIRequestHandler):
    # The socket's timeout: a connection silent this long is closed, and its thread ends.
    timeout = REQUEST_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


class _LiveCollector(Collector):
    """Counters and gauges read from the loop's parts at scrape time. ``live()`` returns
    ``{"counters": {...}, "gauges": {...}}``; a name with a ``{key=value}`` suffix becomes a
    labelled sample."""

    def __init__(self, live: LiveValues) -> None:
        self._live = live

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        values = self._live()
        for kind, family in (("counters", CounterMetricFamily), ("gauges", GaugeMetricFamily)):
            grouped: dict[str, list[tuple[dict[str, str], float]]] = {}
            for name, value in values.get(kind, {}).items():
                base, _, labels = name.partition("{")
                pairs = dict(p.split("=", 1) for p in labels.rstrip("}").split(",") if p)
                grouped.setdefault(base, []).append((pairs, float(value)))
            for base, samples in grouped.items():
                names = sorted({k for pairs, _ in samples for k in pairs})
                metric = family(f"edge_{base}", f"edge {base.replace('_', ' ')}", labels=names)
                for pairs, value in samples:
                    metric.add_metric([pairs.get(k, "") for k in names], value)
                yield metric
