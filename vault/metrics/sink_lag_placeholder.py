"""PLACEHOLDER until the audit sinks land: ``vault.audit.sinks.status.sink_lags``.

The lead wires the real function at merge (one import in ``vault.metrics.vault_facts``)
and deletes this file.  Until then no sink exists, so none lags.
"""

from __future__ import annotations

from vault.gateway import Gateway


def sink_lags(gateway: Gateway) -> list[tuple[str, str, int]]:
    """Each audit sink's name, policy and how many trail entries it is behind."""
    del gateway
    return []
