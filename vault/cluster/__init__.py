"""Gateway clusters: members sharing one PostgreSQL store (design.md, "Storage engines").

- ``member_keys``: a member's path to the GMK (its keystore, its member key, its wraps);
- ``enrolment``: making a member (the first at init, others by ``cluster join``);
- ``standing``: whether this member may serve (not removed, not disabled, not stale);
- ``members``: what an admin does to members (list, disable, enable, remove);
- ``lease``: singleton work on the database clock, fenced by a token.
"""
