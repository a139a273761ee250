"""Each request counted and timed, labelled by route template, method and status.

The route label is the Flask URL rule as written (``/api/v1/credentials/<name>``),
never the path: a path carries credential names and entry-link secrets, and a
client could mint a new series with each one.  Every label is from a fixed
set (rules, methods, three-digit statuses), so a client cannot grow the
series a scrape returns.  Under ``gwvault serve`` the values live in the
workers' shared directory (``web.metrics.worker_counts``), so any worker's
scrape counts every worker's requests.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger("gwvault.metrics")

UNMATCHED_ROUTE = "(unmatched)"
OTHER_METHOD = "OTHER"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_CONFIG_KEY = "GWVAULT_REQUEST_METRICS"
# Prometheus' default buckets stop at 10 s; a connection test's deadline is
# 10 s (vault.health.settings) and an Argon2id sign-in about 1 s, so the
# buckets reach 30 s with room at both ends.
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class RequestMetrics:
    """The request counter and latency histogram of one app (``registry``:
    where a single process collects them; multiprocess mode reads the files)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ("route", "method", "status")
        self.requests = Counter(
            "gwvault_http_requests", "HTTP requests answered, by route template, method and"
            " status.", labels, registry=registry,
        )  # fmt: skip
        self.duration = Histogram(
            "gwvault_http_request_duration_seconds", "Time to answer a request, by route"
            " template, method and status.", labels, registry=registry, buckets=_BUCKETS,
        )  # fmt: skip


def install_request_metrics(app: Flask) -> RequestMetrics:
    """Count ``app``'s requests (an ``after_request`` hook); the metrics."""
    metrics = RequestMetrics(CollectorRegistry(auto_describe=True))
    app.config[_CONFIG_KEY] = metrics
    app.after_request(count_request)
    return metrics


def request_metrics() -> RequestMetrics:
    metrics: RequestMetrics = current_app.config[_CONFIG_KEY]
    return metrics


def count_request(response: Response) -> Response:
    started = g.get("request_started")  # web.request_log.start_clock
    rule = request.url_rule
    labels = (
        rule.rule if rule is not None else UNMATCHED_ROUTE,
        request.method if request.method in _METHODS else OTHER_METHOD,
        str(response.status_code),
    )
    metrics = request_metrics()
    try:
        metrics.requests.labels(*labels).inc()
        if started is not None:
            metrics.duration.labels(*labels).observe(time.perf_counter() - started)
    except OSError as e:
        # The workers' counts directory is gone (a /tmp cleaner): the request
        # still gets its answer; the scrape shows the counts stopped.
        log.error("request not counted: %s", e.strerror or type(e).__name__)
    return response
