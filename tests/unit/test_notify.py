"""sd_notify against real datagram sockets: a filesystem path and the abstract namespace."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from nemowatch.notify import Notifier, format_message, watchdog_interval


class Receiver:
    """A bound SOCK_DGRAM socket standing in for systemd's notify socket."""

    def __init__(self, name: str, address: str) -> None:
        self.name = name  # what $NOTIFY_SOCKET says
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(address)
        # a datagram to a unix socket is queued before sendto returns, so "nothing arrived"
        # can be checked at once, without waiting
        self.socket.setblocking(False)

    def datagrams(self) -> list[bytes]:
        """Every datagram queued so far, one bytes object each."""
        received = []
        while True:
            try:
                received.append(self.socket.recv(65536))
            except BlockingIOError:
                return received


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Receiver]:
    if request.param == "path":
        path = tmp_path / "notify"
        made = Receiver(str(path), str(path))
    else:
        name = f"nemowatch-test/{uuid.uuid4().hex}"
        made = Receiver(f"@{name}", f"\0{name}")
    yield made
    made.socket.close()


@pytest.fixture
def path_receiver(tmp_path: Path) -> Iterator[Receiver]:
    path = tmp_path / "notify"
    made = Receiver(str(path), str(path))
    yield made
    made.socket.close()


def notifier_for(receiver: Receiver, **environ: str) -> Notifier:
    return Notifier.from_environment({"NOTIFY_SOCKET": receiver.name, **environ}, pid=4242)


# ---- the message format ----------------------------------------------------------------------


def test_a_message_is_one_key_value_line_per_field_in_order() -> None:
    assert format_message({"READY": 1, "STATUS": "watching 3 inboxes"}) == (
        b"READY=1\nSTATUS=watching 3 inboxes\n"
    )


def test_newlines_inside_a_value_become_spaces() -> None:
    assert format_message({"STATUS": "one\ntwo\r\nthree"}) == b"STATUS=one two three\n"


def test_a_message_is_utf8() -> None:
    assert format_message({"STATUS": "剪辑 2 个"}) == "STATUS=剪辑 2 个\n".encode()


@pytest.mark.parametrize("key", ["READY=1\nSTOPPING", "", "MY KEY", "1ST"])
def test_a_key_that_would_corrupt_the_message_is_refused(key: str) -> None:
    with pytest.raises(ValueError, match="not a plain name"):
        format_message({key: "x"})


# ---- each message is one datagram with the exact bytes --------------------------------------


def test_ready_with_a_status_is_one_datagram(receiver: Receiver) -> None:
    with notifier_for(receiver) as notifier:
        notifier.ready("watching 3 inboxes")
    assert receiver.datagrams() == [b"READY=1\nSTATUS=watching 3 inboxes\n"]


def test_each_notification_arrives_as_its_own_datagram(receiver: Receiver) -> None:
    with notifier_for(receiver) as notifier:
        notifier.ready()
        notifier.status("2 running, 14 queued")
        notifier.watchdog()
        notifier.stopping()
        assert notifier.send(STATUS="custom", ERRNO=0)
    assert receiver.datagrams() == [
        b"READY=1\n",
        b"STATUS=2 running, 14 queued\n",
        b"WATCHDOG=1\n",
        b"STOPPING=1\n",
        b"STATUS=custom\nERRNO=0\n",
    ]


def test_reloading_carries_the_clock_it_is_given_in_the_same_datagram(
    receiver: Receiver,
) -> None:
    with Notifier(receiver.name, clock_usec=lambda: 123_456_789) as notifier:
        notifier.reloading()
    assert receiver.datagrams() == [b"RELOADING=1\nMONOTONIC_USEC=123456789\n"]


def test_reloading_stamps_clock_monotonic_in_microseconds(path_receiver: Receiver) -> None:
    with notifier_for(path_receiver) as notifier:
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    [datagram] = path_receiver.datagrams()
    fields = dict(line.split("=", 1) for line in datagram.decode().splitlines())
    assert fields.keys() == {"RELOADING", "MONOTONIC_USEC"}
    assert fields["RELOADING"] == "1"
    # bracketed by two readings of the same clock: the right clock and the right unit
    # (seconds, milliseconds, nanoseconds or CLOCK_REALTIME would all fall outside)
    assert before <= int(fields["MONOTONIC_USEC"]) <= after


def test_one_socket_serves_every_message_until_close(path_receiver: Receiver) -> None:
    notifier = notifier_for(path_receiver)
    notifier.watchdog()
    first = notifier._socket
    notifier.watchdog()
    assert first is not None and notifier._socket is first
    notifier.close()
    assert first.fileno() == -1
    assert notifier.send(WATCHDOG=1) is False
    assert path_receiver.datagrams() == [b"WATCHDOG=1\n", b"WATCHDOG=1\n"]
    notifier.close()  # twice is harmless


