"""The phone app's inbox: the calling person's reminders, warnings and escalations from the outbox
(the published snapshot's ``alert_outbox``), and the acknowledgement that the person saw one.

The caller's subject is the person's app account (``cadre-<id>``, ``member-<id>`` or ``org-<id>``,
see :mod:`redcloud.alerts.app_channel`); that person must be within the credential's scope. The
app channel's delivery is recorded by the acknowledgement, never twice (an acknowledged message
leaves the unread list; acknowledging again returns the first acknowledgement)."""

from __future__ import annotations

import hashlib
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from redcloud.alerts import app_channel
from redcloud.api.db import cadre_org_sql, in_scope, member_org_sql
from redcloud.api.deps import CtxDep, Page, PageDep
from redcloud.api.errors import ApiError, not_found
from redcloud.config import get_settings

router = APIRouter(prefix="/inbox", tags=["APP 消息"])

TABLE = "alert_outbox"
COLUMNS = ("message_id", "alert_id", "rule", "level", "subject", "body", "created_for_date", "sent_at")
MINE = "split_part(t.recipient, '@', 1) = ?"   # recipient addresses are <account>@<domain>
MessageId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[0-9A-Za-z_-]+$", description="消息 ID")]


class Ack(BaseModel):
    message_id: str
    read_at: str
    snapshot_id: str


def _account(ctx) -> str:
    """The caller's app account, checked against the credential's scope."""
    account = ctx.principal.sub
    parsed = app_channel.parse_account(account)
    if parsed is None:
        raise ApiError(403, "not_an_app_account",
                       "消息收件箱仅供 APP 用户使用：凭证主体须为 APP 账号（cadre-<ID>、member-<ID> 或 org-<ID>）")
    kind, pid = parsed
    r = ctx.reader
    if kind == "org":
        org = pid
    else:
        org = r.scalar(f"select {member_org_sql('?') if kind == 'member' else cadre_org_sql('?')}", [pid])
    if org is None or not in_scope(r, ctx.scope, int(org)):
        raise ApiError(403, "out_of_scope", "该 APP 账号不在凭证的授权范围内")
    return account


@router.get("", response_model=Page, summary="我的消息（APP 轮询：学习提醒、督办预警、升级报送等）")
def inbox(ctx: CtxDep, pg: PageDep,
          include_read: Annotated[bool, Query(description="包含已读消息")] = False) -> Page:
    account = _account(ctx)
    cols = ctx.reader.cols(TABLE)
    acks = app_channel.read_acks(app_channel.acks_path(get_settings()), account)
    cond, params = MINE, [account]
    if not include_read:
        if "app_read_at" in cols:
            cond += " and t.app_read_at is null"
        if acks:
            cond += " and not list_contains(?, t.message_id)"
            params = params + [sorted(acks)]
    limit, offset = pg
    select = ", ".join(f"t.{c}" for c in COLUMNS if c in cols)
    total = ctx.reader.scalar(f"select count(*) from {TABLE} t where {cond}", params)
    items = ctx.reader.rows(f"select {select} from {TABLE} t where {cond} "
                            "order by t.created_for_date desc, t.message_id limit ? offset ?", params + [limit, offset])
    for it in items:
        a = acks.get(it["message_id"])
        it["read_at"] = a["read_at"] if a else None
    # the list changes when the person acknowledges, not only with the snapshot: so does its ETag
    digest = hashlib.sha1("|".join(sorted(acks)).encode()).hexdigest()[:8]
    ctx.request.state.etag = ctx.request.state.etag[:-1] + f".{digest}\""
    return ctx.page(items, int(total or 0), limit, offset)


@router.post("/{message_id}/ack", response_model=Ack, summary="确认已读（APP 端已向本人展示该消息）")
def ack(ctx: CtxDep, message_id: MessageId) -> Ack:
    account = _account(ctx)
    found = ctx.reader.scalar(f"select count(*) from {TABLE} t where {MINE} and t.message_id = ?",
                              [account, message_id])
    if not found:
        raise not_found("消息")
    ctx.request.state.etag = None
    rec = app_channel.acknowledge(app_channel.acks_path(get_settings()), message_id, account)
    return Ack(message_id=message_id, read_at=rec["read_at"], snapshot_id=ctx.snapshot_id)

