"""The admin's HTTP proxy for gwvault's HTTPS traffic (issue 19).

- ``settings``: the modes (none, system, custom), the proxy URL and NO_PROXY
  rules, and ``ProxySettings.route_for``; pure.
- ``stored``: the sealed setting, the wrapped password, ``load_proxy``,
  ``set_proxy``, ``clear_proxy`` and the rewrap a GMK rotation does.

The tunnel itself is ``vault.connectors.proxy_tunnel.connect_routed``, which
HTTP data-source tests, notification webhooks and the audit HTTPS sink share.
Database connectors (PostgreSQL, MySQL, SQL Server) and SMTP never use it.
"""
