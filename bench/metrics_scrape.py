"""What one GET /metrics costs on a vault of 1,000 tested credentials.

``python -m bench.metrics_scrape``: a fresh vault, 1,000 SQLite credentials
(every other one's file removed, so statuses differ), each tested once by
the scheduler's tick; then ``gwvault serve`` with two workers and one
keep-alive HTTPS client scraping again and again, counts only and then with
per-credential series.  Prints the median and p90 of each (the first scrape
reported apart: cold caches).
"""

from __future__ import annotations

import sqlite3
import statistics
import time
from pathlib import Path

from bench.at_scale import Client
from bench.served import free_port, fresh_vault, gwvault, gwvault_serve, serving
from vault.access.destination_policy import allow_sqlite_dir
from vault.context import RequestContext
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.format.encrypted_credential import CredentialPayload
from vault.gateway import Gateway
from vault.health.checks import tick

COUNT = 1000
SCRAPES = 50


def _stock(data_dir: Path, files: Path) -> None:
    files.mkdir()
    anonymous = CredentialPayload("anonymous", None, None)
    with Gateway.open(data_dir, RequestContext.for_cli()) as gateway:
        allow_sqlite_dir(gateway, str(files))
        service = CredentialService(gateway)
        with gateway.store.write():
            for n in range(COUNT):
                db = files / f"src-{n:04}.db"
                with sqlite3.connect(db) as conn:
                    conn.execute("CREATE TABLE t (x)")
                service.put(f"src-{n:04}", DataSource("sqlite", str(db)), anonymous)
        for n in range(0, COUNT, 2):
            (files / f"src-{n:04}.db").unlink()
        tick(gateway)


def _scrapes(port: int, token: str) -> tuple[float, list[float], int]:
    client = Client(port)
    headers = {"Authorization": f"Bearer {token}"}
    timings = []
    size = 0
    for _ in range(SCRAPES + 1):
        started = time.perf_counter()
        status, body, _response = client.request("GET", "/metrics", headers)
        timings.append(time.perf_counter() - started)
        if status != 200:
            raise RuntimeError(f"scrape answered {status}")
        size = len(body)
    client.close()
    return timings[0], timings[1:], size


def main() -> None:
    with fresh_vault() as vault:
        _stock(vault.data_dir, vault.data_dir.parent / "files")
        token = gwvault(vault.data_dir, "metrics", "token").stdout.splitlines()[-1]
        for per_credential in ("off", "on"):
            gwvault(vault.data_dir, "metrics", "set", "--per-credential", per_credential)
            port = free_port()
            log = vault.data_dir.parent / "serve.log"
            with serving(gwvault_serve(vault.data_dir, port, workers=2), port, log):
                first, rest, size = _scrapes(port, token)
            rest.sort()
            print(
                f"scrape of {COUNT} credentials, per-credential {per_credential}:"
                f" median {statistics.median(rest) * 1000:.1f} ms,"
                f" p90 {rest[int(len(rest) * 0.9)] * 1000:.1f} ms,"
                f" first {first * 1000:.1f} ms, {size} bytes"
            )


if __name__ == "__main__":
    main()
