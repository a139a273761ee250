"""A scheduled run over 1,000 credentials against a real HTTPS server that
counts the tests it serves at once: every credential gets a status, the peak
reaches the concurrency bound and never passes it, and the run finishes.  How
long it takes is a number for the benchmarks, not a pass mark here (9 s on a
quiet 2-core machine, 18 s on a loaded one: one worker of ``make test``'s three)."""

from __future__ import annotations

import datetime

from tests.tls_certificates import CertificateAuthority
from tests.vault.health.checking_server import counting_https_server
from tests.vault.health.test_scheduled_checks import ANONYMOUS, clock, ticking
from tests.vault.notify.conftest import MovingClock
from vault.access.destination_policy import allow_network
from vault.connectors.destinations import AllowedNetwork
from vault.credentials import CredentialService
from vault.format.data_source import DataSource
from vault.gateway import Gateway
from vault.health.checks import due_names, tick
from vault.health.settings import HealthSettings, save_health_settings
from vault.health.status import read_status

__all__ = ["clock", "ticking"]  # the fixtures, shared

COUNT = 1000
BOUND = 4


def test_a_scheduled_run_over_many_credentials_stays_within_its_bound(
    ticking: Gateway, trusted_ca: CertificateAuthority, clock: MovingClock
) -> None:
    gateway = ticking
    save_health_settings(gateway, HealthSettings(concurrency=BOUND))
    # A scheduled test goes only where the admin's policy lets a creator's go.
    allow_network(gateway, AllowedNetwork.parse("127.0.0.1/32"))
    with counting_https_server(trusted_ca, hold_seconds=0.02) as (port, counts):
        source = DataSource("http", f"https://127.0.0.1:{port}/", tls="verify-full",
                            ca_pem=trusted_ca.pem)  # fmt: skip
        service = CredentialService(gateway)
        with gateway.store.write():  # one transaction: the setup, not the subject
            for n in range(COUNT):
                service.put(f"src-{n:04}", source, ANONYMOUS)
        service.disable("src-0000")

        outcomes = tick(gateway)

        assert len(outcomes) == COUNT - 1, "every enabled credential, once"
        assert all(o.ok for o in outcomes), [o for o in outcomes if not o.ok][:3]
        assert counts.served == COUNT - 1
        assert counts.peak == BOUND, "within the bound, and the bound was used"
        records = service.list()
        assert read_status(gateway, records[0]) is None  # disabled: not tested
        for record in records[1:]:
            status = read_status(gateway, record)
            assert status is not None and status.reason == "ok"
        # Nothing is due again until the interval has come round.
        assert due_names(gateway) == []
        assert tick(gateway) == []
        clock.now += datetime.timedelta(days=1)
        assert COUNT / 3 < len(due_names(gateway)) < COUNT  # spread, not all at once
