"""``haneul server``: start the platform server (API, web pages, scheduler, local executor)."""

from __future__ import annotations

import socket

import typer

from haneul.errors import Conflict


def register(app: typer.Typer) -> None:
    app.command("server")(server)


def server(
    host: str = typer.Option(None, help="Interface to listen on [default: HANEUL_HOST or 127.0.0.1]."),
    port: int = typer.Option(None, help="Port to listen on [default: HANEUL_PORT or 7860]."),
    log_level: str = typer.Option("warning", help="uvicorn log level (debug, info, warning, error)."),
) -> None:
    """Start the haneul server with its embedded defaults (SQLite + local folder + local executor).

    Everything lives under HANEUL_HOME (default ~/.haneul). Sessions started by an earlier server
    that are still running are re-attached; those that vanished are marked lost.
    """
    import uvicorn

    from haneul.platform.server import create_app
    from haneul.platform.service import Platform
    from haneul.settings import get_settings

    settings = get_settings()
    host = host or settings.host
    port = port or settings.port
    _check_port_free(host, port)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = settings.server or f"http://{shown}:{port}"
    platform = Platform(settings, server_url=url)
    platform.start()  # takes the home lock: a second server on the same home fails here, in one line
    app = create_app(settings, platform=platform, server_url=url)
    typer.echo(f"haneul server on {url}  (home: {settings.home}; API docs: {url}/api/v1/docs)")
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise Conflict(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
