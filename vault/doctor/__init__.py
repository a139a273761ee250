"""``gwvault doctor``: the machine's and the vault's posture, one check at a time.

``run_doctor`` runs every check of ``CHECKS`` and returns a ``DoctorReport``;
each check is one small function returning a ``Check`` (ok, warn or fail, one
line of what was found, one line of what to do).
"""

from vault.doctor.checks import Check, DoctorReport, DoctorSubject
from vault.doctor.run import CHECKS, run_doctor

__all__ = ["CHECKS", "Check", "DoctorReport", "DoctorSubject", "run_doctor"]
