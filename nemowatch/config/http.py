"""The checks of `http:` (the web page) that one field alone cannot make: who may reach it."""

from __future__ import annotations

import ipaddress

from nemowatch.config.document import Origin
from nemowatch.config.models import HttpSettings, split_listen
from nemowatch.errors import ConfigProblem

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether `host` (a listen address) is reachable from this machine only."""
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def open_to_others(http: HttpSettings) -> str | None:
    """Why `http` may not be served as it is: listening beyond this machine with nothing
    asked of who comes. None when it may."""
    host, _port = split_listen(http.listen)
    if is_loopback(host) or http.token is not None or http.password_file is not None:
        return None
    return (
        f"listening on {http.listen} lets anyone who reaches this machine pause, resume and "
        "retry jobs: set http.token (a long random string, `openssl rand -hex 16`) or "
        'http.password_file, or listen on loopback ("127.0.0.1:8765")'
    )


def http_problems(http: HttpSettings, origin: Origin) -> list[ConfigProblem]:
    problems = []
    why = open_to_others(http)
    if why is not None:
        problems.append(origin.problem(("listen",), why))
    if http.password_file is not None and not http.password_file.is_file():
        problems.append(
            origin.problem(
                ("password_file",),
                f"{http.password_file} is not a file: write the password into it (one line, "
                "readable by the daemon's user only: chmod 600)",
            )
        )
    return problems
