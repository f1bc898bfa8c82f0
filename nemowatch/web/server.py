"""The web page as a companion of the daemon: uvicorn serving the app on the daemon's
loop, from start to stop.

uvicorn is asked not to touch the process: no signal handlers (the daemon owns SIGTERM,
SIGINT and SIGHUP), no logging setup (the daemon's structlog stays as configured), no
lifespan. The socket is bound here, so that an address in use is one logged error
(`http.cannot_listen`) and the daemon goes on without its page.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from pathlib import Path

import structlog
import uvicorn

from nemowatch.config import Config, HttpSettings
from nemowatch.config.http import open_to_others
from nemowatch.config.models import split_listen
from nemowatch.daemon.companions import Companion, Host
from nemowatch.errors import ConfigError, ConfigProblem
from nemowatch.web.app import MetricsSource, make_app
from nemowatch.web.guard import Guard

log = structlog.get_logger("nemowatch.web")

STOP_WITHIN = 3  # seconds open connections get to finish when the daemon stops


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the daemon's signals stay the daemon's


def read_password(path: Path) -> str:
    """The password in `path` (its first line). OSError or ValueError when there is none."""
    text = path.read_text(encoding="utf-8").splitlines()
    password = text[0].strip() if text else ""
    if not password:
        raise ValueError(f"{path} is empty: write the password into it")
    return password


def bind(listen: str) -> socket.socket:
    host, port = split_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)


def web_page(
    config: Config, listen: str | None = None, *, metrics: MetricsSource | None = None
) -> WebPage:
    """The page `config.http` asks for, at `listen` when given (`run --http`), serving
    `metrics` at /metrics; ConfigError
    when it may not be served so (beyond loopback without a token or a password)."""
    settings = config.http if config.http is not None else HttpSettings()
    if listen is not None:
        try:
            split_listen(listen)
        except ValueError as error:
            problem = ConfigProblem("--http", None, "", f"{error}, got {listen!r}")
            raise ConfigError([problem]) from None
        settings = settings.model_copy(update={"listen": listen})
    why = open_to_others(settings)
    if why is not None:
        where = str(config.source) if config.source else "the config"
        raise ConfigError([ConfigProblem(where, None, "http.listen (--http)", why)])
    return WebPage(settings, metrics)


class WebPage(Companion):
    """Serves the page at `settings.listen` while the daemon runs."""

    def __init__(self, settings: HttpSettings, metrics: MetricsSource | None = None) -> None:
        self.settings = settings
        self.metrics = metrics
        self.bound = asyncio.Event()  # set once it listens (tests wait for it)
        self.port: int | None = None  # the port it listens on (listen's port 0: chosen)

    async def run(self, daemon: Host) -> None:
        settings = self.settings
        try:
            password = read_password(settings.password_file) if settings.password_file else None
        except (OSError, ValueError) as error:
            log.error(
                "http.cannot_listen",
                listen=settings.listen,
                error=str(error),
                hint="the page is off until http.password_file holds a password; then "
                "restart the daemon",
            )
            return
        try:
            sock = bind(settings.listen)
        except OSError as error:
            log.error(
                "http.cannot_listen",
                listen=settings.listen,
                error=error.strerror or str(error),
                hint="another program listens there: choose another http.listen (or "
                "--http), then restart the daemon",
            )
            return
        self.port = sock.getsockname()[1]
        app = make_app(daemon, Guard(settings, password), self.metrics)
        config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,  # a bearer token must never reach a log; nor do the paths
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=STOP_WITHIN,
        )
        server = _Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        host, _port = split_listen(settings.listen)
        log.info(
            "http.listening",
            url=f"http://{f'[{host}]' if ':' in host else host}:{self.port}/",
            login=settings.token is not None or settings.password_file is not None,
        )
        self.bound.set()
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(STOP_WITHIN + 1):
                    await serving
            raise
        finally:
            sock.close()
