"""A gateway cluster on one shared PostgreSQL against a single SQLite vault.

Three workloads, each run on every layout in turn, round by round (so drift
on a shared machine hits them alike), each figure the median of the rounds
and each ratio the median of the rounds' ratios to the peer measured in that
same round:

* ``cluster-encrypt-value``: POST /api/v1/encrypt-value under wrk, one
  ``gwvault serve`` per member and one wrk per member, all at once.  The
  layouts get the same totals: ``TOTAL_WORKERS`` serve workers split evenly
  over the members, ``TOTAL_CONNECTIONS`` keep-alive connections likewise.
* ``cluster-agent-use``: ``GatewayAgent.use_credential`` (each use's audit
  entry committed before the secret is returned), one agent process per
  member, ``AGENT_THREADS`` job threads in total.
* ``cluster-credential-put``: ``CredentialService.put`` (a new credential and
  its audit entry per call, as ``gwvault credentials put`` stores one), one
  writing process per member, against the same number of processes writing
  to one SQLite vault.

Beside each figure: the cores kept busy (the servers, PostgreSQL, the whole
machine, another tenant's work included) and, on PostgreSQL, what the vault's
sessions waited for (``bench.store_waits``).

Every layout runs on this one machine: more members add processes, not
cores.  What the figures show is the cost of the shared store: each request
checks the member's standing there, and every write takes the store's one
write lock (``vault.store.postgres_engine``), so writes from all members
follow one another.
"""

from __future__ import annotations

import contextlib
import os
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from agent_keys.secret import Secret
from bench.agent import CREDENTIAL_PREFIX, CREDENTIALS, agent_calls
from bench.bursts import Call, Work, bursts_at_once
from bench.cluster_vault import Cluster, fresh_cluster
from bench.harness import Measurement
from bench.load import Request
from bench.served import (
    admin_token,
    busy_cores,
    free_port,
    fresh_vault,
    gwvault_serve,
    serving,
)
from bench.store_waits import sampled_waits
from bench.throughput import encrypt_value_request
from bench.wrk import THREADS, WrkResult, available, run_wrk_at_once

ENCRYPT_GROUP = "cluster-encrypt-value"
AGENT_GROUP = "cluster-agent-use"
PUT_GROUP = "cluster-credential-put"
MEMBER_COUNTS = (1, 2, 3)
PUT_WRITERS = (1, 3)
# Divisible by 1, 2 and 3, so every layout gets the same total.
TOTAL_WORKERS = 6
TOTAL_CONNECTIONS = 24
AGENT_THREADS = 6
SQLITE = "sqlite"
PUT_SECRET = "s3cr3t-0123456789abcdefghijklmno"  # noqa: S105 - a dummy 32-character secret

R = TypeVar("R")


@dataclass(frozen=True)
class ClusterShape:
    wrk_seconds: float
    warmup_seconds: float
    burst_seconds: float
    rounds: int


@dataclass(frozen=True)
class Layout:
    """One row: the data dirs served or written at once (one process each), and the rows
    (by the name of their ratio) it is compared with."""

    name: str
    data_dirs: tuple[Path, ...]
    peers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Round:
    """One layout's figure in one round, and figures beside it (cores busy, latency)."""

    rate: float
    errors: int
    figures: dict[str, float]


def members_row(count: int) -> str:
    return f"postgresql {count} member" + ("s" if count > 1 else "")


def writers_row(count: int) -> str:
    return f"{SQLITE} {count} writer" + ("s" if count > 1 else "")


def cluster(shape: ClusterShape) -> list[Measurement]:
    """The three workloads on a fresh cluster of three members and a fresh SQLite vault."""
    from tests.vault.keys.rotation_helpers import insert_credentials

    if not available():
        raise RuntimeError("wrk is not installed (make bench installs it: apt-get install wrk)")
    with fresh_cluster(max(MEMBER_COUNTS)) as shared, fresh_vault() as single:
        for vault in (single, shared.members[0]):
            insert_credentials(vault.data_dir, CREDENTIALS, prefix=CREDENTIAL_PREFIX)
        return [
            *encrypt_value(shared, single.data_dir, admin_token(single), shape),
            *agent_use(shared, single.data_dir, shape),
            *credential_put(shared, single.data_dir, shape),
        ]


def _member_layouts(shared: Cluster, sqlite: Path) -> list[Layout]:
    """SQLite, then 1, 2 and 3 members; each member layout against 1 member and SQLite."""
    dirs = tuple(vault.data_dir for vault in shared.members)
    layouts = [Layout(SQLITE, (sqlite,))]
    for count in MEMBER_COUNTS:
        peers = {"vs_sqlite": SQLITE}
        if count > 1:
            peers["vs_1_member"] = members_row(1)
        layouts.append(Layout(members_row(count), dirs[:count], peers))
    return layouts


