"""``gwvault cluster status``: members, lease holders, the database's role and lag."""

from __future__ import annotations

from typing import Any

from vault.cluster.lease import leases
from vault.cluster.members import ClusterMembers
from vault.gateway import Gateway


def cluster_status(gateway: Gateway) -> dict[str, Any]:
    store = gateway.store
    facts: dict[str, Any] = {
        "gateway_id": gateway.gateway_id,
        "store": store.location,
        "epoch": gateway.epoch,
        "schema_version": store.setting("schema_version"),
        "this_member": gateway.member_id,
        "members": ClusterMembers(gateway).list(),
        "leases": leases(store),
    }
    server_facts = getattr(store.engine, "server_facts", None)
    if server_facts is not None:
        facts.update(server_facts())
    return facts
