"""Callers and their scope: JWT (HS256) or API keys, each carrying an organisation scope.

A caller (:class:`Principal`) has a subject, an ``org_id`` (it sees that organisation's subtree
only) and roles:

- ``pii``: personal data unmasked (full names, birth dates, pseudonyms);
- ``integrity``: may read 诚信画像 (integrity portrait) scores and their evidence.

JWT claims: ``sub``, ``org_id``, ``roles`` (list), ``iat``, ``exp``, ``jti``; signed with ``[api]
jwt_secret`` (``REDCLOUD_API__JWT_SECRET``, generated at set-up). A token living longer than ``[api]
max_token_hours`` (exp - iat) or naming a role that does not exist is refused, whoever signed it.
API keys (``X-API-Key``) are random strings; only their SHA-256 is stored, with subject, scope,
roles and expiry (``[api] key_ttl_days``), in ``[api] keys_file``.

Revocation (``[api] revoked_file``): one token (its ``jti``), one API key, or everything a subject
holds that was issued before the revocation. A refused credential's reason is its error code
(``token_expired``, ``invalid_token``, ``token_lifetime_exceeded``, ``unknown_role``,
``invalid_api_key``, ``key_expired``, ``revoked``), which the audit trail records.

Command line (the ``redcloud api ...`` wiring calls :func:`main`)::

    python -m redcloud.api.auth token  --org 2 --sub analyst-nanming [--role integrity] [--hours 24]
    python -m redcloud.api.auth key    --org 2 --sub app-nanming [--role pii]
    python -m redcloud.api.auth revoke (--token JWT | --key KEY | --sub SUBJECT)
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


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def create_token(org_id: int, sub: str, roles=(), hours: float | None = None) -> str:
    """A signed JWT for a caller scoped to ``org_id``'s subtree (at most ``[api] max_token_hours``)."""
    roles = _check_roles(roles)
    api = get_settings().api
    hours = api.token_ttl_hours if hours is None else hours
    if hours > api.max_token_hours:
        raise ValueError(f"a token lives at most {api.max_token_hours} h ([api] max_token_hours), not {hours}")
    now = _now()
    claims = {"sub": sub, "org_id": int(org_id), "roles": sorted(roles), "iat": now,
              "exp": now + dt.timedelta(hours=hours), "jti": secrets.token_hex(8)}
    return jwt.encode(claims, _secret(), algorithm="HS256")


def decode_token(token: str) -> Principal:
    try:
        c = jwt.decode(token, _secret(), algorithms=["HS256"], options={"require": ["exp", "iat", "sub", "jti"]})
    except jwt.ExpiredSignatureError:
        raise AuthError("token_expired", "令牌已过期，请重新申请") from None
    except jwt.PyJWTError:
        raise AuthError("invalid_token", "令牌无效") from None
    org = c.get("org_id")
    roles = c.get("roles") or []
    if not isinstance(org, int) or isinstance(org, bool) or not isinstance(roles, list) \
            or not all(isinstance(r, str) for r in roles) or not isinstance(c.get("sub"), str) \
            or not isinstance(c.get("jti"), str):
        raise AuthError("invalid_token", "令牌缺少组织范围或角色声明")
    max_hours = get_settings().api.max_token_hours
    if c["exp"] - c["iat"] > max_hours * 3600:
        raise AuthError("token_lifetime_exceeded", f"令牌有效期超过上限（{max_hours} 小时），请重新申请")
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise AuthError("unknown_role", f"令牌含有不存在的角色：{'、'.join(unknown)}")
    issued = dt.datetime.fromtimestamp(c["iat"], dt.timezone.utc)
    if _revoked(jti=c["jti"], sub=c["sub"], issued=issued):
        raise AuthError("revoked", "凭证已吊销")
    return Principal(c["sub"], org, frozenset(roles), "jwt")


def keys_file() -> Path:
    s = get_settings()
    return Path(s.api.keys_file) if s.api.keys_file else Path(s.paths.run_dir) / "api" / "keys.json"


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def revoked_file() -> Path:
    s = get_settings()
    return Path(s.api.revoked_file) if s.api.revoked_file else Path(s.paths.run_dir) / "api" / "revoked.json"


