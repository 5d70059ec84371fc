"""The sandbox over HTTP: thin aiohttp routes on `SandboxState`, and the middlewares around them.

Middlewares, outermost first:
  * errors: any `SandboxError` becomes Ticketmaster's `{"error": {...}}` body; aiohttp's 404/405 get
    the same shape; any other exception is logged and answered as a 500 of that shape (no traceback);
  * ticketmaster: for every path outside `/_sandbox/`, records the request; then, outside `/oauth/`
    and for known routes, requires an API key (`apikey` query parameter or `x-api-key` header;
    any non-empty value is accepted; missing -> 401 with Apigee's fault body, as Ticketmaster's
    gateway answers) and counts it against the key's quota (429 with the fault body once exceeded),
    adding the `Ratelimit-*` headers to every answer;
  * faults: consumes failures injected by the `fail` control.
Calls that "may poll" (reserve, choose shipping, commit, delete) answer 202 with a polling url when
sent with `X-TM-FORCE-POLLING: true`; errors are answered directly, never deferred.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from proxy.sandbox.errors import (
    INTERNAL_ERROR,
    METHOD_NOT_ALLOWED,
    UNKNOWN_ENDPOINT,
    SandboxError,
    invalid_input,
    invalid_reserve,
    ticketing_system_down,
)
from proxy.sandbox.quota import quota_fault
from proxy.sandbox.state import DEFAULT_POLL_WAIT, Reply, SandboxState
from proxy.ticketmaster import FORCE_POLLING_HEADER, SESSION_HEADER, polling_url

log = logging.getLogger(__name__)

CONTROL_PREFIX = "/_sandbox/"
OAUTH_PREFIX = "/oauth/"
MISSING_KEY_FAULT = {
    "fault": {
        "faultstring": "Failed to resolve API Key variable request.queryparam.apikey",
        "detail": {"errorcode": "steps.oauth.v2.FailedToResolveAPIKey"},
    }
}
_PARTNERS = "/{api:partners|partners-preprod}/v1"
_TOP_PICKS = "/{api:top-picks|top-picks-preprod}/v1"
_CART = _PARTNERS + "/events/{event_id}/cart"


def build_app(state: SandboxState) -> web.Application:
    routes = _Routes(state)
    app = web.Application(middlewares=[_errors, _ticketmaster(state), _faults(state)])
    app.add_routes(
        [
            web.get(_TOP_PICKS + "/events/{event_id}", routes.top_picks),
            web.get(_PARTNERS + "/events/{event_id}", routes.event_details),
            web.get(_PARTNERS + "/events/{event_id}/availability", routes.availability),
            web.route("*", _CART, routes.cart),
            web.get(_CART + "/shipping", routes.shipping_options),
            web.put(_CART + "/shipping", routes.choose_shipping),
            web.put(_CART + "/payment", routes.add_payment),
            web.get(_PARTNERS + "/polling/{tail:.+}", routes.poll),
            web.get(_PARTNERS + "/orders", routes.order),
            web.post(OAUTH_PREFIX + "token", routes.oauth_token),
        ]
    )
    app.add_routes(_control_routes(_Controls(state)))
    return app


# ---- middlewares -------------------------------------------------------------------------------


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    return await _respond(handler, request)


async def _respond(handler: Handler, request: web.Request) -> web.StreamResponse:
    """Run `handler`, turning every failure into the Ticketmaster error shape."""
    try:
        return await handler(request)
    except SandboxError as error:
        return error_response(error)
    except web.HTTPException as exc:
        return error_response(_from_http_exception(exc), _allow_header(exc))
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(SandboxError(INTERNAL_ERROR, "Internal error occurred", 500))


def error_response(error: SandboxError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(error.body(), status=error.http_status, headers=headers)


def _from_http_exception(exc: web.HTTPException) -> SandboxError:
    if exc.status == 404:
        return SandboxError(UNKNOWN_ENDPOINT, "API endpoint not found", 404)
    if exc.status == 405:
        return SandboxError(METHOD_NOT_ALLOWED, "HTTP method not allowed for endpoint", 405)
    return SandboxError(exc.status, exc.reason, exc.status)


def _allow_header(exc: web.HTTPException) -> dict[str, str] | None:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return {"Allow": ", ".join(sorted(exc.allowed_methods))}
    return None


def _ticketmaster(state: SandboxState) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        body = (await request.read()).decode("utf-8", "replace")
        state.record_request(request.method, request.path, request.query_string, request.headers, body)
        if not _is_ticketmaster_route(request):
            return await _respond(handler, request)
        api_key = request.query.get("apikey") or request.headers.get("x-api-key")
        if not api_key:
            return web.json_response(MISSING_KEY_FAULT, status=401)
        quota = state.hit_quota(api_key)
        if quota.exceeded:
            response: web.StreamResponse = web.json_response(quota_fault(api_key), status=429)
        else:
            response = await _respond(handler, request)
        response.headers.update(quota.headers())
        return response

    return middleware


def _is_ticketmaster_route(request: web.Request) -> bool:
    """A known route that needs an API key: unknown paths are plain 404s, OAuth uses client secrets."""
    route_missing = isinstance(request.match_info.http_exception, web.HTTPNotFound)
    special = request.path.startswith((CONTROL_PREFIX, OAUTH_PREFIX))
    return not (route_missing or special)


def _faults(state: SandboxState) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        fault = state.take_fault() if _is_ticketmaster_route(request) else None
        if fault is None:
            return await handler(request)
        if fault.status is None:
            raise RuntimeError("injected sandbox failure")
        raise ticketing_system_down(fault.status)

    return middleware


# ---- Ticketmaster routes -----------------------------------------------------------------------


class _Routes:
    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def top_picks(self, request: web.Request) -> web.StreamResponse:
        event_id = request.match_info["event_id"]
        return _reply(self.state.top_picks(event_id, request.query, request.headers.get(SESSION_HEADER)))

    async def event_details(self, request: web.Request) -> web.StreamResponse:
        return _reply(self.state.event_details(request.match_info["event_id"]))

    async def availability(self, request: web.Request) -> web.StreamResponse:
        return _reply(self.state.availability(request.match_info["event_id"]))

    async def cart(self, request: web.Request) -> web.StreamResponse:
        """The cart itself: POST reserves, PUT commits, DELETE releases; any other method is a
        commit sent wrongly and gets 21001, as the FAQ describes."""
        event_id = request.match_info["event_id"]
        session = request.headers.get(SESSION_HEADER)
        if request.method == "POST":
            body = await _json(request, invalid_reserve("malformed JSON body"))
            return await self._cart_call(request, None, lambda: self.state.reserve(event_id, body, session))
        if request.method == "PUT":
            body = await _json(request, invalid_reserve("malformed JSON body"))
            cart_id = body.get("cart_id") if isinstance(body, dict) else None
            return await self._cart_call(request, cart_id, lambda: self.state.commit(event_id, body))
        if request.method == "DELETE":
            cart_id = await self._cart_id(request)
            return await self._cart_call(request, cart_id, lambda: self.state.release(event_id, cart_id))
        raise invalid_reserve()

    async def shipping_options(self, request: web.Request) -> web.StreamResponse:
        event_id, cart_id = request.match_info["event_id"], request.query.get("cart_id")
        return await self._cart_call(
            request, cart_id, lambda: self.state.shipping_options(event_id, cart_id), may_poll=False
        )

    async def choose_shipping(self, request: web.Request) -> web.StreamResponse:
        event_id = request.match_info["event_id"]
        body = await _json(request, invalid_input("malformed JSON body"))
        cart_id = await self._cart_id(request)
        return await self._cart_call(
            request, cart_id, lambda: self.state.choose_shipping(event_id, cart_id, body)
        )

    async def add_payment(self, request: web.Request) -> web.StreamResponse:
        event_id = request.match_info["event_id"]
        body = await _json(request, invalid_input("malformed JSON body"))
        cart_id = body.get("cart_id") if isinstance(body, dict) else None
        return await self._cart_call(
            request, cart_id, lambda: self.state.add_payment(event_id, body), may_poll=False
        )

    async def poll(self, request: web.Request) -> web.StreamResponse:
        token = request.match_info["tail"].rstrip("/").rsplit("/", 1)[-1]
        return _reply(self.state.poll(token))

    async def order(self, request: web.Request) -> web.StreamResponse:
        return _reply(self.state.order(request.query))

    async def oauth_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        return _reply(self.state.oauth_token({k: str(v) for k, v in form.items()}))

    async def _cart_call(
        self,
        request: web.Request,
        cart_id: Any,
        operation: Callable[[], Reply],
        may_poll: bool = True,
    ) -> web.StreamResponse:
        """One call on a cart: refused while another is in flight on it, slowed by the delay control,
        and deferred behind a polling url when the client forces polling."""
        cart_id = cart_id if isinstance(cart_id, str) else None
        with self.state.claim_cart(cart_id):
            if self.state.processing_delay > 0:
                await asyncio.sleep(self.state.processing_delay)
            reply = operation()
        if may_poll and _polling_forced(request) and reply.status < 300:
            final_cart = cart_id or (reply.body or {}).get("cart_id")
            reply = self.state.defer(
                reply, final_cart, lambda token: _polling_url(request, token, final_cart)
            )
        return _reply(reply)

    async def _cart_id(self, request: web.Request) -> str | None:
        """The `cart_id` query parameter, or the body's `cart_id`."""
        if "cart_id" in request.query:
            return request.query["cart_id"]
        try:
            body = json.loads(await request.read() or b"null")
        except ValueError:
            return None
        cart_id = body.get("cart_id") if isinstance(body, dict) else None
        return cart_id if isinstance(cart_id, str) else None


