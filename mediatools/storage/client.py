"""A boto3 S3 client sized for many small GETs.

Request-level retries (throttling, 5xx, timeouts, refused connections) are
botocore's ``standard`` mode; the connection pool matches ``jobs`` so no worker
waits for a socket.
"""
from __future__ import annotations

from typing import Any

from ..errors import MediatoolsError
from .location import Settings


def make_client(settings: Settings, *, jobs: int = 32, retries: int = 5,
                connect_timeout: float = 10, read_timeout: float = 60) -> Any:
    import boto3
    import botocore
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    cfg = Config(
        max_pool_connections=max(10, jobs + 2),
        retries={"max_attempts": max(1, retries), "mode": "standard"},
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        s3={"addressing_style": settings.addressing_style},
        signature_version=botocore.UNSIGNED if settings.unsigned else None,
        user_agent_extra="mediatools",
    )
    try:
        session = boto3.session.Session(profile_name=settings.profile)
    except ProfileNotFound:
        raise MediatoolsError(f"AWS profile {settings.profile!r} not found", code="no_profile") from None
    # Listing thousands of keys spent most of its CPU turning LastModified into datetimes
    # (dateutil); nothing here reads it, so keep the text, as the AWS CLI does.
    session._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_identity)
    kwargs: dict[str, Any] = {"config": cfg}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
    if settings.region:
        kwargs["region_name"] = settings.region
    if settings.access_key and settings.secret_key:
        kwargs["aws_access_key_id"] = settings.access_key
        kwargs["aws_secret_access_key"] = settings.secret_key
        if settings.session_token:
            kwargs["aws_session_token"] = settings.session_token
    try:
        return session.client("s3", **kwargs)
    except (BotoCoreError, ValueError) as exc:
        raise MediatoolsError(f"cannot set up the S3 client: {exc}", code="s3_client") from None


def _identity(value: Any) -> Any:
    return value
