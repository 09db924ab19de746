"""The notify stage: POST one lifecycle event to one webhook, signed.

Signed the Standard Webhooks way (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">``) with the
reference library, so a receiver verifies it with any Standard Webhooks
library.  Where a delivery may go is checked when it is made, not when it was
configured: DNS answers change, and a publisher's ``callback_url`` is not
trusted.  Redirects are not followed (one could point inside).

The runtime (core/runtime/notify.py) decides what to send, when and how often;
this module only makes one attempt and says how it went.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks import Webhook

USER_AGENT = "docgraph-webhooks/1"


class TargetRefused(Exception):
    """The URL may not be called: not http(s), or it resolves to a non-public address."""


@dataclass(frozen=True)
class Attempt:
    """How one delivery attempt went."""

    delivered: bool
    error: str = ""
    permanent: bool = False  #: retrying cannot help (the target is refused)
    retry_after: float | None = None  #: seconds the receiver asked for (Retry-After)
    status: int | None = None


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise TargetRefused unless ``url`` is http(s) and every address its host
    resolves to is public (or ``allow_private``)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TargetRefused(f"only http:// and https:// URLs are called, not {parts.scheme or '(none)'}://")
    host = parts.hostname
    if allow_private:
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as exc:
        raise TargetRefused(f"{host} does not resolve ({exc})") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        mapped = getattr(address, "ipv4_mapped", None)
        if not (mapped or address).is_global:
            raise TargetRefused(
                f"{host} resolves to {address}, a loopback, private or otherwise non-public address; "
                "set DOCGRAPH_NOTIFY__ALLOW_PRIVATE_TARGETS=true to allow it (guard against SSRF)"
            )


def signed_headers(secret: str, msg_id: str, body: bytes, now: float | None = None) -> dict[str, str]:
    """The Standard Webhooks headers of ``body`` (timestamp: now, in seconds)."""
    stamp = datetime.fromtimestamp(int(now if now is not None else time.time()), UTC)
    signature = Webhook(secret).sign(msg_id, stamp, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(stamp.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta seconds or an HTTP date)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class WebhookSender:
    """One HTTP client for a notify worker's deliveries (connections reused)."""

    def __init__(self, *, timeout: float, allow_private: bool) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)

    async def send(self, url: str, secret: str, msg_id: str, body: bytes) -> Attempt:
        host = urlsplit(url).hostname or "?"  # errors name the host, never the URL (it may hold a token)
        try:
            await check_target(url, allow_private=self.allow_private)
        except TargetRefused as exc:
            return Attempt(False, f"refused: {exc}", permanent=True)
        headers = signed_headers(secret, msg_id, body)
        try:
            async with asyncio.timeout(self.timeout):  # the whole attempt, however slowly bytes trickle
                response = await self.client.post(url, content=body, headers=headers)
        except (TimeoutError, httpx.TimeoutException):
            return Attempt(False, f"no response from {host} within {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Attempt(False, f"{type(exc).__name__} calling {host}: {exc}")
        code = response.status_code
        if 200 <= code < 300:
            return Attempt(True, status=code)
        why = "redirects are not followed" if 300 <= code < 400 else response.reason_phrase
        return Attempt(
            False,
            f"HTTP {code} from {host} ({why})",
            retry_after=retry_after(response.headers.get("retry-after")),
            status=code,
        )

    async def aclose(self) -> None:
        await self.client.aclose()


__all__ = ["Attempt", "TargetRefused", "WebhookSender", "check_target", "retry_after", "signed_headers"]
