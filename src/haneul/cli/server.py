"""``haneul server``: start the platform server (API, web pages, scheduler, local executor)."""

from __future__ import annotations

import socket

import typer

from haneul.cli import output
from haneul.errors import Conflict, InvalidInput
from haneul.platform.credentials import is_loopback_host


def register(app: typer.Typer) -> None:
    app.command("server")(server)


def server(
    host: str = typer.Option(None, help="Interface to listen on (default: HANEUL_HOST or 127.0.0.1; "
                             "0.0.0.0 for every interface)."),
    port: int = typer.Option(None, help="Port to listen on (default: HANEUL_PORT or 7860; 0 picks a free one)."),
    log_level: str = typer.Option("warning", help="uvicorn log level (debug, info, warning, error)."),
) -> None:
    """Start the haneul server with its embedded defaults (SQLite + local folder + local executor).

    Everything lives under HANEUL_HOME (default ~/.haneul). Sessions started by an earlier server
    that are still running are re-attached; those that vanished are marked lost. The first start
    creates the local admin and prints a login link; the CLI on this machine finds its token by itself.
    Listening on an address other machines reach needs users with passwords (haneul user add).
    """
    import uvicorn

    from haneul.platform.accounts import Accounts
    from haneul.platform.credentials import admin_token_path
    from haneul.platform.server import create_app
    from haneul.platform.service import Platform
    from haneul.settings import get_settings

    settings = get_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    sock = _bind(host, port)  # bound here, so the banner names the port really listened on
    port = sock.getsockname()[1]
    local = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    url = settings.server or f"http://{_url_host(local)}:{port}"
    platform = Platform(settings, server_url=url)
    platform.start()  # takes the home lock: a second server on the same home fails here, in one line
    accounts = Accounts(platform.engine)
    token = accounts.ensure_local_admin(settings.home)
    if not is_loopback_host(host) and not accounts.has_passwords():
        sock.close()
        platform.close()
        raise InvalidInput(
            f"refusing to listen on {host} without accounts: the only way in is the local admin's token on "
            "this machine; start on 127.0.0.1, add users with passwords (haneul user add NAME --team TEAM "
            "--password), then start again on this address"
        )
    app = create_app(settings, platform=platform, server_url=url)
    typer.echo(f"haneul server listening on {_url_host(host)}:{port}; open {url}  "
               f"(home: {settings.home}; API docs: {url}/api/v1/docs)")
    if not is_loopback_host(host):
        output.note(f"warning: listening on {host}, reachable from other machines; put it behind HTTPS (a reverse "
                    "proxy) so that tokens and passwords never cross the network in clear", style="yellow")
    if token is not None:
        typer.echo(f"first start: created the local admin 'admin'; its token is in {admin_token_path(settings.home)} "
                   f"(the CLI on this machine uses it). Log a browser in with:\n    {url}/?token={token}")
    config = uvicorn.Config(app, log_level=log_level, access_log=False, timeout_graceful_shutdown=2)
    uvicorn.Server(config).run(sockets=[sock])


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise Conflict(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port") from None
    sock.set_inheritable(True)
    return sock


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
