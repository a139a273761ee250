"""The audit page's Export button: the signed JSON Lines export that
``gwvault audit export`` writes, as a download.

The export is always the whole trail: its closing checkpoint signs the chain
head, and an auditor's ``gwvault audit verify-export`` checks every entry's
link to the one before, so a filtered file could not be verified.  A request
that names a filter is refused rather than answered with more than it asked.

It is ``gwvault audit export``'s code in two steps (``AuditLog.sign_export``,
``read_export``): the export is recorded (``audit.exported``) and its closing
checkpoint signed in a short write, where ``audit.read`` is decided again; the
lines through that checkpoint are then read from one snapshot, outside the
write, since every change waits on the write lock and a large trail takes
seconds to read.  They are spooled to an unnamed temporary file and sent from
it, so the app never holds the file in memory.  Unlike the CLI, a download
that fails after the commit is still recorded: its checkpoint was signed.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from flask import Response, request

from agent_keys.errors import InvalidInputError
from vault.audit.log import AuditLog
from web.access import gateway, handle, require, web_caller
from web.pages.blueprint import pages

CHUNK_BYTES = 256 * 1024
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@pages.post("/audit/export")
def audit_export() -> Response:
    """The whole trail as a signed export download; audit.read only, recorded."""
    require("audit.read")
    _refuse_filters()
    vault = gateway()
    log = AuditLog(vault)
    # Made first: a data dir the server cannot write to records no export.
    spool = tempfile.TemporaryFile(dir=handle().data_dir)  # noqa: SIM115 - closed by _chunks
    try:
        with vault.store.write():
            # Decided again where the export is recorded (T-WEB-12): a session
            # ended or a role changed since the request began refuses it here.
            web_caller().authorize(vault, "audit.read")
            signed = log.sign_export()
        log.read_export(signed, lambda lines: _spool(spool, lines))
        size = spool.tell()
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    response = Response(_chunks(spool), mimetype="application/jsonl", direct_passthrough=True)
    response.headers["Content-Length"] = str(size)
    name = export_filename(vault.name, signed.closing.at)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _refuse_filters() -> None:
    given = sorted(set(request.args) | (set(request.form) - {"csrf_token"}))
    if given:
        raise InvalidInputError(
            "the signed export is always the whole trail (a filtered file could not be"
            f" verified); it takes no {', '.join(given)[:200]}"
        )


def _spool(spool: BinaryIO, lines: Iterable[bytes]) -> None:
    for line in lines:
        spool.write(line)


def _chunks(spool: BinaryIO) -> Iterator[bytes]:
    with spool:
        while chunk := spool.read(CHUNK_BYTES):
            yield chunk


def export_filename(gateway_name: str, signed_at: str) -> str:
    """gwvault-audit-NAME-20261206T073310Z.jsonl: the gateway's name (which may
    hold any printable text, quotes included) reduced to ``[A-Za-z0-9._-]``, so
    it cannot end the header's quoted string, and the closing checkpoint's UTC time."""
    name = _FILENAME_UNSAFE.sub("-", gateway_name).strip(".-")[:64] or "gateway"
    at = re.sub(r"[^0-9T]", "", signed_at.removesuffix("+00:00"))[:15]
    return f"gwvault-audit-{name}-{at}Z.jsonl"
