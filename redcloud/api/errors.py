"""JSON errors with a stable code and a Chinese message: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("redcloud.api")


class ErrorBody(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def not_found(what: str = "资源") -> ApiError:
    return ApiError(404, "not_found", f"{what}不存在或不在您的授权范围内")


def table_unavailable(table: str) -> ApiError:
    return ApiError(404, "table_unavailable", f"当前发布快照中尚无数据表 {table}（相关模型或统计尚未发布）")


_HTTP_CODES = {400: ("bad_request", "请求有误"), 401: ("unauthorized", "未认证"), 403: ("forbidden", "无权访问"),
               404: ("not_found", "接口不存在"), 405: ("method_not_allowed", "不支持该请求方法"),
               406: ("not_acceptable", "无法提供所请求的格式"), 415: ("unsupported_media_type", "不支持的媒体类型")}


def error_json(status: int, code: str, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


# OpenAPI: every route may answer these
ERROR_RESPONSES = {
    401: {"model": ErrorResponse, "description": "未认证：缺少或无效的令牌/API 密钥"},
    403: {"model": ErrorResponse, "description": "超出授权范围"},
    404: {"model": ErrorResponse, "description": "不存在、不在授权范围内，或所需数据表尚未发布（code = table_unavailable）"},
    422: {"model": ErrorResponse, "description": "参数校验失败"},
    503: {"model": ErrorResponse, "description": "尚未发布数据快照"},
}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_json(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        parts = []
        for e in exc.errors()[:5]:
            loc = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "path", "header", "body"))
            parts.append(f"{loc or '请求'}：{str(e.get('msg', '')).removeprefix('Value error, ')}")
        return error_json(422, "invalid_parameter", "参数校验失败：" + "；".join(parts))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code, msg = _HTTP_CODES.get(exc.status_code, ("http_error", "请求失败"))
        return error_json(exc.status_code, code, msg, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json(500, "internal_error", "服务器内部错误，已记录")
