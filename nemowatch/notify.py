"""Telling systemd how the daemon is doing: the sd_notify protocol, without libsystemd.

Why: with `Type=notify` systemd considers nemowatch started only once it says READY=1 (after
recovery and the watchers are up), shows its STATUS= line in `systemctl status`, restarts it
when its WATCHDOG=1 pings stop, and with `Type=notify-reload` (systemd >= 253) waits for
RELOADING=1 ... READY=1 around a SIGHUP reload. See sd_notify(3) and systemd.service(5).

The protocol in a sentence: each message is one datagram of newline-separated `KEY=value`
lines, sent on an AF_UNIX SOCK_DGRAM socket whose address is in $NOTIFY_SOCKET (a filesystem
path, or `@name` for the abstract namespace, where `@` stands for a leading NUL byte).

Sending never raises: a daemon must keep running when the service manager is unreachable,
so a failed send returns False and is logged once (`notify.failed`).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType

import structlog

log = structlog.get_logger("nemowatch.notify")

# Sends never wait: a datagram to a unix socket is queued at once unless the manager's queue
# is full (systemd stuck, or nobody reading). Then the message is dropped and send() returns
# False. Waiting would stall the event loop that runs every job -- measured: a test whose
# receiver never read made each send wait its former 1 s timeout and a job take 20 s.

# Keys are environment-variable-like names; anything else (`=`, a newline) would be read by
# the manager as a different assignment.
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def format_message(fields: Mapping[str, str | int]) -> bytes:
    """`KEY=value` lines, one per field in order, UTF-8; a newline in a value becomes a space.

    Raises ValueError for a key that is not a plain name (it would corrupt the message).
    """
    lines = []
    for key, value in fields.items():
        if not _KEY.fullmatch(key):
            raise ValueError(f"sd_notify field name {key!r} is not a plain name")
        text = str(value).replace("\r\n", " ").replace("\n", " ")
        lines.append(f"{key}={text}\n")
    return "".join(lines).encode("utf-8")


def monotonic_usec() -> int:
    """CLOCK_MONOTONIC now, in microseconds: the clock systemd compares MONOTONIC_USEC with."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def socket_address(name: str) -> str | None:
    """The address to send to for a $NOTIFY_SOCKET value; None when it is not a unix socket.

    `@name` is the abstract namespace (a leading NUL); other values must be absolute paths.
    (systemd >= 254 may also name `vsock:` addresses, used for virtual machines; not here.)
    """
    if name.startswith("@") and len(name) > 1:
        return "\0" + name[1:]
    if name.startswith("/"):
        return name
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int) -> float | None:
    """Seconds between WATCHDOG=1 pings: half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
    advises; None when no watchdog is set, or it is meant for another process ($WATCHDOG_PID).
    """
    usec = environ.get("WATCHDOG_USEC", "")
    if not usec.isdigit() or int(usec) <= 0:
        return None
    watched = environ.get("WATCHDOG_PID", "")
    if watched and (not watched.isdigit() or int(watched) != pid):
        return None
    return int(usec) / 2 / 1_000_000


class Notifier:
    """One connection's worth of sd_notify: a socket opened on first use, kept until close().

    The environment is read, never changed: FFmpeg children inherit $NOTIFY_SOCKET but not
    the socket itself (Python sockets are close-on-exec), and systemd only accepts messages
    from the main process under the default NotifyAccess=main.
    """

    def __init__(
        self,
        socket_name: str | None,
        *,
        watchdog_interval: float | None = None,
        clock_usec: Callable[[], int] = monotonic_usec,
    ) -> None:
        self.socket_name = socket_name or None
        self.enabled: bool = self.socket_name is not None
        self.watchdog_interval: float | None = watchdog_interval
        self._clock_usec = clock_usec
        self._socket: socket.socket | None = None
        self._closed = False
        self._warned = False
        self._last_status: str | None = None
        # sends may come from the event loop and from a helper thread at once
        self._lock = threading.Lock()

    @classmethod
    def from_environment(
        cls, environ: Mapping[str, str] | None = None, *, pid: int | None = None
    ) -> Notifier:
        """A notifier for $NOTIFY_SOCKET and $WATCHDOG_USEC/$WATCHDOG_PID (default: this
        process's environment and pid). Disabled when no socket is named."""
        environ = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        return cls(
            environ.get("NOTIFY_SOCKET"),
            watchdog_interval=watchdog_interval(environ, pid),
        )

    def send(self, **fields: str | int) -> bool:
        """Send `fields` as one datagram. False when disabled, closed, or the send failed
        (the first failure is logged as `notify.failed`); never raises for a socket problem."""
        if not self.enabled or not fields:
            return False
        message = format_message(fields)
        with self._lock:
            if self._closed:
                return False
            try:
                address = socket_address(self.socket_name or "")
                if address is None:
                    raise OSError(f"unsupported NOTIFY_SOCKET address {self.socket_name!r}")
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)
                # unconnected sendto: a socket re-created at the same address is still reached
                self._socket.sendto(message, address)
            except OSError as error:
                if not self._warned:
                    self._warned = True
                    log.warning(
                        "notify.failed",
                        socket=self.socket_name,
                        error=str(error),
                        fields=sorted(fields),
                        hint="systemd will not see status or readiness; further failures "
                        "are not logged",
                    )
                return False
        return True

    def ready(self, status: str | None = None) -> None:
        """Startup (or a reload) is complete: READY=1, with a STATUS= line when given."""
        if status is None:
            self.send(READY=1)
        elif self.send(READY=1, STATUS=status):
            self._last_status = status

    def reloading(self) -> None:
        """A reload began: RELOADING=1 with the MONOTONIC_USEC that `notify-reload` needs,
        in one datagram. Send ready() when the reload is done (whether or not it worked)."""
        self.send(RELOADING=1, MONOTONIC_USEC=self._clock_usec())

    def stopping(self) -> None:
        """A graceful stop began: STOPPING=1."""
        self.send(STOPPING=1)

    def status(self, text: str) -> None:
        """STATUS=text, only when it differs from the last status that was sent."""
        if text != self._last_status and self.send(STATUS=text):
            self._last_status = text

    def watchdog(self) -> None:
        """The daemon is alive: WATCHDOG=1 (every `watchdog_interval` seconds)."""
        self.send(WATCHDOG=1)

    def close(self) -> None:
        """Close the socket; later sends return False. Safe to call twice."""
        with self._lock:
            self._closed = True
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
