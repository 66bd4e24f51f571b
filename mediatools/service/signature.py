"""NCS signatures: HMAC over the raw body bytes, compared in constant time.

Agora signs nothing but the body (no timestamp), so the body must be checked exactly
as received, before it is parsed or stored.
"""
from __future__ import annotations

import hashlib
import hmac

V2_HEADER = "Agora-Signature-V2"   # HMAC-SHA256, lowercase hex
V1_HEADER = "Agora-Signature"      # HMAC-SHA1, lowercase hex (only with --accept-sha1)


def sign_v2(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def sign_v1(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha1).hexdigest()


def _same(expected: str, given: str | None) -> bool:
    if not given:
        return False
    # compare_digest on bytes of equal type; a non-ASCII header value is simply wrong
    try:
        given_b = given.strip().lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode("ascii"), given_b)


def check(secret: bytes, body: bytes, v2: str | None, v1: str | None = None, *,
          accept_sha1: bool = False) -> bool:
    """True when the body carries a valid V2 signature (or V1, only when allowed).

    A present but wrong V2 is not rescued by a valid V1: a sender that signs V2 signs it right.
    """
    if v2 is not None:   # present, even empty or blank: judged as V2 alone
        return _same(sign_v2(secret, body), v2)
    if accept_sha1 and v1:
        return _same(sign_v1(secret, body), v1)
    return False
