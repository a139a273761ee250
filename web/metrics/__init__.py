"""GET /metrics: the Prometheus text format, to the scrape token only.

- ``requests``: every request counted and timed by route template, in each worker;
- ``exposition``: the vault's numbers as metric families, and the page a scrape gets;
- ``route``: the route and its token check;
- ``worker_counts``: the private directory where forked workers keep their counts.
"""
