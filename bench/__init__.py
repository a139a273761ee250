"""Benchmarks of gwvault against the libraries a user would pick instead (``make bench``)."""