# --- encrypt-value under wrk ----------------------------------------------------------------


def encrypt_value(
    shared: Cluster, sqlite: Path, sqlite_token: str, shape: ClusterShape
) -> list[Measurement]:
    on_sqlite = encrypt_value_request(sqlite_token)
    on_cluster = encrypt_value_request(admin_token(shared.members[0]))  # every member's token
    layouts = _member_layouts(shared, sqlite)

    def measure(layout: Layout, _: int) -> Round:
        request = on_cluster if _on_postgres(layout, shared) else on_sqlite
        return _wrk_round(layout, request, shared, shape)

    note = (
        f"wrk -t{THREADS} per member against its own gwvault serve, all at once; in every layout"
        f" {TOTAL_WORKERS} serve worker processes and {TOTAL_CONNECTIONS} keep-alive"
        f" connections in total, split evenly over the members; {shape.wrk_seconds:g} s after"
        f" {shape.warmup_seconds:g} s warmup; req/s summed over the members"
    )
    return _measured(ENCRYPT_GROUP, "req/s", layouts, measure, shape=shape, note=note)


def _wrk_round(layout: Layout, request: Request, shared: Cluster, shape: ClusterShape) -> Round:
    count = len(layout.data_dirs)
    workers, connections = TOTAL_WORKERS // count, TOTAL_CONNECTIONS // count
    with contextlib.ExitStack() as stack:
        servers = []
        for i, data_dir in enumerate(layout.data_dirs):
            port = free_port()
            log = data_dir.parent / f"serve-{data_dir.name}-{i}.log"
            command = gwvault_serve(data_dir, port, workers)
            servers.append(stack.enter_context(serving(command, port, log)))
        targets = [("127.0.0.1", server.port) for server in servers]
        if shape.warmup_seconds > 0:  # workers forked, connections open, caches warm
            run_wrk_at_once(targets, request, connections=connections, seconds=shape.warmup_seconds)
        results, figures = _observed(
            lambda: run_wrk_at_once(
                targets, request, connections=connections, seconds=shape.wrk_seconds
            ),
            layout,
            shared,
            {"server": [s.pid for s in servers]},
        )
    return Round(
        sum(r.rate for r in results),
        sum(r.errors for r in results),
        figures | _latency(results),
    )


def _latency(results: Sequence[WrkResult]) -> dict[str, float]:
    """The slowest member's percentiles, and the clients' cores."""
    return {
        "p50_ms": max(r.p50_ms for r in results),
        "p99_ms": max(r.p99_ms for r in results),
        "client_cpu_cores": sum(r.client_cpu_cores for r in results),
    }


# --- the agent's credential uses ------------------------------------------------------------


def agent_use(shared: Cluster, sqlite: Path, shape: ClusterShape) -> list[Measurement]:
    layouts = _member_layouts(shared, sqlite)

    def measure(layout: Layout, round_no: int) -> Round:
        threads = AGENT_THREADS // len(layout.data_dirs)
        tag = f"use-{round_no}"
        return _burst_round(agent_calls, layout, threads, shape.burst_seconds, tag, shared)

    note = (
        f"one GatewayAgent process per member, {AGENT_THREADS} job threads in total split"
        f" evenly, {shape.burst_seconds:g} s bursts started together; each use's audit entry"
        " committed before the secret is returned; uses/s summed over the members"
    )
    return _measured(AGENT_GROUP, "uses/s", layouts, measure, shape=shape, note=note)


# --- credential puts ------------------------------------------------------------------------


def credential_put(shared: Cluster, sqlite: Path, shape: ClusterShape) -> list[Measurement]:
    dirs = tuple(vault.data_dir for vault in shared.members)
    layouts: list[Layout] = []
    for count in PUT_WRITERS:
        first = {"vs_1_writer": writers_row(1)} if count > 1 else {}
        layouts.append(Layout(writers_row(count), (sqlite,) * count, first))
        versus = {"vs_sqlite": writers_row(count)}
        if count > 1:
            versus["vs_1_member"] = members_row(1)
        layouts.append(Layout(members_row(count), dirs[:count], versus))

    def measure(layout: Layout, round_no: int) -> Round:
        tag = f"put-{round_no}-{layouts.index(layout)}"
        return _burst_round(credential_puts, layout, 1, shape.burst_seconds, tag, shared)

    note = (
        "CredentialService.put of a new credential (sealed at rest, MACed row, audit entry) in"
        " one process per writer, one thread each, on its member's data dir (SQLite: all on"
        f" the one vault), {shape.burst_seconds:g} s bursts started together; puts/s summed;"
        " vs_sqlite: against SQLite with as many writers"
    )
    return _measured(PUT_GROUP, "puts/s", layouts, measure, shape=shape, note=note)


