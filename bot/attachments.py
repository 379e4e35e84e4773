"""Downloading attachments: only from Discord's CDN (or the configured API base's own
origin, for a REST proxy or the fake Discord in tests), streamed with the size cap
enforced while reading.

An attachment URL comes from a gateway payload; whoever controls the API base (or a
proxy in between) controls it. So the bot never fetches from a host it does not know,
never follows a redirect, and stops reading at the size limit whatever the headers
said.
"""

from __future__ import annotations

import logging

import aiohttp
import discord
import yarl

from bot.errors import TooLarge, UserError

log = logging.getLogger(__name__)

DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
CHUNK = 64 * 1024


class ForeignHost(UserError):
    def __init__(self, filename: str) -> None:
        super().__init__(
            f"I can only fetch pictures uploaded to Discord, and **{filename}** lives "
            "somewhere else. Please upload the file itself."
        )


class DownloadFailed(UserError):
    def __init__(self, filename: str) -> None:
        super().__init__(
            f"I couldn't download **{filename}** from Discord just now. Please try again."
        )


def _origin(url: yarl.URL) -> tuple[str, str, int | None]:
    return (url.scheme.lower(), (url.host or "").lower(), url.port)


class AttachmentFetcher:
    """`await fetcher.read(attachment, max_bytes) -> bytes`; one session per bot."""

    def __init__(self, api_base: str = "", timeout_s: float = 60.0) -> None:
        self._api_origin = _origin(yarl.URL(api_base)) if api_base else None
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=10,
                                              sock_read=min(20.0, timeout_s))
        self._session: aiohttp.ClientSession | None = None

    def allowed(self, url: str) -> bool:
        """Discord's CDN over https, or exactly the configured API base's origin."""
        try:
            parsed = yarl.URL(url)
        except (ValueError, TypeError):
            return False
        if parsed.user or parsed.password:
            return False
        scheme, host, _ = _origin(parsed)
        if scheme == "https" and host in DISCORD_CDN_HOSTS:
            return True
        return self._api_origin is not None and _origin(parsed) == self._api_origin

    async def read(self, attachment: discord.Attachment, max_bytes: int) -> bytes:
        """The attachment's bytes; a kind UserError for a foreign host, a download that
        fails, or more than `max_bytes` (stops reading there)."""
        name = attachment.filename
        if not self.allowed(attachment.url):
            log.warning("refused attachment %s from a foreign host %s", attachment.id,
                        yarl.URL(attachment.url).host)
            raise ForeignHost(name)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        data = bytearray()
        try:
            async with self._session.get(attachment.url, allow_redirects=False) as response:
                if response.status != 200:
                    log.warning("attachment %s: HTTP %d", attachment.id, response.status)
                    raise DownloadFailed(name)
                if response.content_length is not None and response.content_length > max_bytes:
                    raise TooLarge(name, response.content_length, max_bytes)
                async for chunk in response.content.iter_chunked(CHUNK):
                    data += chunk
                    if len(data) > max_bytes:
                        raise TooLarge(name, len(data), max_bytes)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("attachment %s: %s", attachment.id, type(exc).__name__)
            raise DownloadFailed(name) from exc
        return bytes(data)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
