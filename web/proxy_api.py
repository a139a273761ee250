"""The admin's HTTP proxy in the JSON API, read only: ``/api/v1/proxy`` (``api.proxy.show``).

Setting it stays on the command line (``gwvault proxy set``), where its
password is read from a file, a pipe or a prompt: no route takes the password
in or gives it out (``password`` says only ``set``).  System mode shows what
the server process's own environment gives, which is what its connections use.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from vault.proxy.stored import shown_proxy
from web.access import gateway, require, web_caller

proxy = Blueprint("proxy", __name__, url_prefix="/proxy")


@proxy.get("")
def show() -> Response:
    require("proxy.manage")
    return jsonify(shown_proxy(gateway(), web_caller()))
