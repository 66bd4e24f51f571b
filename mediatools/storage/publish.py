"""Publish a set of outputs with their manifest last, so the manifest's presence means "complete".

Order: refuse foreign objects → write a *pending* claim (which keys are about to be
written) → upload every output → write the manifest → delete outputs only the old
manifest claimed → drop the pending claim. A run killed anywhere leaves either the
old manifest (its outputs present) or none; its outputs are claimed by the pending
object, so the rerun may overwrite them. An object under an output name that neither
a mediatools manifest nor a pending claim names is never overwritten unless forced.
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import MediatoolsError
from .backend import LocalStore, Store, content_type
from .selection import ObjectInfo
from .transfer import file_md5

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "mediatools.process-manifest/1"
PENDING_SCHEMA = "mediatools.process-pending/1"


class ForeignObject(MediatoolsError):
    """An output name is taken by an object mediatools did not write."""


@dataclass(frozen=True)
class Output:
    path: Path          # local file
    key: str            # where it goes
    kind: str           # "mix", "stem"
    uid: str | None = None


def read_doc(store: Store, key: str, schema: str) -> dict | None:
    """The JSON document at ``key`` if it is one of ours; None if absent; ForeignObject if not ours."""
    if store.head(key) is None:
        return None
    try:
        doc = json.loads(store.get(key))
    except (ValueError, UnicodeDecodeError):
        doc = None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        raise ForeignObject("exists and is not a mediatools manifest (left alone; --force replaces it)",
                            file=key, code="foreign_object")
    return doc


def claimed_keys(*docs: dict | None) -> set[str]:
    out: set[str] = set()
    for d in docs:
        for o in (d or {}).get("outputs", []):
            if isinstance(o, dict) and isinstance(o.get("key"), str):
                out.add(o["key"])
    return out


def published(doc: dict | None) -> dict[str, dict]:
    """key → the output entry (its ETag and MD5 as published) of each output a manifest recorded an ETag for."""
    return {o["key"]: o for o in (doc or {}).get("outputs", [])
            if isinstance(o, dict) and isinstance(o.get("key"), str) and isinstance(o.get("etag"), str) and o["etag"]}


def _same_content(store: Store, now: ObjectInfo, entry: dict) -> bool:
    """A new ETag over the bytes that were published (a local file touched or copied without
    its times, an object copied within its store): still ours, when the content MD5 can say so."""
    md5 = entry.get("md5")
    if not isinstance(md5, str) or now.size != entry.get("size"):
        return False
    if now.md5 is not None:
        return now.md5 == md5
    if isinstance(store, LocalStore):
        return file_md5(store.path(now.key)) == md5
    return False


def outputs_changed(store: Store, doc: dict | None) -> dict[str, str]:
    """The manifest's outputs that are "gone", or "replaced": no longer the object it published
    (someone else wrote there since: Agora's own postpone mix uses the same name). A replaced
    one is no longer ours: it is not overwritten, nor removed as stale, unless forced."""
    out = {}
    for key, entry in published(doc).items():
        now = store.head(key)
        if now is None:
            out[key] = "gone"
        elif now.etag != entry["etag"] and not _same_content(store, now, entry):
            out[key] = "replaced"
    return out


def ours(store: Store, old_manifest: dict | None, pending: dict | None,
         changed: dict[str, str] | None = None) -> set[str]:
    """Keys mediatools may overwrite: claimed by the pending claim, or by the old manifest and
    still the object that run published (``changed``: :func:`outputs_changed` of it, when the
    caller has just found it)."""
    if changed is None:
        changed = outputs_changed(store, old_manifest)
    replaced = {k for k, why in changed.items() if why == "replaced"}
    return (claimed_keys(old_manifest) - replaced) | claimed_keys(pending)


def check_foreign(store: Store, keys: list[str], claimed: set[str], manifest_key: str | None = None) -> None:
    """Raise ForeignObject for the first of ``keys`` that exists unclaimed. Before judging, the
    manifest at ``manifest_key`` is read again: another run of the same recording (a second
    instance, a job released while its task still ran) may have published since ``claimed``
    was read, and its objects are ours, not foreign."""
    fresh: set[str] | None = None
    for key in keys:
        if key in claimed or store.head(key) is None:
            continue
        if fresh is None and manifest_key is not None:
            try:
                fresh = ours(store, read_doc(store, manifest_key, MANIFEST_SCHEMA), None)
            except ForeignObject:
                fresh = set()
        if key not in (fresh or set()):
            raise ForeignObject("exists and no mediatools manifest claims it (left alone; --force replaces it)",
                                file=key, code="foreign_object")


def publish(store: Store, outputs: list[Output], manifest_key: str, pending_key: str,
            build_manifest: Callable[[list[dict[str, Any]]], dict], *, old_manifest: dict | None = None,
            force: bool = False, stage: Callable[[str], None] | None = None,
            gate: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """Upload ``outputs``, then the manifest ``build_manifest(outputs_info)`` returns; see the module docstring.
    ``gate()`` runs before the first write and before the manifest, and raises to stop there (the
    service's lease check: a run whose job passed to another instance publishes nothing more)."""
    try:
        pending = read_doc(store, pending_key, PENDING_SCHEMA)
    except ForeignObject:
        if not force:
            raise
        pending = None
    if not force:
        check_foreign(store, [o.key for o in outputs], ours(store, old_manifest, pending), manifest_key)
    infos = [{"key": o.key, "kind": o.kind, **({"uid": o.uid} if o.uid is not None else {}),
              "size": o.path.stat().st_size, "md5": file_md5(o.path), "content_type": content_type(o.key)}
             for o in outputs]
    claim = {"schema": PENDING_SCHEMA, "manifest": manifest_key,
             "outputs": [{"key": k} for k in sorted({i["key"] for i in infos} | claimed_keys(pending))]}
    if gate:
        gate()
    store.put_bytes(json.dumps(claim, indent=2).encode(), pending_key, "application/json")
    for o, info in zip(outputs, infos):
        if stage:
            stage(f"upload {o.key.rsplit('/', 1)[-1]}")
        got = store.put_file(o.path, o.key, info["content_type"])
        if got.size != info["size"]:
            raise MediatoolsError(f"stored {got.size} bytes, expected {info['size']}", file=o.key, code="upload")
        if got.md5 and got.md5 != info["md5"]:
            raise MediatoolsError("stored object's MD5 differs from the file's", file=o.key, code="upload")
        info["etag"] = got.etag
        log.info("published %s (%d bytes)", o.key, info["size"])
    if gate:
        gate()
    manifest = build_manifest(infos)
    manifest["schema"] = MANIFEST_SCHEMA
    store.put_bytes(json.dumps(manifest, indent=2, ensure_ascii=False).encode(), manifest_key, "application/json")
    new = {i["key"] for i in infos}
    for stale in sorted(ours(store, old_manifest, pending) - new):
        log.info("removing %s (an earlier output no longer produced)", stale)
        store.delete(stale)
    store.delete(pending_key)
    return infos