def _load(f: Path) -> dict:
    return json.loads(f.read_text()) if f.exists() else {}


def _save(f: Path, data: dict) -> None:
    f.parent.mkdir(parents=True, exist_ok=True)
    tmp = f.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    tmp.chmod(0o600)
    os.replace(tmp, f)
    _cache.clear()


_cache: dict[Path, tuple[float, dict]] = {}


def _cached(f: Path) -> dict:
    """The file's content, re-read when it changed (the API reads it on every request)."""
    mtime = f.stat().st_mtime_ns if f.exists() else 0
    hit = _cache.get(f)
    if hit is None or hit[0] != mtime:
        hit = (mtime, _load(f))
        _cache[f] = hit
    return hit[1]


def _revoked(*, sub: str, issued: dt.datetime, jti: str | None = None, digest: str | None = None) -> bool:
    r = _cached(revoked_file())
    if (jti and jti in r.get("jti", {})) or (digest and digest in r.get("keys", {})):
        return True
    before = r.get("subjects", {}).get(sub)
    return before is not None and issued <= dt.datetime.fromisoformat(before)


def create_api_key(org_id: int, sub: str, roles=()) -> str:
    """A new API key (shown once); its hash, subject, scope, roles and expiry go into the keys file."""
    roles = _check_roles(roles)
    key = "rck_" + secrets.token_urlsafe(32)
    now = _now()
    with _lock:
        keys = _load(keys_file())
        keys[_digest(key)] = {"sub": sub, "org_id": int(org_id), "roles": sorted(roles),
                              "created_at": now.isoformat(),
                              "expires_at": (now + dt.timedelta(days=get_settings().api.key_ttl_days)).isoformat()}
        _save(keys_file(), keys)
    return key


def lookup_api_key(key: str) -> Principal:
    digest = _digest(key)
    rec = _cached(keys_file()).get(digest)
    if rec is None:
        raise AuthError("invalid_api_key", "API 密钥无效")
    if _revoked(sub=rec["sub"], issued=dt.datetime.fromisoformat(rec["created_at"]), digest=digest):
        raise AuthError("revoked", "凭证已吊销")
    if rec.get("expires_at") and dt.datetime.fromisoformat(rec["expires_at"]) <= _now():
        raise AuthError("key_expired", "API 密钥已过期，请重新申请")
    unknown = sorted(set(rec.get("roles", [])) - set(ROLES))
    if unknown:
        raise AuthError("unknown_role", f"API 密钥含有不存在的角色：{'、'.join(unknown)}")
    return Principal(rec["sub"], int(rec["org_id"]), frozenset(rec.get("roles", [])), "key")


def revoke(*, token: str | None = None, key: str | None = None, sub: str | None = None) -> str:
    """Revoke one token, one API key, or everything ``sub`` holds that was issued until now."""
    now = _now().isoformat()
    with _lock:
        r = _load(revoked_file())
        if token:
            c = jwt.decode(token, _secret(), algorithms=["HS256"], options={"verify_exp": False})
            r.setdefault("jti", {})[c["jti"]] = now
            what = f"token {c['jti']} of {c['sub']}"
        elif key:
            if _digest(key) not in _load(keys_file()):
                raise ValueError("unknown API key")
            r.setdefault("keys", {})[_digest(key)] = now
            what = "API key"
        elif sub:
            r.setdefault("subjects", {})[sub] = now
            what = f"every token and API key of {sub} issued until {now}"
        else:
            raise ValueError("revoke needs a token, a key or a subject")
        _save(revoked_file(), r)
    return what


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
    p = sub.add_parser("revoke", help="revoke a token, an API key, or everything a subject holds")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--token", help="the JWT to revoke")
    g.add_argument("--key", help="the API key to revoke")
    g.add_argument("--sub", help="revoke every token and key of this subject issued until now")
    a = ap.parse_args(argv)
    if a.what == "token":
        print(create_token(a.org, a.sub, a.role, a.hours))
    elif a.what == "key":
        print(create_api_key(a.org, a.sub, a.role))
    else:
        print("revoked: " + revoke(token=a.token, key=a.key, sub=a.sub))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