def test_sending_leaves_the_environment_alone(
    path_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.name)
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    with Notifier.from_environment() as notifier:
        notifier.ready()
    assert path_receiver.datagrams() == [b"READY=1\n"]
    assert os.environ["NOTIFY_SOCKET"] == path_receiver.name
    assert os.environ["WATCHDOG_USEC"] == "60000000"


# ---- status de-duplication ---------------------------------------------------------------------


def test_status_is_sent_only_when_it_changes(path_receiver: Receiver) -> None:
    with notifier_for(path_receiver) as notifier:
        for text in ["idle", "idle", "1 running", "1 running", "idle"]:
            notifier.status(text)
    assert path_receiver.datagrams() == [
        b"STATUS=idle\n",
        b"STATUS=1 running\n",
        b"STATUS=idle\n",
    ]


def test_the_status_sent_with_ready_counts_as_the_last_status(path_receiver: Receiver) -> None:
    with notifier_for(path_receiver) as notifier:
        notifier.ready("watching 1 inbox")
        notifier.status("watching 1 inbox")
    assert path_receiver.datagrams() == [b"READY=1\nSTATUS=watching 1 inbox\n"]


# ---- the watchdog interval ---------------------------------------------------------------------


def test_the_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}, pid=4242) == 30.0


def test_the_watchdog_interval_applies_when_watchdog_pid_is_ours() -> None:
    environ = {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4242"}
    assert watchdog_interval(environ, pid=4242) == 10.0


def test_no_watchdog_when_watchdog_pid_is_another_process() -> None:
    environ = {"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "4243"}
    assert watchdog_interval(environ, pid=4242) is None


@pytest.mark.parametrize(
    "environ",
    [{}, {"WATCHDOG_USEC": ""}, {"WATCHDOG_USEC": "0"}, {"WATCHDOG_USEC": "-5"}],
    ids=["absent", "empty", "zero", "negative"],
)
def test_no_watchdog_without_a_positive_watchdog_usec(environ: dict[str, str]) -> None:
    assert watchdog_interval(environ, pid=4242) is None


def test_from_environment_defaults_to_this_process(
    path_receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.name)
    monkeypatch.setenv("WATCHDOG_USEC", "8000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    with Notifier.from_environment() as ours:
        assert ours.enabled
        assert ours.watchdog_interval == 4.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    with Notifier.from_environment() as theirs:
        assert theirs.watchdog_interval is None


# ---- disabled, and failures ----------------------------------------------------------------------


@pytest.mark.parametrize("environ", [{}, {"NOTIFY_SOCKET": ""}], ids=["unset", "empty"])
def test_without_a_socket_nothing_is_sent_and_nothing_is_logged(
    environ: dict[str, str],
) -> None:
    with capture_logs() as logs, Notifier.from_environment(environ, pid=4242) as notifier:
        assert notifier.enabled is False
        assert notifier.send(READY=1) is False
        notifier.ready("x")
        notifier.reloading()
        notifier.status("y")
        notifier.watchdog()
        notifier.stopping()
        assert notifier._socket is None  # not even opened
    assert logs == []


def test_a_vanished_socket_fails_quietly_and_warns_once(path_receiver: Receiver) -> None:
    with capture_logs() as logs, notifier_for(path_receiver) as notifier:
        assert notifier.send(READY=1) is True
        path_receiver.socket.close()
        os.unlink(path_receiver.name)
        assert notifier.send(WATCHDOG=1) is False
        notifier.watchdog()
        notifier.status("still running")
        notifier.stopping()
    failures = [entry for entry in logs if entry["event"] == "notify.failed"]
    assert len(failures) == 1
    assert failures[0]["log_level"] == "warning"
    assert failures[0]["socket"] == path_receiver.name
    assert failures[0]["fields"] == ["WATCHDOG"]


def test_a_status_that_failed_is_sent_again_once_the_socket_is_back(tmp_path: Path) -> None:
    address = str(tmp_path / "notify")
    with Notifier(address) as notifier:
        notifier.status("watching")  # nobody listens yet: not sent
        back = Receiver(address, address)
        notifier.status("watching")
    assert back.datagrams() == [b"STATUS=watching\n"]
    back.socket.close()


@pytest.mark.parametrize("name", ["notify.sock", "vsock:2:1234", "@"])
def test_an_address_that_is_not_a_unix_socket_fails_with_a_warning(name: str) -> None:
    with capture_logs() as logs, Notifier(name) as notifier:
        assert notifier.enabled
        assert notifier.send(READY=1) is False
    [failure] = logs
    assert failure["event"] == "notify.failed"
    assert "unsupported NOTIFY_SOCKET address" in failure["error"]


def test_a_full_manager_queue_drops_the_message_at_once_instead_of_waiting(
    tmp_path: Path,
) -> None:
    """Nobody reads the socket: sends fail fast (the event loop never waits on systemd)."""
    path = tmp_path / "unread.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": str(path)})
    try:
        results = [notifier.send(STATUS="x" * 1000) for _ in range(2000)]
    finally:
        notifier.close()
        receiver.close()
    assert results[0] is True
    assert results[-1] is False  # the queue filled up; the send returned instead of blocking
