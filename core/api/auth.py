"""Bearer-token auth from ``DOCGRAPH_API_TOKENS`` (and the token as HTTP Basic password, for the S3 webhook only)."""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from docgraph.core.api.problems import Problem

bearer = HTTPBearer(
    auto_error=False,
    description="one of DOCGRAPH_API_TOKENS: `Authorization: Bearer <token>`",
)


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    tokens: list[bytes] = request.app.state.tokens
    if not tokens:
        return
    given = credentials.credentials.encode() if credentials is not None else _webhook_password(request)
    if given is None:
        raise Problem(
            401,
            "this endpoint needs a bearer token: send `Authorization: Bearer <token>` "
            "with one of the tokens in DOCGRAPH_API_TOKENS",
            headers={"WWW-Authenticate": 'Bearer realm="docgraph"'},
        )
    ok = False
    for token in tokens:  # compare against all of them: no early exit to time
        ok |= hmac.compare_digest(given, token)
    if not ok:
        raise Problem(
            403,
            "the token is not one of DOCGRAPH_API_TOKENS; check the token you were given",
            headers={"WWW-Authenticate": 'Bearer realm="docgraph", error="invalid_token"'},
        )


def _webhook_password(request: Request) -> bytes | None:
    """For the bucket-notification webhook only: a token sent as the password of
    HTTP Basic auth, for S3 servers that cannot send a bearer header but take a
    ``http://docgraph:<token>@host/v1/events/s3`` URL (versitygw)."""
    header = request.headers.get("authorization", "")
    if not request.url.path.endswith("/v1/events/s3") or header[:6].lower() != "basic ":
        return None
    try:
        _, _, password = base64.b64decode(header[6:].strip(), validate=True).partition(b":")
    except (binascii.Error, ValueError):
        return b""  # malformed: a wrong token (403), not a missing one
    return password