def _reply(reply: Reply) -> web.StreamResponse:
    if reply.body is None:
        return web.Response(status=reply.status, headers=reply.headers)
    return web.json_response(reply.body, status=reply.status, headers=reply.headers)


async def _json(request: web.Request, malformed: SandboxError) -> Any:
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise malformed from None


def _polling_forced(request: web.Request) -> bool:
    return request.headers.get(FORCE_POLLING_HEADER, "").strip().lower() == "true"


def _polling_url(request: web.Request, token: str, cart_id: str | None) -> str:
    return polling_url(str(request.url.origin()), request.path, request.method, token,
                       request.query.get("apikey"), cart_id)  # fmt: skip


# ---- test controls -----------------------------------------------------------------------------


class _Controls:
    """`/_sandbox/...`: JSON in, JSON out; never needs an API key, never counted in a quota."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def clock(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._clock())

    async def advance_clock(self, request: web.Request) -> web.StreamResponse:
        self.state.advance_clock(_number(await _control_body(request), "seconds"))
        return web.json_response(self._clock())

    async def reprice(self, request: web.Request) -> web.StreamResponse:
        body = await _control_body(request)
        prices = self.state.reprice(
            event_id=_optional_str(body, "event_id"),
            listing=_optional_str(body, "listing"),
            factor=_number(body, "factor") if "factor" in body else None,
            price=_number(body, "price") if "price" in body else None,
        )
        return web.json_response({"prices": prices})

    async def quota(self, request: web.Request) -> web.StreamResponse:
        self.state.set_quota(_integer(await _control_body(request), "limit"))
        return web.json_response(self.state.snapshot()["quota"])

    async def delay(self, request: web.Request) -> web.StreamResponse:
        self.state.set_delay(_number(await _control_body(request), "seconds"))
        return web.json_response({"seconds": self.state.processing_delay})

    async def polling(self, request: web.Request) -> web.StreamResponse:
        body = await _control_body(request)
        self.state.set_polling(_integer(body, "wait", DEFAULT_POLL_WAIT), _integer(body, "extra_rounds", 0))
        return web.json_response(self.state.snapshot()["polling"])

    async def fail(self, request: web.Request) -> web.StreamResponse:
        body = await _control_body(request)
        count = _integer(body, "count", 1)
        status = _integer(body, "status", 0) or None
        self.state.fail_next(count, status)
        return web.json_response({"count": count, "status": status})

    async def reset(self, request: web.Request) -> web.StreamResponse:
        self.state.reset()
        return web.json_response(self._clock())

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state.snapshot())

    async def events(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.state.catalog())

    async def requests(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": self.state.requests()})

    async def clear_requests(self, request: web.Request) -> web.StreamResponse:
        self.state.clear_requests()
        return web.Response(status=204)

    def _clock(self) -> dict[str, Any]:
        now = self.state.now()
        return {"now": now, "now_ms": round(now * 1000)}


def _control_routes(controls: _Controls) -> list[web.RouteDef]:
    prefix = CONTROL_PREFIX.rstrip("/")
    return [
        web.get(prefix + "/clock", controls.clock),
        web.post(prefix + "/clock/advance", controls.advance_clock),
        web.post(prefix + "/reprice", controls.reprice),
        web.post(prefix + "/quota", controls.quota),
        web.post(prefix + "/delay", controls.delay),
        web.post(prefix + "/polling", controls.polling),
        web.post(prefix + "/fail", controls.fail),
        web.post(prefix + "/reset", controls.reset),
        web.get(prefix + "/state", controls.snapshot),
        web.get(prefix + "/events", controls.events),
        web.get(prefix + "/requests", controls.requests),
        web.delete(prefix + "/requests", controls.clear_requests),
    ]


async def _control_body(request: web.Request) -> dict[str, Any]:
    body = await _json(request, invalid_input("malformed JSON body"))
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid_input("the body must be a JSON object")
    return body


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid_input(f"{name} must be a number")
    return float(value)


def _integer(body: dict[str, Any], name: str, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_input(f"{name} must be an integer")
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_input(f"{name} must be a string")
    return value
