"""Telling the customer: a notification shaped like Agora's event 1001, signed, retried.

The body is built once and kept in the ledger's outbox, so every retry sends the same
bytes under the same ``noticeId`` (the receiver drops repeats, as it does for NCS). It
is signed like NCS: ``Agora-Signature-V2`` = lowercase hex HMAC-SHA256 of the body,
keyed with the notify secret (``MEDIATOOLS_NOTIFY_SECRET``, else the NCS secret), so a
receiver that already checks Agora's notifications checks ours with the same code.
"""
from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
import uuid
from typing import Any

from .jobs import agora_result, backoff_s
from .ledger import Job, Ledger, now_ms
from .signature import V2_HEADER, sign_v2

log = logging.getLogger(__name__)
HEADER = V2_HEADER


def build_body(job: Job, result: dict[str, Any] | None, *, notice_id: str | None = None) -> tuple[str, str]:
    """(noticeId, JSON text) of the 1001-shaped notification for a finished process job."""
    nid = notice_id or str(uuid.uuid4())
    result = result or {}
    outputs = result.get("outputs") or []
    files = []
    for o in outputs if isinstance(outputs, list) else []:
        if isinstance(o, dict):
            files.append({k: o[k] for k in ("key", "fileName", "size", "md5", "kind") if k in o})
        elif isinstance(o, str):
            files.append({"fileName": o})
    for f in files:
        if "key" in f and "fileName" not in f:
            f["fileName"] = f.pop("key")
    now = now_ms()
    doc = {
        "noticeId": nid, "productId": 3, "eventType": 1001, "notifyMs": now,
        "payload": {
            "sid": job.sid, "cname": job.cname or result.get("cname") or "", "uid": "", "sequence": 0,
            "sendts": now, "serviceType": 4,
            "details": {
                "msgName": "postpone_transcode_final_result",
                "result": agora_result(job.state, result),
                "fileList": files,
                "mediatools": {"status": result.get("status"), "job": job.job_id, "location": job.location,
                               "dest": result.get("dest") or job.location,
                               "verify": result.get("verify"), "error": job.error},
            },
        },
    }
    return nid, json.dumps(doc, separators=(",", ":"), ensure_ascii=False)



class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib follows a 301/302/303 by turning the POST into a GET without its body: the
    notification would be marked sent though nobody received it. A redirect is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)

class Notifier:
    """Sends due outbox entries until a 2xx, with doubling delays, in its own thread."""

    def __init__(self, ledger: Ledger, url: str, secret: bytes, *, max_attempts: int = 12,
                 base_s: float = 2.0, max_s: float = 600.0, poll_s: float = 0.5, timeout_s: float = 10.0):
        self.ledger, self.url, self._secret = ledger, url, secret
        self.max_attempts, self.base_s, self.max_s = max_attempts, base_s, max_s
        self.poll_s, self.timeout_s = poll_s, timeout_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)

    def __repr__(self) -> str:
        return "Notifier()"   # the URL may carry credentials

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=15)

    def poke(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for entry in self.ledger.due_outgoing():
                    if self._stop.is_set():
                        break
                    self._send(entry)
            except Exception:   # the ledger may be briefly unreachable; try again next round
                log.exception("notify: cannot read the outbox")
            self._wake.wait(self.poll_s)
            self._wake.clear()

    def _send(self, entry: dict[str, Any]) -> None:
        """POST one entry; a 2xx is sent, anything else (a 3xx included) is retried."""
        body = entry["body"].encode()
        req = urllib.request.Request(self.url, data=body, method="POST", headers={
            "Content-Type": "application/json", HEADER: sign_v2(self._secret, body),
            "User-Agent": "mediatools-serve"})
        error = None
        try:
            with _OPENER.open(req, timeout=self.timeout_s) as resp:   # noqa: S310 (URL from config)
                code = resp.status
        except urllib.error.HTTPError as exc:
            code = exc.code
        except Exception as exc:   # noqa: BLE001 - any failure is this entry's, counted and retried
            code, error = None, f"{type(exc).__name__}: {exc}"
        attempt = entry["attempts"] + 1
        if code is not None and 200 <= code < 300:
            log.info("notify: %s sent for %s", entry["notice_id"], entry["job_id"])
            self.ledger.outgoing_result(entry["notice_id"], sent=True, error=None, next_ms=None)
            return
        error = error or f"HTTP {code}"
        give_up = attempt >= self.max_attempts
        delay = backoff_s(attempt, self.base_s, self.max_s)
        log.warning("notify: %s for %s failed (%s), %s", entry["notice_id"], entry["job_id"], error,
                    "giving up" if give_up else f"retry in {delay:.0f} s")
        self.ledger.outgoing_result(entry["notice_id"], sent=False, error=error,
                                    next_ms=now_ms() + int(delay * 1000), give_up=give_up)
