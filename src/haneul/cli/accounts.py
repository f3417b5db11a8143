"""Accounts: ``haneul login``, ``logout`` and ``whoami``, and the ``haneul user`` and ``haneul team``
groups (admins manage users; team owners manage their members)."""

from __future__ import annotations

import os
from typing import Any

import typer

from haneul.cli import output
from haneul.cli.options import JsonOpt, Typer
from haneul.errors import InvalidInput

SERVER_HELP = "The server's URL (default: HANEUL_SERVER, else http://HANEUL_HOST:HANEUL_PORT)."

users = Typer(help="Users (admins): add, list, change, remove; their API tokens.", no_args_is_help=True)
teams = Typer(help="Teams and their members' roles (owner, member, viewer).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
    app.add_typer(users, name="user")
    app.add_typer(teams, name="team")


def _client(server: str | None = None, token: str | None = None) -> Any:
    from haneul.platform.client import Client

    return Client(server, token=token)


def _password(password: bool, confirm: bool = True) -> str | None:
    if not password:
        return None
    text = os.environ.get("HANEUL_PASSWORD")  # for scripts: never on the command line, where ps shows it
    return text if text else typer.prompt("Password", hide_input=True, confirmation_prompt=confirm)


# ------------------------------------------------------------------ login


def login(
    server: str = typer.Option(None, "--server", help=SERVER_HELP),
    user: str = typer.Option(None, "--user", "-u", help="Log in with this user's password (asked for; or "
                             "HANEUL_PASSWORD) and keep a new API token for it."),
    token: str = typer.Option(None, "--token", help="Keep this API token (from `haneul user token`); "
                              "asked for when neither --user nor --token is given."),
    as_json: JsonOpt = False,
) -> None:
    """Log in to a haneul server and keep its token for the CLI and the SDK on this machine.

    The token goes to ~/.config/haneul/credentials.json (XDG_CONFIG_HOME; mode 0600), one per server
    URL. On the server's own machine nothing is needed: the local admin's token is found in
    HANEUL_HOME/admin.token.
    """
    from haneul.platform.credentials import store_login

    probe = _client(server, token="")
    url = probe.url
    if user:
        secret = _password(True, confirm=False) or ""
        made = probe._request("POST", "/api/v1/login", json={"name": user, "password": secret}).json()
        token = made["token"]
    elif not token:
        token = typer.prompt("Token", hide_input=True).strip()
    me = _client(url, token=token)._request("GET", "/api/v1/whoami").json()
    if me.get("session") is not None:
        raise InvalidInput("that is a session's own token; log in with a user's token or password")
    path = store_login(url, token, me["name"])
    if as_json:
        output.print_json({"server": url, "user": me["name"], "credentials": str(path)})
        return
    output.note(f"logged in to {url} as {me['name']} (token kept in {path})")


def logout(server: str = typer.Option(None, "--server", help=SERVER_HELP)) -> None:
    """Forget the token kept for a server (the token itself stays valid until revoked)."""
    from haneul.platform.credentials import forget_login

    url = _client(server, token="").url
    if forget_login(url):
        output.note(f"logged out of {url}")
    else:
        output.note(f"no login kept for {url}")


def whoami(server: str = typer.Option(None, "--server", help=SERVER_HELP), as_json: JsonOpt = False) -> None:
    """Show who the CLI is to the server: user name, admin or not, teams and roles."""
    me = _client(server)._request("GET", "/api/v1/whoami").json()
    if as_json:
        output.print_json(me)
        return
    teams_text = ", ".join(f"{t} ({r})" for t, r in me["teams"].items()) or "none"
    output.print_fields({"user": me["name"], "admin": me["admin"], "teams": teams_text,
                         "default team": me["default_team"] or "-"})


# ------------------------------------------------------------------ users


@users.command("ls")
def user_ls(as_json: JsonOpt = False) -> None:
    """List users with their teams and roles (admins only)."""
    rows = _client()._request("GET", "/api/v1/users").json()
    output.emit(rows, as_json=as_json, show=lambda: output.print_table(rows, columns=["name", "admin", "disabled", "has_password", "default_team", "teams"]))


@users.command("add")
def user_add(
    name: str = typer.Argument(..., help="Lower-case letters, digits, '.', '-', '_'."),
    team: str = typer.Option(None, "--team", help="A team to join (it becomes the user's default team)."),
    role: str = typer.Option("member", "--role", help="The role in --team: owner, member or viewer."),
    password: bool = typer.Option(False, "--password", help="Ask for a password (or read HANEUL_PASSWORD), "
                                  "so the user can log in to the web pages and `haneul login --user`."),
    admin: bool = typer.Option(False, "--admin", help="Make the user an admin (manages users and teams, sees "
                               "every team)."),
    token: bool = typer.Option(False, "--token", help="Also create an API token for the user and print it."),
    as_json: JsonOpt = False,
) -> None:
    """Add a user (admins only)."""
    client = _client()
    body = {"name": name, "team": team, "role": role, "admin": admin, "password": _password(password)}
    made = client._request("POST", "/api/v1/users", json=body).json()
    if token:
        made["token"] = client._request("POST", f"/api/v1/users/{name}/tokens",
                                        json={"name": "created with the user"}).json()["token"]
    if as_json:
        output.print_json(made)
        return
    output.note(f"user {name} added" + (f" to team {team} as {role}" if team else ""))
    if token:
        output.say(made["token"])
        output.note("the token above is shown once; give it to the user (haneul login --token ...)")


@users.command("set")
def user_set(
    name: str = typer.Argument(..., help="The user."),
    password: bool = typer.Option(False, "--password", help="Ask for a new password (or read HANEUL_PASSWORD)."),
    admin: bool = typer.Option(None, "--admin/--no-admin", help="Grant or take away admin (admins only)."),
    disabled: bool = typer.Option(None, "--disable/--enable", help="Disable the user (their tokens stop "
                                  "working) or enable them again (admins only)."),
    default_team: str = typer.Option(None, "--default-team", help="The team new sessions and datasets go to."),
    as_json: JsonOpt = False,
) -> None:
    """Change a user: password, admin, disabled, default team. Anyone may change their own password."""
    body = {"password": _password(password), "admin": admin, "disabled": disabled, "default_team": default_team}
    made = _client()._request("PATCH", f"/api/v1/users/{name}",
                              json={k: v for k, v in body.items() if v is not None}).json()
    output.emit(made, as_json=as_json)


@users.command("rm")
def user_rm(name: str = typer.Argument(..., help="The user to remove with their tokens.")) -> None:
    """Remove a user and their tokens (admins only); their sessions stay with their teams."""
    _client()._request("DELETE", f"/api/v1/users/{name}")
    output.note(f"user {name} removed")


@users.command("token")
def user_token(
    name: str = typer.Argument(..., help="The user (yourself, or anyone for an admin)."),
    label: str = typer.Option("", "--name", help="A label for the token, e.g. the machine it is for."),
    expires_days: float = typer.Option(None, "--expires-days", help="Days until the token stops working "
                                       "(default: never)."),
    as_json: JsonOpt = False,
) -> None:
    """Create an API token and print it (shown only this once)."""
    body: dict[str, Any] = {"name": label}
    if expires_days is not None:
        body["expires_in"] = expires_days * 86400
    made = _client()._request("POST", f"/api/v1/users/{name}/tokens", json=body).json()
    if as_json:
        output.print_json(made)
        return
    output.say(made["token"])
    output.note(f"token {made['key']} for {name}: shown once; `haneul login --token ...` keeps it")


@users.command("tokens")
def user_tokens(name: str = typer.Argument(..., help="The user."), as_json: JsonOpt = False) -> None:
    """List a user's API tokens (their keys and labels; the secrets are never stored)."""
    rows = _client()._request("GET", f"/api/v1/users/{name}/tokens").json()
    output.emit(rows, as_json=as_json, show=lambda: output.print_table(rows, columns=["key", "name", "created_at", "expires_at", "last_used_at"]))


@users.command("revoke")
def user_revoke(name: str = typer.Argument(..., help="The user."),
                key: str = typer.Argument(..., help="The token's key (from `haneul user tokens`).")) -> None:
    """Revoke one of a user's API tokens; it stops working at once."""
    _client()._request("DELETE", f"/api/v1/users/{name}/tokens/{key}")
    output.note(f"token {key} of {name} revoked")


# ------------------------------------------------------------------ teams


@teams.command("ls")
def team_ls(as_json: JsonOpt = False) -> None:
    """List the teams you can see (every team for an admin) with their members."""
    rows = _client()._request("GET", "/api/v1/teams").json()
    output.emit(rows, as_json=as_json, show=lambda: output.print_table(rows, columns=["name", "members"]))


@teams.command("add")
def team_add(
    name: str = typer.Argument(..., help="Lower-case letters, digits, '.', '-', '_'."),
    owner: str = typer.Option(None, "--owner", help="A user to make its first owner."),
    as_json: JsonOpt = False,
) -> None:
    """Create a team (admins only)."""
    made = _client()._request("POST", "/api/v1/teams", json={"name": name, "owner": owner}).json()
    output.emit(made, as_json=as_json)


@teams.command("info")
def team_info(name: str = typer.Argument(..., help="The team."), as_json: JsonOpt = False) -> None:
    """Show a team's members and their roles."""
    output.emit(_client()._request("GET", f"/api/v1/teams/{name}").json(), as_json=as_json)


@teams.command("add-member")
def team_add_member(
    team: str = typer.Argument(..., help="The team."),
    user: str = typer.Argument(..., help="The user to add, or whose role to change."),
    role: str = typer.Option("member", "--role", help="owner (manages members), member (reads and writes) or "
                             "viewer (reads)."),
    as_json: JsonOpt = False,
) -> None:
    """Add a user to a team or change their role (team owners and admins)."""
    made = _client()._request("PUT", f"/api/v1/teams/{team}/members/{user}", json={"role": role}).json()
    output.emit(made, as_json=as_json)


@teams.command("rm-member")
def team_rm_member(team: str = typer.Argument(..., help="The team."),
                   user: str = typer.Argument(..., help="The user to remove from it."),
                   as_json: JsonOpt = False) -> None:
    """Remove a user from a team (team owners and admins)."""
    made = _client()._request("DELETE", f"/api/v1/teams/{team}/members/{user}").json()
    output.emit(made, as_json=as_json)
