"""Callers and their scope: JWT (HS256) or API keys, each carrying an organisation scope.

A caller (:class:`Principal`) has a subject, an ``org_id`` (it sees that organisation's subtree
only) and roles:

- ``pii``: personal data unmasked (full names, birth dates, pseudonyms);
- ``integrity``: may read 诚信画像 (integrity portrait) scores and their evidence.

JWT claims: ``sub``, ``org_id``, ``roles`` (list), ``iat``, ``exp``; signed with ``[api] jwt_secret``
(``REDCLOUD_API__JWT_SECRET``, generated at set-up). API keys (``X-API-Key``) are random strings;
only their SHA-256 is stored, with subject, scope and roles, in ``[api] keys_file``.

Command line (the ``redcloud api ...`` wiring calls :func:`main`)::

    python -m redcloud.api.auth token --org 2 --sub analyst-nanming [--role integrity] [--hours 24]
    python -m redcloud.api.auth key   --org 2 --sub app-nanming [--role pii]
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from redcloud.config import get_settings

ROLES = ("pii", "integrity")
_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    sub: str
    org_id: int
    roles: frozenset[str] = field(default_factory=frozenset)
    auth: str = "jwt"   # jwt | key

    @property
    def sees_pii(self) -> bool:
        return "pii" in self.roles

    @property
    def key(self) -> str:
        return f"{self.auth}:{self.sub}:{self.org_id}:{','.join(sorted(self.roles))}"


class AuthError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _secret() -> str:
    s = get_settings().api.jwt_secret
    if s is None or not s.get_secret_value():
        raise RuntimeError("REDCLOUD_API__JWT_SECRET is not set: run `make setup` (writes .run/secrets.env)")
    return s.get_secret_value()


def _check_roles(roles) -> frozenset[str]:
    roles = frozenset(roles or ())
    unknown = roles - set(ROLES)
    if unknown:
        raise ValueError(f"unknown role(s) {sorted(unknown)}; expected some of {ROLES}")
    return roles


def create_token(org_id: int, sub: str, roles=(), hours: float | None = None) -> str:
    """A signed JWT for a caller scoped to ``org_id``'s subtree."""
    roles = _check_roles(roles)
    now = dt.datetime.now(dt.timezone.utc)
    hours = get_settings().api.token_ttl_hours if hours is None else hours
    claims = {"sub": sub, "org_id": int(org_id), "roles": sorted(roles), "iat": now,
              "exp": now + dt.timedelta(hours=hours)}
    return jwt.encode(claims, _secret(), algorithm="HS256")


def decode_token(token: str) -> Principal:
    try:
        c = jwt.decode(token, _secret(), algorithms=["HS256"], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token_expired", "令牌已过期，请重新申请") from None
    except jwt.PyJWTError:
        raise AuthError("invalid_token", "令牌无效") from None
    org = c.get("org_id")
    roles = c.get("roles") or []
    if not isinstance(org, int) or isinstance(org, bool) or not isinstance(roles, list) \
            or not all(isinstance(r, str) for r in roles) or not isinstance(c.get("sub"), str):
        raise AuthError("invalid_token", "令牌缺少组织范围或角色声明")
    return Principal(c["sub"], org, frozenset(r for r in roles if r in ROLES), "jwt")


def keys_file() -> Path:
    s = get_settings()
    return Path(s.api.keys_file) if s.api.keys_file else Path(s.paths.run_dir) / "api" / "keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _load_keys() -> dict:
    f = keys_file()
    if not f.exists():
        return {}
    return json.loads(f.read_text())


def create_api_key(org_id: int, sub: str, roles=()) -> str:
    """A new API key (shown once); its hash, subject, scope and roles go into the keys file."""
    roles = _check_roles(roles)
    key = "rck_" + secrets.token_urlsafe(32)
    with _lock:
        keys = _load_keys()
        keys[_digest(key)] = {"sub": sub, "org_id": int(org_id), "roles": sorted(roles),
                              "created_at": dt.datetime.now(dt.timezone.utc).isoformat()}
        f = keys_file()
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(keys, ensure_ascii=False, indent=1))
        tmp.chmod(0o600)
        os.replace(tmp, f)
    _key_cache.clear()
    return key


_key_cache: dict[str, tuple[float, dict]] = {}


def lookup_api_key(key: str) -> Principal:
    f = keys_file()
    mtime = f.stat().st_mtime if f.exists() else 0.0
    cached = _key_cache.get("k")
    if cached is None or cached[0] != mtime:
        cached = (mtime, _load_keys())
        _key_cache["k"] = cached
    rec = cached[1].get(_digest(key))
    if rec is None:
        raise AuthError("invalid_api_key", "API 密钥无效")
    return Principal(rec["sub"], int(rec["org_id"]), frozenset(rec.get("roles", [])) & set(ROLES), "key")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="redcloud api", description="API credentials scoped to an organisation")
    sub = ap.add_subparsers(dest="what", required=True)
    for name, help_ in (("token", "print a JWT"), ("key", "create and print an API key")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--org", type=int, required=True, help="org_id: the caller sees this organisation's subtree")
        p.add_argument("--sub", required=True, help="who the caller is (recorded in the audit trail)")
        p.add_argument("--role", action="append", default=[], choices=ROLES)
        if name == "token":
            p.add_argument("--hours", type=float, default=None)
    a = ap.parse_args(argv)
    if a.what == "token":
        print(create_token(a.org, a.sub, a.role, a.hours))
    else:
        print(create_api_key(a.org, a.sub, a.role))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
