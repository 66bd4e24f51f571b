"""From one NCS notification to a decision: which job, for which recording, where.

Pure functions: no I/O, so every rule is tested without a server. A sid or cname is
accepted only when Agora's file-name grammar parses a name built from it back to the
same values; a folder only when each part is a plain name. Nothing unchecked reaches a key.
"""
from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Any

from ..agora.names import NameError_, parse_name, parse_result_name, playlist_name

UPLOADED, BACKUPED, SESSION_EXIT, POSTPONE_RESULT = 31, 32, 11, 1001
CLOUD_RECORDING = 3
TEST_CNAME = "test_webhook"
_FOLDER_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
_DIGITS = re.compile(r"\s*-?[0-9]{1,20}\s*")   # ASCII only: str.isdigit() also takes "²", int() does not


@dataclass(frozen=True)
class Notice:
    """The fields of a notification the ledger indexes (the raw body is kept beside)."""

    notice_id: str
    event_type: int | None
    product_id: int | None
    notify_ms: int | None
    sid: str | None
    cname: str | None
    sequence: int | None


@dataclass(frozen=True)
class Decision:
    """What to do: ``kind`` is ``process``, ``verify`` or ``None`` (store only)."""

    kind: str | None
    reason: str
    sid: str | None = None
    cname: str | None = None
    folder: str | None = None      # key folder from fileList ("a/b/"), "" for the bucket root, None: unknown
    wait: bool = False             # 32: some slices reach the bucket later
    agora_result: str | None = None
    agora_files: tuple[str, ...] = ()


class BadNotice(ValueError):
    """The JSON is not an NCS notification (no noticeId)."""


def parse_notice(doc: Any) -> Notice:
    """The indexed fields of a notification. Values the ledger could not hold as given (numbers
    beyond its integer columns, strings longer than its columns, with a NUL or not encodable as
    UTF-8) are indexed as absent: the raw body keeps them, and no job comes of them."""
    if not isinstance(doc, dict):
        raise BadNotice("the body is not a JSON object")
    nid = _str(doc.get("noticeId"), 200)
    if nid is None:
        raise BadNotice("noticeId must be a non-empty string (200 characters at most)")
    payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else {}
    return Notice(notice_id=nid, event_type=_int(doc.get("eventType")), product_id=_int(doc.get("productId")),
                  notify_ms=_int(doc.get("notifyMs"), bits=63), sid=_str(payload.get("sid"), 128),
                  cname=_str(payload.get("cname"), 256), sequence=_int(payload.get("sequence")))


def valid_sid_cname(sid: str | None, cname: str | None) -> bool:
    """Does the file-name grammar accept this sid and cname and give them back unchanged?"""
    if not sid or not cname or len(sid) > 128 or len(cname) > 256:
        return False
    try:
        n = parse_name(playlist_name(sid, cname, "0"))
    except NameError_:
        return False
    return n.sid == sid and n.cname == cname and n.uid == "0" and n.bak is None


def valid_sid(sid: str | None) -> bool:
    return valid_sid_cname(sid, "x")


def safe_folder(folder: str) -> bool:
    """A key folder ("", or "a/b/") whose parts are plain names: no "..", no empty part."""
    if folder == "":
        return True
    if not folder.endswith("/") or len(folder) > 512:
        return False
    return all(_FOLDER_PART.match(p) and p not in (".", "..") for p in folder[:-1].split("/"))


def decide(doc: dict[str, Any], notice: Notice) -> Decision:
    """The job a notification asks for. Never raises on odd content: odd means store only."""
    payload = doc.get("payload") if isinstance(doc.get("payload"), dict) else {}
    details = payload.get("details") if isinstance(payload.get("details"), dict) else {}
    et = notice.event_type
    if notice.cname == TEST_CNAME:
        return Decision(None, "test notification")
    if notice.product_id not in (None, CLOUD_RECORDING):
        return Decision(None, f"product {notice.product_id} is not cloud recording")
    if et not in (UPLOADED, BACKUPED, SESSION_EXIT, POSTPONE_RESULT):
        return Decision(None, f"event {et} starts no job")
    if et == SESSION_EXIT and _int(details.get("exitStatus")) != 0:
        return Decision(None, "session exit without a normal upload (exitStatus is not 0)")
    if not valid_sid_cname(notice.sid, notice.cname):
        return Decision(None, "sid or cname not accepted by the file-name grammar")
    sid, cname = notice.sid, notice.cname
    files = file_list(details)
    folder = folder_of(files, sid, mixes=et == POSTPONE_RESULT)
    if et == POSTPONE_RESULT:
        result = _str(details.get("result"))
        return Decision("verify", "Agora's postpone mix finished", sid, cname, folder,
                        agora_result=result if result in ("total_success", "partial_success", "failed") else None,
                        agora_files=tuple(f for f in files if _plain_key(f)))
    # the playlists the notification names: their uids must be in the store before the mix (a
    # 32's backed-up user may not be listed at all yet, and the mix went out without them)
    return Decision("process", {UPLOADED: "uploaded", BACKUPED: "uploaded, some slices via backup",
                                SESSION_EXIT: "session exited normally"}[et],
                    sid, cname, folder, wait=et == BACKUPED,
                    agora_files=tuple(f for f in files if _plain_key(f) and f.endswith(".m3u8")))


def file_list(details: dict[str, Any]) -> list[str]:
    """The names in ``fileList``: entries are objects with ``fileName`` (Agora's English reference)
    or ``filename`` (its Chinese reference for 1001 and 81, and some of its examples), or bare names."""
    fl = details.get("fileList")
    if not isinstance(fl, list):
        return []
    out = []
    for e in fl:
        name = (e.get("fileName") or e.get("filename")) if isinstance(e, dict) else e if isinstance(e, str) else None
        if isinstance(name, str) and name:
            out.append(name)
    return out


def folder_of(files: list[str], sid: str, *, mixes: bool = False) -> str | None:
    """The folder the playlists of ``sid`` sit in, when fileList keys carry one and all agree.

    Only keys whose base name parses as this sid's playlist count, and with ``mixes`` (a 1001,
    whose fileList names only Agora's mix, stored beside the recording) this sid's postpone-mix
    names too; ``None`` means "list the sources for ``<sid>_``" (keys without a folder, or
    folders that disagree or are unsafe).
    """
    folders = set()
    for key in files:
        folder, name = posixpath.split(key.lstrip("/"))
        r = parse_result_name(name) if mixes else None
        if r is None or r.kind != "mix" or r.sid != sid:
            try:
                n = parse_name(name)
            except NameError_:
                continue
            if n.sid != sid or n.kind != "playlist":
                continue
        folders.add(folder + "/" if folder else "")
    if len(folders) != 1:
        return None
    (folder,) = folders
    return folder if folder and safe_folder(folder) else None


def _plain_key(key: str) -> bool:
    folder, name = posixpath.split(key)
    return bool(name) and safe_folder(folder + "/" if folder else "") and _FOLDER_PART.match(name) is not None


def _int(v: Any, bits: int = 31) -> int | None:
    """An integer (or a string of digits) that fits a signed ``bits + 1``-bit column, else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, str) and _DIGITS.fullmatch(v):
        v = int(v)
    if isinstance(v, int) and -(1 << bits) <= v < (1 << bits):
        return v
    return None


def _str(v: Any, limit: int = 1000) -> str | None:
    """A non-empty string of at most ``limit`` characters, without NUL, that UTF-8 can encode."""
    if not isinstance(v, str) or not v or len(v) > limit or "\x00" in v:
        return None
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:     # a lone surrogate ("\ud800" in the JSON)
        return None
    return v