@contextlib.contextmanager
def credential_puts(data_dir: Path, tag: str) -> Iterator[Call]:
    """Puts of new credentials named after ``tag`` into the vault at ``data_dir``."""
    from vault.context import RequestContext
    from vault.credentials import CredentialService
    from vault.format.data_source import DataSource
    from vault.format.encrypted_credential import CredentialPayload
    from vault.gateway import Gateway

    context = RequestContext(actor="bench:put", channel="cli")
    source = DataSource("mysql", "db.internal:3306")
    payload = CredentialPayload("basic", "bench", Secret.from_text(PUT_SECRET))
    with Gateway.open(data_dir, context) as gateway:
        service = CredentialService(gateway)
        for i in range(20):  # connection, statements, caches
            service.put(f"{tag}-warmup-{i}", source, payload)
        yield lambda n: service.put(f"{tag}-{n}", source, payload)


# --- rounds and rows ------------------------------------------------------------------------


def _burst_round(  # noqa: PLR0917 - what to run, where, how long
    work: Work, layout: Layout, threads: int, seconds: float, tag: str, shared: Cluster
) -> Round:
    """One process per data dir of ``layout``, ``threads`` threads each, all at once."""
    members = [(data_dir, threads) for data_dir in layout.data_dirs]
    bursts, figures = _observed(
        lambda: bursts_at_once(work, members, seconds, tag), layout, shared, {}
    )
    # The members' processes run at once: their CPU over the window is the cores they kept.
    cores = sum(b.cpu_seconds for b in bursts) / max(b.seconds for b in bursts)
    figures["member_cpu_cores"] = cores
    return Round(sum(b.rate for b in bursts), sum(b.errors for b in bursts), figures)


def _on_postgres(layout: Layout, shared: Cluster) -> bool:
    return layout.data_dirs[0] in {vault.data_dir for vault in shared.members}


def _observed(
    measure: Callable[[], R], layout: Layout, shared: Cluster, trees: dict[str, list[int]]
) -> tuple[R, dict[str, float]]:
    """``measure()``'s result, the cores ``trees`` and the machine kept busy meanwhile,
    and, where the layout uses PostgreSQL, its cores and what its sessions waited for."""
    if not _on_postgres(layout, shared):
        return busy_cores(measure, trees)
    with sampled_waits(shared.postgres) as waits:
        result, cores = busy_cores(measure, trees | {"postgres": [shared.postgres_pid()]})
    return result, cores | waits


def _measured(
    group: str,
    unit: str,
    layouts: Sequence[Layout],
    measure: Callable[[Layout, int], Round],
    *,
    shape: ClusterShape,
    note: str,
) -> list[Measurement]:
    """``measure`` each layout in turn, ``shape.rounds`` times over."""
    runs: dict[str, list[Round]] = {layout.name: [] for layout in layouts}
    for round_no in range(shape.rounds):
        for layout in layouts:
            runs[layout.name].append(measure(layout, round_no))
    return layout_measurements(group, unit, runs, layouts, note)


def layout_measurements(
    group: str, unit: str, runs: dict[str, list[Round]], layouts: Sequence[Layout], note: str
) -> list[Measurement]:
    """One row per layout: the median of its rounds, the median of each figure beside
    it, and for each peer the median of the rounds' ratios to that peer."""
    rows = []
    for layout in layouts:
        rounds = runs[layout.name]
        rates = [r.rate for r in rounds]
        extra = {
            key: statistics.median(r.figures[key] for r in rounds) for key in rounds[0].figures
        }
        extra["errors"] = float(sum(r.errors for r in rounds))
        extra["processes"] = float(len(layout.data_dirs))
        extra["cpus"] = float(os.cpu_count() or 0)
        for key, peer in layout.peers.items():
            extra[key] = _ratio(rates, [r.rate for r in runs[peer]])
        note_of_rounds = f"{note}; median of {len(rounds)} round(s), ratios per round"
        row = Measurement(group, layout.name, unit, statistics.median(rates), tuple(rates))
        rows.append(replace(row, note=note_of_rounds, extra=extra))
    return rows


def _ratio(mine: Sequence[float], peer: Sequence[float]) -> float:
    """The median of each round's ratio, so drift between rounds cancels."""
    return statistics.median(a / b if b else float("nan") for a, b in zip(mine, peer, strict=True))
