"""Scheduled health checks: every enabled credential tested on a schedule, its
status kept (sealed, tied to the trail) and a change of status raised as an event."""
