"""The ``Purchases`` port over HTTP: an experience's ``PurchaseCallbackUrl``."""

from __future__ import annotations

import asyncio
import logging

import aiohttp

__all__ = ["HttpPurchases"]

log = logging.getLogger(__name__)


class HttpPurchases:
    """POSTs the purchase to the experience's callback URL.

    Args:
        timeout: seconds the callback may take before the purchase fails.
    """

    def __init__(self, timeout: float = 5.0):
        self.timeout = timeout

    async def confirm(self, url: str, payload: dict) -> str | None:
        """Ask the experience's purchase callback; None when approved, else why not.

        Approved: a 2xx answer whose body is not JSON ``{"Approved": false}``."""
        try:
            timeout = aiohttp.ClientTimeout(total=self.timeout)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                async with http.post(url, json=payload, allow_redirects=False) as r:
                    if not 200 <= r.status < 300:
                        return ("The purchase was not completed (the experience's purchase service "
                                f"answered {r.status}).")
                    try:
                        body = await r.json(content_type=None)
                    except ValueError:  # not JSON: the status alone approves
                        body = None
        except asyncio.TimeoutError:
            return f"The purchase could not be confirmed: the experience's purchase service did not answer " \
                   f"within {self.timeout:g} s."
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            log.warning("purchase callback %s failed: %r", url, exc)
            return "The purchase could not be confirmed: the experience's purchase service could not be reached."
        if isinstance(body, dict) and body.get("Approved") is False:
            return "The purchase was declined."
        return None
