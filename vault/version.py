"""This gwvault's version, as its package metadata says (shown by cluster members)."""

from importlib import metadata

try:
    SOFTWARE_VERSION = metadata.version("gwvault")
except metadata.PackageNotFoundError:  # run from a checkout that was never installed
    SOFTWARE_VERSION = "0+unknown"
