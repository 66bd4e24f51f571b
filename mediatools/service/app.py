"""The HTTP face: Agora's notifications in, the job API, the page, health and metrics.

Handlers do only what fits in a request: check, parse, one ledger transaction. Every
media step runs later on the cluster. Everything but ``/livez`` and ``/readyz`` needs
``Authorization: Bearer <token>``, ``/metrics`` included (Prometheus sends the token
with ``authorization: {credentials_file: …}``): counts of notifications are nobody else's
business.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from . import page, signature
from .jobs import location_for
from .triggers import BadNotice, decide, parse_notice, safe_folder, valid_sid, valid_sid_cname

log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
MAX_JOB_BODY = 64 * 1024
_MAX_MS = 253402300799999          # 9999-12-31T23:59:59.999Z
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def _json(doc: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(doc, status_code=status, headers=_HEADERS)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or None when it is larger than ``limit`` (stops reading at once)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _since(text: str | None) -> int | None:
    """``since``: Unix ms, ISO 8601 (UTC if no zone) or relative (``30m``, ``24h``, ``7d``)."""
    if not text:
        return None
    t = text.strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if t.isdigit() and len(t) <= 15:
        ms = int(t)
    elif 1 < len(t) <= 16 and t[:-1].replace(".", "", 1).isdigit() and t[-1] in units:
        ms = int((time.time() - float(t[:-1]) * units[t[-1]]) * 1000)
    else:
        try:
            dt = datetime.fromisoformat(t.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=timezone.utc)
            ms = int(dt.timestamp() * 1000)
        except (OverflowError, OSError) as exc:
            raise ValueError(str(exc)) from None
    if not 0 <= ms <= _MAX_MS:
        raise ValueError("since out of range")
    return ms


class GroupCommit:
    """Notifications that arrive together are written in one ledger transaction.

    Each request still waits for its own commit before answering 200 (durable), but a burst
    of 50 costs one commit and one thread hop instead of 50. One batch is written at a time;
    what arrives meanwhile forms the next. A failing batch is retried item by item so one
    bad row cannot fail its neighbours.
    """

    def __init__(self, write: Any, max_batch: int = 200) -> None:
        self._write, self._max = write, max_batch
        self._pending: list[tuple[Any, asyncio.Future]] = []
        self._busy = False

    async def submit(self, item: Any) -> Any:
        fut = asyncio.get_running_loop().create_future()
        self._pending.append((item, fut))
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())
        return await fut

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending[:self._max], self._pending[self._max:]
                try:
                    results = await run_in_threadpool(self._write, [i for i, _ in batch])
                except Exception:
                    results = None
                if results is None:
                    for item, fut in batch:
                        try:
                            fut.set_result((await run_in_threadpool(self._write, [item]))[0])
                        except Exception as exc:
                            fut.set_exception(exc)
                    continue
                for (_item, fut), res in zip(batch, results):
                    fut.set_result(res)
        finally:
            self._busy = False


def create_app(svc: Any) -> Starlette:
    """``svc`` is a :class:`mediatools.service.runtime.Service` (ledger, config, metrics, threads)."""
    cfg, ledger, metrics = svc.cfg, svc.ledger, svc.metrics
    sources = cfg.locations()
    commits = GroupCommit(ledger.record_notices)

    def authorized(request: Request) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _, token = given.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return False
        return hmac.compare_digest(token.strip().encode(), cfg.api_token)

    def deny() -> JSONResponse:
        r = _json({"ok": False, "error": "unauthorized"}, 401)
        r.headers["WWW-Authenticate"] = 'Bearer realm="mediatools"'
        return r

    async def ncs(request: Request) -> Response:
        body = await _read_limited(request, MAX_BODY)
        if body is None:
            metrics.notification(None, "too_large")
            return _json({"ok": False, "error": "body over 1 MB"}, 413)
        if not signature.check(cfg.ncs_secret, body, request.headers.get(signature.V2_HEADER),
                               request.headers.get(signature.V1_HEADER), accept_sha1=cfg.accept_sha1):
            metrics.notification(None, "bad_signature")
            log.warning("NCS: bad or missing signature from %s", request.client.host if request.client else "?")
            return _json({"ok": False, "error": "bad signature"}, 401)
        try:
            text = body.decode("utf-8")
            doc = json.loads(text)
            notice = parse_notice(doc)
        except (UnicodeDecodeError, ValueError, RecursionError, BadNotice) as exc:
            metrics.notification(None, "bad_json")
            why = str(exc) if isinstance(exc, BadNotice) else "not JSON"
            return _json({"ok": False, "error": why}, 400)
        try:
            decision = decide(doc, notice)
            location = location_for(decision.folder, sources)
            new, jid, job = await commits.submit((notice, text, decision, location))
        except Exception as exc:   # noqa: BLE001 - answered, so NCS sends it again
            metrics.notification(notice.event_type, "error")
            log.error("NCS: notification %s not stored (NCS will resend it): %s: %s", notice.notice_id[:64],
                      type(exc).__name__, str(exc).splitlines()[0][:200] if str(exc) else "")
            return _json({"ok": False, "error": "not stored; send it again"}, 500)
        metrics.notification(notice.event_type, {"created": "job", "updated": "job_updated"}.get(job or "", "stored")
                             if new else "duplicate")
        if job in ("created", "updated"):
            svc.poke()
        return _json({"ok": True})

    async def livez(request: Request) -> Response:
        return _json({"ok": True})

    async def readyz(request: Request) -> Response:
        problems = await run_in_threadpool(svc.readiness)
        return _json({"ok": not problems, "problems": problems}, 200 if not problems else 503)

    async def metrics_route(request: Request) -> Response:
        if not authorized(request):
            return deny()
        data = await run_in_threadpool(metrics.render)
        return Response(data, media_type="text/plain; version=0.0.4; charset=utf-8", headers=_HEADERS)

    async def list_jobs(request: Request) -> Response:
        if not authorized(request):
            return deny()
        state = request.query_params.get("state")
        if state and state not in ("queued", "running", "done", "failed"):
            return _json({"ok": False, "error": "state must be queued, running, done or failed"}, 400)
        try:
            since = _since(request.query_params.get("since"))
            limit = min(1000, max(1, int(request.query_params.get("limit", "200"))))
        except ValueError:
            return _json({"ok": False, "error": "since: Unix ms, ISO 8601 or 30m/24h/7d; limit: a number"}, 400)
        jobs = await run_in_threadpool(ledger.list_jobs, state, since, limit)
        return _json({"ok": True, "jobs": [j.to_dict() for j in jobs]})

    async def get_job(request: Request) -> Response:
        if not authorized(request):
            return deny()
        sid = request.path_params["sid"]
        if not valid_sid(sid):
            return _json({"ok": False, "error": "not a sid"}, 400)
        jobs = await run_in_threadpool(ledger.jobs_for, sid)
        if not jobs:
            return _json({"ok": False, "error": "no job for this sid"}, 404)
        notes = await run_in_threadpool(ledger.notifications_for, sid)
        return _json({"ok": True, "sid": sid, "jobs": [j.to_dict() for j in jobs], "notifications": notes})

    async def post_job(request: Request) -> Response:
        if not authorized(request):
            return deny()
        body = await _read_limited(request, MAX_JOB_BODY)
        if body is None:
            return _json({"ok": False, "error": "body over 64 KiB"}, 413)
        try:
            doc = json.loads(body or b"")
            if not isinstance(doc, dict):
                raise ValueError
        except (ValueError, RecursionError):
            return _json({"ok": False, "error": 'body must be JSON: {"sid": "...", "location"?: "s3://…"}'}, 400)
        sid, cname, loc = doc.get("sid"), doc.get("cname"), doc.get("location")
        if not isinstance(sid, str) or not valid_sid(sid) or (cname is not None and not (
                isinstance(cname, str) and valid_sid_cname(sid, cname))):
            return _json({"ok": False, "error": "sid (and cname) must be accepted by the file-name grammar"}, 400)
        location = None
        if loc is not None:
            if not isinstance(loc, str) or not loc.startswith("s3://"):
                return _json({"ok": False, "error": "location must be an s3:// URL"}, 400)
            bucket, _, folder = loc[5:].partition("/")
            folder = folder if not folder or folder.endswith("/") else folder + "/"
            location = location_for(folder, [s for s in sources if s.bucket == bucket]) if safe_folder(folder) else None
            if location is None:
                return _json({"ok": False, "error": "location must lie inside a configured source"}, 400)
        jid, changed = await run_in_threadpool(lambda: ledger.enqueue("process", sid, cname, location,
                                                                      trigger="api", again=True))
        if changed:
            svc.poke()
        job = await run_in_threadpool(ledger.get, jid)
        return _json({"ok": True, "queued": changed, "job": job.to_dict() if job else None},
                     202 if changed else 200)

    async def index(request: Request) -> Response:
        if not authorized(request):
            return deny()
        jobs = await run_in_threadpool(ledger.list_jobs, None, None, 200)
        counts = await run_in_threadpool(ledger.counts)
        text = page.render(jobs, counts, instance=svc.instance)
        return HTMLResponse(text, headers={**_HEADERS, "Content-Security-Policy": page.CSP})

    async def output(request: Request) -> Response:
        if not authorized(request):
            return deny()
        sid = request.path_params["sid"]
        if not valid_sid(sid):
            return _json({"ok": False, "error": "not a sid"}, 400)
        url = await run_in_threadpool(svc.output_url, sid, int(request.path_params["n"]))
        if url is None:
            return _json({"ok": False, "error": "no such output"}, 404)
        return RedirectResponse(url, status_code=307, headers=_HEADERS)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(svc.start)
        try:
            yield
        finally:
            await run_in_threadpool(svc.stop)

    routes = [
        Route("/agora/ncs", ncs, methods=["POST"]),
        Route("/livez", livez), Route("/readyz", readyz), Route("/metrics", metrics_route),
        Route("/jobs", list_jobs, methods=["GET"]), Route("/jobs", post_job, methods=["POST"]),
        Route("/jobs/{sid}", get_job), Route("/outputs/{sid}/{n:int}", output),
        Route("/", index),
    ]
    async def http_error(request: Request, exc: Exception) -> Response:
        """Routing errors (no such path, method not allowed) as JSON, like every other answer."""
        code = getattr(exc, "status_code", 500)
        headers = {**_HEADERS, **(getattr(exc, "headers", None) or {})}
        return JSONResponse({"ok": False, "error": getattr(exc, "detail", None) or "error"}, status_code=code,
                            headers=headers)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    # no 307 to the slash-less path (built from the request's Host, answered before any token
    # check, and not JSON): /jobs/ is a 404 like any unknown path
    app.router.redirect_slashes = False
    return app
