"""The page a scrape gets: the vault's numbers and the requests counted.

The vault's numbers are read at scrape time (``vault.metrics.vault_facts``)
and turned into metric families here; nothing about the vault is kept
between scrapes.  No family carries a secret; credential names appear only
in the ``per_credential`` families, which only an admin's setting turns on.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from vault.metrics.vault_facts import (
    CREDENTIAL_STATES,
    MEMBER_STATES,
    STATUS_REASONS,
    VaultFacts,
)
from web.metrics.requests import RequestMetrics
from web.metrics.worker_counts import counts_directory


class VaultCollector:
    """The families of one ``VaultFacts`` (read before: this does no I/O)."""

    def __init__(self, facts: VaultFacts) -> None:
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        facts = self._facts
        yield _gauge("gwvault_vault_unlocked", UNLOCKED, [((), 1)])
        yield _by("gwvault_credentials", STATES, "state", CREDENTIAL_STATES, facts.credentials)
        yield _by("gwvault_credential_status", REASONS, "reason", STATUS_REASONS, facts.statuses)
        if facts.nearest_expiry is not None:
            name = "gwvault_credential_nearest_expiry_timestamp_seconds"
            yield _gauge(name, NEAREST, [((), facts.nearest_expiry)])
        lags = [((sink, policy), lag) for sink, policy, lag in facts.sink_lags]
        yield _gauge("gwvault_audit_sink_lag_entries", LAG, lags, ("sink", "policy"))
        if facts.members is not None:
            yield _by("gwvault_cluster_members", MEMBERS, "state", MEMBER_STATES, facts.members)
            held = [(lease, 1) for lease in facts.lease_holders]
            yield _gauge("gwvault_lease_holder", HOLDER, held, ("lease", "member"))
        if facts.named:
            yield from _named(facts)


UNLOCKED = "1 while the endpoint serves: it serves only unlocked."
STATES = "Stored credentials by state (unverified: the row's seal does not hold)."
REASONS = "Active and expired credentials by the reason code of their last test."
NEAREST = "The soonest expiry (owner's or server's) of an active credential, Unix time."
LAG = "Audit trail entries each sink is behind."
MEMBERS = "Cluster members by state (unverified: the row's seal does not hold)."
HOLDER = "1 for the member holding each live lease."


def _named(facts: VaultFacts) -> Iterator[Metric]:
    yield _gauge(
        "gwvault_credential_info", "1 per active or expired credential, with its state and"
        " last test's reason (the admin enabled per-credential series).",
        [((c.name, c.state, c.reason), 1) for c in facts.named], ("name", "state", "reason"),
    )  # fmt: skip
    yield _gauge(
        "gwvault_credential_expiry_timestamp_seconds", "Each credential's soonest expiry"
        " (owner's or server's), Unix time.",
        [((c.name,), c.expires_at) for c in facts.named if c.expires_at is not None], ("name",),
    )  # fmt: skip


def _gauge(
    name: str,
    documentation: str,
    samples: Iterable[tuple[tuple[str, ...], float]],
    labels: tuple[str, ...] = (),
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for values, value in samples:
        family.add_metric(list(values), value)
    return family


def _by(
    name: str, documentation: str, label: str, known: tuple[str, ...], counts: dict[str, int]
) -> GaugeMetricFamily:
    # Every known value, zero or not: an alert on a series that never existed never fires.
    return _gauge(name, documentation, [((value,), counts.get(value, 0)) for value in known],
                  (label,))  # fmt: skip


class _Scrape:
    def __init__(self, *collectors: Collector) -> None:
        self._collectors = collectors

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def scrape_page(facts: VaultFacts, requests: RequestMetrics) -> bytes:
    """The text format of the vault's numbers, every worker's requests, and the
    answering worker's own process metrics."""
    directory = counts_directory()
    counted: Collector = requests.registry
    if directory is not None:
        # Gone (a /tmp cleaner): the vault's numbers still, the requests' not.
        counted = (
            MultiProcessCollector(None, str(directory))  # type: ignore[no-untyped-call]
            if directory.is_dir()
            else _Scrape()
        )
    # This worker's CPU, memory and file descriptors (one of the N).
    process = ProcessCollector(registry=CollectorRegistry())
    return generate_latest(_Scrape(VaultCollector(facts), counted, process))
