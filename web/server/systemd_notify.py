"""The service manager's readiness protocol (sd_notify(3)), spoken directly.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``: an AF_UNIX datagram
socket, a path or, with a leading ``@``, a name in the abstract namespace.
Each message is newline-separated ``KEY=VALUE`` lines (``READY=1``,
``STOPPING=1``, ``STATUS=...``).  That is all of it, so no library is taken on
for it.  Messages carry no secret: only states and the URL served.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("gwvault.server")

NOTIFY_SOCKET = "NOTIFY_SOCKET"


class ServiceManager:
    """Where this process tells its service manager how it is doing."""

    def __init__(self, address: str | bytes) -> None:
        self.address = address

    @classmethod
    def from_environment(cls) -> ServiceManager | None:
        """The manager named by ``$NOTIFY_SOCKET``, taken out of the environment so
        the processes this one starts (drivers, tools) do not speak for it; None
        when it is unset or not an AF_UNIX address (``vsock:`` is not supported)."""
        value = os.environ.pop(NOTIFY_SOCKET, "")
        if value.startswith("@") and len(value) > 1:
            return cls(b"\0" + value[1:].encode())
        if value.startswith("/"):
            return cls(value)
        if value:
            log.error("NOTIFY_SOCKET %r is not an AF_UNIX address; not notifying", value[:108])
        return None

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE`` each) as one message; whether it was sent.

        A manager that went away is logged, not fatal: the service still serves.
        """
        message = "\n".join(fields).encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.sendto(message, self.address)
            except OSError as e:
                log.error("could not notify the service manager: %s", e.strerror or e)
                return False
        return True
