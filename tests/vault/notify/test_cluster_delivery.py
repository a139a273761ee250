"""Delivery on each storage engine; in a cluster only the member holding the
``notify.delivery`` lease delivers, each claim and record fenced by it."""

from __future__ import annotations

import json

import pytest

from tests.tls_certificates import CertificateAuthority
from tests.vault.notify.conftest import WebhookReceiver
from tests.vault.notify.test_delivery import add_webhook, status_changed
from vault.cluster.lease import LeaseLostError, acquire, leases
from vault.gateway import Gateway
from vault.notify.delivery import LEASE, deliver_due


@pytest.mark.contract
def test_a_member_delivers_only_while_it_holds_the_lease(
    gateway: Gateway, webhook_receiver: WebhookReceiver, trusted_ca: CertificateAuthority,
    store_engine: str,
) -> None:  # fmt: skip
    assert (gateway.member_id is not None) == (store_engine == "postgresql")
    add_webhook(gateway, webhook_receiver, trusted_ca)
    status_changed(gateway, "first")
    assert deliver_due(gateway).delivered == 1
    if gateway.member_id is None:
        assert leases(gateway.store) == []  # a single machine has no one to share with
        return
    [held] = [row for row in leases(gateway.store) if row["name"] == LEASE]
    assert held["holder"] == gateway.member_id
    with gateway.store.write():  # this member stopped long enough for another to take over
        gateway.store.execute("UPDATE leases SET expires_ms = 0 WHERE name = ?", [LEASE])
    acquire(gateway.store, LEASE, "another-member")
    status_changed(gateway, "second")
    with pytest.raises(LeaseLostError):
        deliver_due(gateway)
    assert [json.loads(r.body)["credential"] for r in webhook_receiver.requests] == ["first"]
