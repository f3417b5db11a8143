"""Where the CLI and the SDK find their token for a server.

In order: inside a session, the session's own ``HANEUL_TOKEN``; ``HANEUL_API_TOKEN``; the token
``haneul login`` stored for that server URL in ``<config>/haneul/credentials.json`` (``<config>`` is
``XDG_CONFIG_HOME`` or ``~/.config``; the file is mode 0600); and, for a server on this machine's
loopback, the local admin token the server wrote to ``HANEUL_HOME/admin.token`` on its first start
(like Jupyter's, so zero-config stays zero-config).
"""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from haneul.errors import InvalidInput
from haneul.io import atomic_write_text

#: the file in HANEUL_HOME holding the local admin's token (mode 0600)
ADMIN_TOKEN_FILE = "admin.token"


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "haneul"


def credentials_path() -> Path:
    return config_dir() / "credentials.json"


def _normal(url: str) -> str:
    return url.rstrip("/")


def _read() -> dict[str, dict[str, str]]:
    path = credentials_path()
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {path} ({exc}); delete it and run `haneul login` again") from None
    return data if isinstance(data, dict) else {}


def store_login(url: str, token: str, user: str) -> Path:
    """Keep ``token`` for ``url`` (written atomically, readable only by this user)."""
    data = _read()
    data[_normal(url)] = {"token": token, "user": user}
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write_text(path, json.dumps(data, indent=2))  # mkstemp: mode 0600
    return path


def forget_login(url: str) -> bool:
    data = _read()
    if data.pop(_normal(url), None) is None:
        return False
    atomic_write_text(credentials_path(), json.dumps(data, indent=2))  # mkstemp: mode 0600
    return True


def stored_login(url: str) -> dict[str, str] | None:
    return _read().get(_normal(url))


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine's loopback."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    return is_loopback_host(urlsplit(url).hostname or "")


def admin_token_path(home: Path | None = None) -> Path:
    if home is None:
        from haneul.settings import get_settings

        home = get_settings().home
    return Path(home) / ADMIN_TOKEN_FILE


def local_admin_token(home: Path | None = None) -> str | None:
    path = admin_token_path(home)
    try:
        return path.read_text().strip() or None
    except OSError:
        return None


def find_token(url: str) -> str | None:
    """The token to send to ``url``, or None (the server will answer 401 naming what to do)."""
    if os.environ.get("HANEUL_SESSION") and os.environ.get("HANEUL_TOKEN"):
        return os.environ["HANEUL_TOKEN"].strip()  # inside a session, its own token
    if os.environ.get("HANEUL_API_TOKEN"):
        return os.environ["HANEUL_API_TOKEN"].strip()
    login = stored_login(url)
    if login and login.get("token"):
        return login["token"]
    if is_loopback_url(url):
        return local_admin_token()
    return None


__all__ = ["ADMIN_TOKEN_FILE", "admin_token_path", "config_dir", "credentials_path", "find_token",
           "forget_login", "is_loopback_host", "is_loopback_url", "local_admin_token", "store_login", "stored_login"]
