"""Accounts: users, teams and roles, API tokens and web logins, and who a request comes from.

A *user* has a role in each of its teams: ``owner`` (manages the team's members), ``member`` (reads
and writes the team's sessions, datasets, leaderboards and deployments) or ``viewer`` (reads them).
An *admin* user manages users and teams and reaches every team's resources.

Credentials are bearer tokens ``hn_<key>_<secret>``: the public ``key`` finds the row, the secret is
stored only as an argon2id hash (argon2-cffi) and shown once. A browser login is the same kind of
token in an HttpOnly cookie, with a CSRF token of its own. Passwords are argon2id hashes too.
Verifying an argon2 hash takes milliseconds by design, so a verified token is remembered in memory
for :data:`CACHE_TTL_S` seconds (keyed by its sha256, never the token itself): a training run's
metric stream pays the hash once, not per request. Revoking a token, disabling a user or changing a
role clears that memory at once.

A session's own token (``HANEUL_TOKEN``, minted by the platform at launch) is a random 192-bit
secret stored as a sha256 and resolves to a principal that reads what the session's team may read
and writes only that session.

On first start the server creates the local admin (user ``admin``, owner of team ``local``, which
holds everything from before accounts) and writes its token to ``HANEUL_HOME/admin.token`` (mode
0600), where the CLI and the SDK on this machine find it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, func, insert, select, update

from haneul.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from haneul.io import atomic_write_text
from haneul.platform.db.models import ApiToken, Membership, Team, User
from haneul.platform.db.models import Session as SessionRow
from haneul.platform.plugins import Principal

ROLES = ("owner", "member", "viewer")
LOCAL_TEAM = "local"  # the team migration 0003 gave everything made before accounts
LOCAL_ADMIN = "admin"
TOKEN_PREFIX = "hn_"
CACHE_TTL_S = 60.0
WEB_LOGIN_S = 14 * 24 * 3600.0
MIN_PASSWORD = 8
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")

# Passwords are low-entropy: argon2id's defaults (64 MiB, 3 passes). Token secrets are 256 random bits,
# for which memory-hardness buys nothing; a light argon2id keeps a cache miss at about a millisecond.
_PASSWORDS = PasswordHasher()
_TOKENS = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"{what} name {str(name)[:80]!r} is not valid; use 1-64 lower-case letters, digits, "
                           "'.', '-' or '_', starting with a letter")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def _new_id(conn: Any, statement: Any) -> int:
    return int(conn.execute(statement).inserted_primary_key[0])


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Credential:
    """A verified token: whose it is and, for a browser login, the CSRF token its writes must carry."""

    principal: Principal
    kind: str  # "api", "web" or "session"
    csrf: str | None = None
    key: str | None = None


@dataclass
class _Cache:
    ttl: float
    entries: dict[str, tuple[float, Credential]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, digest: str, now: float) -> Credential | None:
        hit = self.entries.get(digest)
        if hit is None or hit[0] < now:
            return None
        return hit[1]

    def put(self, digest: str, cred: Credential, now: float) -> None:
        with self.lock:
            if len(self.entries) > 10_000:
                self.entries = {k: v for k, v in self.entries.items() if v[0] >= now}
            self.entries[digest] = (now + self.ttl, cred)

    def clear(self) -> None:
        with self.lock:
            self.entries = {}


class Accounts:
    def __init__(self, engine: Engine, *, cache_ttl: float = CACHE_TTL_S) -> None:
        self.engine = engine
        self._cache = _Cache(cache_ttl)

    # ------------------------------------------------------------------ first start
    def ensure_local_admin(self, home: Path) -> str | None:
        """Create the local admin and its token when there is no user yet; return the new token (to
        print once) or None when accounts already exist. The token goes to ``home/admin.token``."""
        from haneul.platform.credentials import admin_token_path

        with self.engine.begin() as conn:
            if conn.execute(select(func.count()).select_from(User)).scalar_one():
                return None
            team_id = conn.execute(select(Team.id).where(Team.name == LOCAL_TEAM)).scalar()
            if team_id is None:
                team_id = _new_id(conn, insert(Team).values(name=LOCAL_TEAM, created_at=time.time()))
            uid = _new_id(conn, insert(User).values(
                name=LOCAL_ADMIN, team_id=team_id, admin=True, disabled=False, created_at=time.time()))
            conn.execute(insert(Membership).values(user_id=uid, team_id=team_id, role="owner"))
            token = self._insert_token(conn, uid, "local admin (first start)", kind="api")
            # written inside the transaction: a crash before the commit leaves no user without its file
            atomic_write_text(admin_token_path(home), token + "\n")
        return token

    def has_passwords(self) -> bool:
        """Whether anyone can log in from another machine: some enabled user has a password."""
        with self.engine.connect() as conn:
            return bool(conn.execute(select(func.count()).select_from(User).where(
                User.password_hash.is_not(None), User.disabled.is_(False))).scalar_one())

    # ------------------------------------------------------------------ users
    def create_user(self, name: str, *, password: str | None = None, admin: bool = False,
                    team: str | None = None, role: str = "member") -> dict[str, Any]:
        check_name(name, "user")
        check_role(role)
        hashed = self._hash_password(password) if password is not None else None
        with self.engine.begin() as conn:
            if conn.execute(select(User.id).where(User.name == name)).scalar() is not None:
                raise Conflict(f"user {name!r} exists; pick another name")
            team_id = self._team_id(conn, team) if team is not None else None
            uid = _new_id(conn, insert(User).values(
                name=name, team_id=team_id, password_hash=hashed, admin=admin, disabled=False,
                created_at=time.time()))
            if team_id is not None:
                conn.execute(insert(Membership).values(user_id=uid, team_id=team_id, role=role))
        return self.get_user(name)

    def get_user(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            row = conn.execute(select(User).where(User.name == name)).first()
            if row is None:
                raise NotFound(f"user {name!r} not found; `haneul user ls` lists them")
            return self._user_dict(conn, row._mapping)

    def list_users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [self._user_dict(conn, r._mapping) for r in conn.execute(select(User).order_by(User.id))]

    def _user_dict(self, conn: Any, u: Any) -> dict[str, Any]:
        teams = conn.execute(select(Team.name, Membership.role).join(Membership, Membership.team_id == Team.id)
                             .where(Membership.user_id == u["id"]).order_by(Team.name)).all()
        default = conn.execute(select(Team.name).where(Team.id == u["team_id"])).scalar() if u["team_id"] else None
        return {"id": u["id"], "name": u["name"], "admin": bool(u["admin"]), "disabled": bool(u["disabled"]),
                "has_password": u["password_hash"] is not None, "default_team": default,
                "teams": {t: r for t, r in teams}, "created_at": u["created_at"]}

    def update_user(self, name: str, *, password: str | None = None, admin: bool | None = None,
                    disabled: bool | None = None, default_team: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        if password is not None:
            values["password_hash"] = self._hash_password(password)
        if admin is not None:
            values["admin"] = admin
        if disabled is not None:
            values["disabled"] = disabled
        with self.engine.begin() as conn:
            uid = self._user_id(conn, name)
            if default_team is not None:
                tid = self._team_id(conn, default_team)
                if conn.execute(select(Membership.id).where(Membership.user_id == uid,
                                                            Membership.team_id == tid)).scalar() is None:
                    raise InvalidInput(f"user {name!r} is not in team {default_team!r}; add them first "
                                       f"(haneul team add-member {default_team} {name})")
                values["team_id"] = tid
            if (admin is False or disabled) and self._is_last_admin(conn, uid):
                raise Conflict(f"{name!r} is the last enabled admin; make another user admin first")
            if values:
                conn.execute(update(User).where(User.id == uid).values(**values))
        self._cache.clear()
        return self.get_user(name)

    def delete_user(self, name: str) -> None:
        with self.engine.begin() as conn:
            uid = self._user_id(conn, name)
            if self._is_last_admin(conn, uid):
                raise Conflict(f"{name!r} is the last enabled admin; make another user admin first")
            conn.execute(delete(ApiToken).where(ApiToken.user_id == uid))
            conn.execute(delete(Membership).where(Membership.user_id == uid))
            conn.execute(delete(User).where(User.id == uid))
        self._cache.clear()

    @staticmethod
    def _is_last_admin(conn: Any, uid: int) -> bool:
        admins = conn.execute(select(User.id).where(User.admin.is_(True), User.disabled.is_(False))).scalars().all()
        return list(admins) == [uid]

    @staticmethod
    def _user_id(conn: Any, name: str) -> int:
        uid = conn.execute(select(User.id).where(User.name == name)).scalar()
        if uid is None:
            raise NotFound(f"user {name!r} not found; `haneul user ls` lists them")
        return int(uid)

    @staticmethod
    def _hash_password(password: str) -> str:
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise InvalidInput(f"password is too short; use at least {MIN_PASSWORD} characters")
        return _PASSWORDS.hash(password)

    # ------------------------------------------------------------------ teams
    def create_team(self, name: str, *, owner: str | None = None) -> dict[str, Any]:
        check_name(name, "team")
        with self.engine.begin() as conn:
            if conn.execute(select(Team.id).where(Team.name == name)).scalar() is not None:
                raise Conflict(f"team {name!r} exists; pick another name")
            tid = _new_id(conn, insert(Team).values(name=name, created_at=time.time()))
            if owner is not None:
                uid = self._user_id(conn, owner)
                conn.execute(insert(Membership).values(user_id=uid, team_id=tid, role="owner"))
                conn.execute(update(User).where(User.id == uid, User.team_id.is_(None)).values(team_id=tid))
        self._cache.clear()
        return self.get_team(name)

    def get_team(self, name: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            tid = self._team_id(conn, name)
            members = conn.execute(select(User.name, Membership.role).join(Membership, Membership.user_id == User.id)
                                   .where(Membership.team_id == tid).order_by(User.name)).all()
        return {"id": tid, "name": name, "members": {u: r for u, r in members}}

    def list_teams(self, principal: Principal) -> list[dict[str, Any]]:
        visible = principal.readable_teams()
        with self.engine.connect() as conn:
            query = select(Team).order_by(Team.name)
            if visible is not None:
                query = query.where(Team.id.in_(visible))
            names = [r.name for r in conn.execute(query)]
        return [self.get_team(n) for n in names]

    def set_member(self, team: str, user: str, role: str) -> dict[str, Any]:
        check_role(role)
        with self.engine.begin() as conn:
            tid, uid = self._team_id(conn, team), self._user_id(conn, user)
            held = conn.execute(select(Membership.role).where(Membership.user_id == uid,
                                                              Membership.team_id == tid)).scalar()
            if held == "owner" and role != "owner" and self._owners(conn, tid) == [uid]:
                raise Conflict(f"{user!r} is the last owner of team {team!r}; make another member owner first")
            if held is None:
                conn.execute(insert(Membership).values(user_id=uid, team_id=tid, role=role))
            else:
                conn.execute(update(Membership).where(Membership.user_id == uid, Membership.team_id == tid)
                             .values(role=role))
            conn.execute(update(User).where(User.id == uid, User.team_id.is_(None)).values(team_id=tid))
        self._cache.clear()
        return self.get_team(team)

    def remove_member(self, team: str, user: str) -> dict[str, Any]:
        with self.engine.begin() as conn:
            tid, uid = self._team_id(conn, team), self._user_id(conn, user)
            if self._owners(conn, tid) == [uid]:
                raise Conflict(f"{user!r} is the last owner of team {team!r}; make another member owner first")
            gone = conn.execute(delete(Membership).where(Membership.user_id == uid, Membership.team_id == tid))
            if not gone.rowcount:
                raise NotFound(f"user {user!r} is not in team {team!r}")
            other = conn.execute(select(Membership.team_id).where(Membership.user_id == uid)).scalar()
            conn.execute(update(User).where(User.id == uid, User.team_id == tid).values(team_id=other))
        self._cache.clear()
        return self.get_team(team)

    @staticmethod
    def _owners(conn: Any, tid: int) -> list[int]:
        return list(conn.execute(select(Membership.user_id).where(Membership.team_id == tid,
                                                                  Membership.role == "owner")).scalars())

    @staticmethod
    def _team_id(conn: Any, name: str) -> int:
        tid = conn.execute(select(Team.id).where(Team.name == name)).scalar()
        if tid is None:
            raise NotFound(f"team {name!r} not found; `haneul team ls` lists them")
        return int(tid)

    def team_role(self, principal: Principal, team: str) -> tuple[int, str | None]:
        with self.engine.connect() as conn:
            tid = self._team_id(conn, team)
        return tid, principal.roles.get(tid)

    def team_names(self, ids: set[int] | None = None) -> dict[int, str]:
        with self.engine.connect() as conn:
            query = select(Team.id, Team.name)
            if ids is not None:
                query = query.where(Team.id.in_(ids))
            return {int(i): n for i, n in conn.execute(query)}

    # ------------------------------------------------------------------ tokens
    def create_token(self, user: str, name: str = "", *, expires_in: float | None = None) -> dict[str, Any]:
        """A new API token of ``user``; the returned ``token`` is the only time it is shown."""
        if expires_in is not None and expires_in <= 0:
            raise InvalidInput("expires_in must be a positive number of seconds")
        with self.engine.begin() as conn:
            uid = self._user_id(conn, user)
            token = self._insert_token(conn, uid, name, kind="api", expires_in=expires_in)
        key = token.split("_")[1]
        return {"token": token, "key": key, "name": name, "user": user,
                "expires_at": time.time() + expires_in if expires_in else None}

    def _insert_token(self, conn: Any, uid: int, name: str, *, kind: str, expires_in: float | None = None,
                      csrf: str | None = None) -> str:
        key, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        now = time.time()
        conn.execute(insert(ApiToken).values(
            user_id=uid, key=key, secret_hash=_TOKENS.hash(secret), name=name[:128], kind=kind, csrf=csrf,
            created_at=now, expires_at=now + expires_in if expires_in else None))
        return f"{TOKEN_PREFIX}{key}_{secret}"

    def list_tokens(self, user: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            uid = self._user_id(conn, user)
            rows = conn.execute(select(ApiToken).where(ApiToken.user_id == uid, ApiToken.kind == "api")
                                .order_by(ApiToken.id)).all()
        return [{"key": r.key, "name": r.name, "created_at": r.created_at, "expires_at": r.expires_at,
                 "last_used_at": r.last_used_at} for r in rows]

    def revoke_token(self, user: str, key: str) -> None:
        with self.engine.begin() as conn:
            uid = self._user_id(conn, user)
            gone = conn.execute(delete(ApiToken).where(ApiToken.user_id == uid, ApiToken.key == key))
            if not gone.rowcount:
                raise NotFound(f"token {key!r} of {user!r} not found; `haneul user tokens {user}` lists them")
        self._cache.clear()

    def login(self, name: str, password: str) -> tuple[str, str]:
        """A browser login for a name and password: ``(cookie token, csrf token)``."""
        with self.engine.begin() as conn:
            return self._web_login(conn, self._check_password(conn, name, password))

    def login_check(self, name: str, password: str) -> None:
        """Verify a name and password (before handing out an API token for them)."""
        with self.engine.connect() as conn:
            self._check_password(conn, name, password)

    @staticmethod
    def _check_password(conn: Any, name: str, password: str) -> int:
        wrong = Unauthorized("wrong user name or password")
        row = conn.execute(select(User).where(User.name == name)).first()
        if row is None or row.password_hash is None or row.disabled:
            _PASSWORDS.hash("x" * MIN_PASSWORD)  # the same time as a wrong password: names don't leak
            raise wrong
        try:
            _PASSWORDS.verify(row.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise wrong from None
        return int(row.id)

    def web_login_for(self, cred: Credential) -> tuple[str, str]:
        """A browser login for someone who proved a token (the ``?token=`` link the server prints)."""
        if cred.principal.user_id is None:
            raise Forbidden("a session's token cannot log in to the web pages")
        with self.engine.begin() as conn:
            return self._web_login(conn, cred.principal.user_id)

    def _web_login(self, conn: Any, uid: int) -> tuple[str, str]:
        csrf = secrets.token_urlsafe(24)
        token = self._insert_token(conn, uid, "web login", kind="web", expires_in=WEB_LOGIN_S, csrf=csrf)
        return token, csrf

    def logout(self, token: str) -> None:
        parts = token.split("_")
        if len(parts) >= 3:
            with self.engine.begin() as conn:
                conn.execute(delete(ApiToken).where(ApiToken.key == parts[1], ApiToken.kind == "web"))
        self._cache.clear()

    # ------------------------------------------------------------------ who is asking
    def resolve_local_admin(self) -> Credential:
        """The local admin's credential without a token (for an app built without authentication)."""
        with self.engine.connect() as conn:
            uid = conn.execute(select(User.id).where(User.name == LOCAL_ADMIN)).scalar()
        if uid is None:
            raise Unauthorized("there is no local admin yet; start the server once to create it")
        return self._principal_of(int(uid), kind="api")

    def cached(self, token: str) -> Credential | None:
        """The credential a token proved within the last :data:`CACHE_TTL_S` seconds, without I/O."""
        return self._cache.get(_digest(token), time.time())

    def resolve(self, token: str) -> Credential:
        """The credential a bearer token or cookie proves; :class:`Unauthorized` when it proves nothing."""
        now = time.time()
        digest = _digest(token)
        hit = self._cache.get(digest, now)
        if hit is not None:
            return hit
        cred = self._verify_user_token(token, now) if token.startswith(TOKEN_PREFIX) else \
            self._verify_session_token(digest)
        self._cache.put(digest, cred, now)
        return cred

    def _verify_user_token(self, token: str, now: float) -> Credential:
        parts = token.split("_", 2)
        bad = Unauthorized("the token is not valid (revoked, mistyped or from another server); "
                           "run `haneul login` or create a new one with `haneul user token`")
        if len(parts) != 3:
            raise bad
        with self.engine.begin() as conn:
            row = conn.execute(select(ApiToken).where(ApiToken.key == parts[1])).first()
            if row is None:
                raise bad
            try:
                _TOKENS.verify(row.secret_hash, parts[2])
            except (VerificationError, InvalidHashError):
                raise bad from None
            if row.expires_at is not None and row.expires_at < now:
                raise Unauthorized("the token has expired; log in again (haneul login)")
            if conn.execute(select(User.disabled).where(User.id == row.user_id)).scalar():
                raise Unauthorized("the user of this token is disabled; ask an admin")
            conn.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
        return self._principal_of(int(row.user_id), kind=row.kind, csrf=row.csrf, key=row.key)

    def _principal_of(self, uid: int, *, kind: str, csrf: str | None = None, key: str | None = None) -> Credential:
        with self.engine.connect() as conn:
            user = conn.execute(select(User).where(User.id == uid)).one()
            roles = {int(t): r for t, r in conn.execute(
                select(Membership.team_id, Membership.role).where(Membership.user_id == uid))}
        team = user.team_id if user.team_id in roles else next(iter(sorted(roles)), None)
        principal = Principal(name=user.name, admin=bool(user.admin), user_id=uid, roles=roles, team_id=team)
        return Credential(principal, kind=kind, csrf=csrf, key=key)

    def _verify_session_token(self, digest: str) -> Credential:
        with self.engine.connect() as conn:
            row = conn.execute(select(SessionRow.id, SessionRow.team_id).where(SessionRow.token_hash == digest)).first()
        if row is None:
            raise Unauthorized("the token is not valid; run `haneul login`, or pass a token from "
                               "`haneul user token` as Authorization: Bearer <token>")
        sid, team = int(row.id), row.team_id
        roles = {int(team): "viewer"} if team is not None else {}
        principal = Principal(name=f"session {sid}", admin=False, roles=roles, team_id=team, session_id=sid)
        return Credential(principal, kind="session")


__all__ = ["Accounts", "Credential", "LOCAL_ADMIN", "LOCAL_TEAM", "ROLES", "TOKEN_PREFIX", "check_name",
           "check_role"]
