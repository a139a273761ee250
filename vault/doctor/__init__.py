"""``gwvault doctor``: the machine's and the vault's posture, one check at a time.

``vault.doctor.run``: ``CHECKS`` (every check, in the order shown) and
``run_doctor``; ``vault.doctor.checks``: ``Check`` (ok, warn or fail, what was
found, what to do), ``DoctorSubject`` (the data dir, and the vault opened once
on demand) and ``DoctorReport``.  The checks: ``system`` (swap, core dumps,
clock sync), ``files`` (data dir modes and owners), ``vault_state`` (store,
store clock, audit trail, certificates, key backup), ``sinks`` (audit sinks).
"""
