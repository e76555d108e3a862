"""One APIRouter per resource, mounted under /api/v1 by :func:`redcloud.api.app.create_app`."""

from fastapi import APIRouter

from redcloud.api.errors import ERROR_RESPONSES
from redcloud.api.routes import (
    alerts,
    briefs,
    inbox,
    learning,
    members,
    meta,
    orgs,
    power,
    projects,
    scores,
    statistics,
    village,
)

api_router = APIRouter(responses=ERROR_RESPONSES)
for _m in (meta, orgs, members, scores, alerts, inbox, projects, village, learning, power, statistics, briefs):
    api_router.include_router(_m.router)
