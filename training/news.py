"""Training news in Discord: "sent updates to friends" while a member grows up.

A Discord webhook URL (`--webhook`, or the COLORBOT_TRAINING_WEBHOOK setting) gets
- the snapshot sheet after each snapshot of `colorbot train`,
- the final card when training ends (steps, time, losses, the growing-up GIF and the
  loss curves),
- a retrain cycle's result: who was promoted, by how much, and the new board.

Posting never gets in training's way: `TrainingNews` posts from its own thread (a
training step never waits for Discord), every post has a short timeout, and a failure
is logged and counted, never raised. The webhook URL carries a secret token, so logs
name only the webhook's id.

    news = TrainingNews(url, "openmoji", total_steps=cfg.steps)
    train(cfg, on_snapshot=news.snapshot, on_finish=news.finished)
    news.close()
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from db import Database
    from training.config import TrainResult
    from training.leaderboard import LeaderboardRow
    from training.retrain import CycleReport

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0  # per post: connect and answer
MAX_RETRY_AFTER_S = 5.0  # a rate-limited post waits this long at most, once
MAX_FILE_BYTES = 8 * 1024 * 1024  # Discord's smallest upload limit; bigger files are left out
USERNAME = "colorbot training"

Attachment = tuple[str, bytes]  # (file name, content)


def webhook_url(flag: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The webhook to post to: the flag, else the setting (COLORBOT_TRAINING_WEBHOOK);
    "" means no news. `env` replaces the process environment (tests)."""
    from colorbot.settings import Settings

    return flag or Settings.from_env(None if env is None else dict(env)).training_webhook


def _name(url: str) -> str:
    """The webhook for a log line, without its token."""
    parts = url.rstrip("/").split("/")
    return f"webhook {parts[-2]}" if len(parts) >= 2 else "webhook"


def _multipart(payload: dict[str, Any], files: Sequence[Attachment]) -> tuple[bytes, str]:
    """Discord's form: `payload_json` and `files[n]` parts."""
    boundary = uuid.uuid4().hex
    out = bytearray()

    def part(headers: str, body: bytes) -> None:
        out.extend(f"--{boundary}\r\n{headers}\r\n\r\n".encode())
        out.extend(body)
        out.extend(b"\r\n")

    part('Content-Disposition: form-data; name="payload_json"\r\n'
         "Content-Type: application/json", json.dumps(payload).encode())
    for i, (filename, data) in enumerate(files):
        kind = "image/gif" if filename.endswith(".gif") else "image/png"
        safe = filename.replace('"', "")
        part(f'Content-Disposition: form-data; name="files[{i}]"; filename="{safe}"\r\n'
             f"Content-Type: {kind}", data)
    out.extend(f"--{boundary}--\r\n".encode())
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def post(url: str, content: str, files: Sequence[Attachment] = (), *,
         timeout: float = TIMEOUT_S) -> bool:
    """Post one message (text and attachments) to a Discord webhook; True when Discord
    took it. Never raises: a failure is logged."""
    kept = [(n, d) for n, d in files if len(d) <= MAX_FILE_BYTES]
    if len(kept) < len(files):
        content += "\n(a picture was too large to attach)"
    payload = {
        "content": content[:2000],
        "username": USERNAME,
        "allowed_mentions": {"parse": []},  # news never pings anyone
        "attachments": [{"id": i, "filename": n} for i, (n, _) in enumerate(kept)],
    }
    body, content_type = _multipart(payload, kept)
    for attempt in (1, 2):
        request = urllib.request.Request(
            url, data=body, method="POST",
            headers={"Content-Type": content_type, "User-Agent": "colorbot-training-news"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            if exc.code == 429 and attempt == 1:  # rate limited: wait once if it is short
                try:
                    wait = float(json.loads(exc.read() or b"{}").get("retry_after", 1.0))
                except (ValueError, AttributeError):
                    wait = 1.0
                if wait <= MAX_RETRY_AFTER_S:
                    time.sleep(wait)
                    continue
            log.warning("training news: %s answered %s; not posted", _name(url), exc.code)
        except Exception as exc:  # noqa: BLE001 - news must never stop training
            log.warning("training news: could not reach %s (%s); not posted", _name(url),
                        type(exc).__name__)
        return False
    return False


def _read(path: Path | None) -> list[Attachment]:
    if path is None:
        return []
    try:
        return [(path.name, path.read_bytes())]
    except OSError:
        log.warning("training news: cannot read %s", path)
        return []


def final_card(name: str, result: TrainResult) -> str:
    """The final card's text: how far it got, how long it took, where the losses ended."""
    verb = "finished growing up" if result.finished else "stopped (checkpointed)"
    minutes = result.wall_seconds / 60
    lines = [f"🎓 **{name}** {verb} at step {result.step} after {minutes:.1f} min "
             f"({result.steps_per_second:.2f} steps/s)."]
    if result.losses:
        losses = " · ".join(f"{k} {v:.3f}" for k, v in result.losses.items())
        lines.append(f"Final losses: {losses}")
    if result.growing_up is not None:
        lines.append("How it grew up, snapshot by snapshot:")
    return "\n".join(lines)


class TrainingNews:
    """Posts a training run's news from a background thread, in order.

    `snapshot` and `finished` match `training.train.train`'s `on_snapshot` and
    `on_finish` callbacks; they only queue a post. `close()` waits (boundedly) for
    what is queued. `posted` and `failed` count the outcomes.
    """

    def __init__(self, url: str, name: str, *, total_steps: int | None = None,
                 max_queue: int = 16, timeout: float = TIMEOUT_S) -> None:
        self.url = url
        self.name = name
        self.total_steps = total_steps
        self.timeout = timeout
        self.posted = 0
        self.failed = 0
        self.dropped = 0
        self._queue: queue.Queue[tuple[str, list[Attachment]] | None] = queue.Queue(max_queue)
        self._thread = threading.Thread(target=self._run, name="training-news", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            content, files = item
            if post(self.url, content, files, timeout=self.timeout):
                self.posted += 1
            else:
                self.failed += 1

    def _send(self, content: str, files: list[Attachment]) -> None:
        try:
            self._queue.put_nowait((content, files))
        except queue.Full:  # Discord is far behind: skip a snapshot rather than wait
            self.dropped += 1
            log.warning("training news: queue full, a post was dropped")

    def snapshot(self, step: int, sheet: Path) -> None:
        """`on_snapshot`: the sheet of the validation pages at `step`."""
        of = f" of {self.total_steps}" if self.total_steps else ""
        text = (f"🖍️ **{self.name}** is growing up: step {step}{of}." if step else
                f"🍼 **{self.name}** is born: random colors before any training.")
        self._send(text, _read(sheet))

    def finished(self, result: TrainResult) -> None:
        """`on_finish`: the final card, with the growing-up GIF and the loss curves."""
        self._send(final_card(self.name, result), _read(result.growing_up) + _read(result.curves))

    def close(self, timeout: float = 60.0) -> None:
        """Wait up to `timeout` seconds for the queued posts, then stop the thread."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._queue.put(None, timeout=max(0.1, deadline - time.monotonic()))
                break
            except queue.Full:
                if time.monotonic() >= deadline:
                    return  # daemon thread: it ends with the process
        self._thread.join(max(0.0, deadline - time.monotonic()))


# --- a retrain cycle --------------------------------------------------------------------


def cycle_message(report: CycleReport, rows: Sequence[LeaderboardRow]) -> str:
    """Who was promoted, by how much, and the new board."""
    judge = report.judge.get("heldout_accuracy")
    head = (f"🗳️ **Retrain cycle**: learned from {report.votes} votes "
            f"({report.pairs} pairs on {report.pages} pages)")
    if judge is not None:
        head += f"; the judge guesses {judge:.0%} of held-out votes right"
    lines = [head + "."]
    for m in report.members:
        if m.promoted:
            rate, pages = m.gate.get("judge_win_rate"), m.gate.get("pages")
            by = (f": preferred over v{m.parent_version} on {rate:.0%} of {pages} held-out "
                  "pages" if rate is not None and pages else "")
            lines.append(f"✅ **{m.member}** v{m.parent_version} → v{m.version} promoted{by}"
                         f" ({m.reason})")
        else:
            lines.append(f"⏸️ **{m.member}** stays v{m.parent_version}: {m.reason}")
    if rows:
        lines.append("**The board now**")
        for r in rows:
            lines.append(f"{r.rank}. {r.emoji} {r.member} {r.detail}")
    return "\n".join(lines)


async def post_cycle(url: str, report: CycleReport, db: Database, *, guild_id: int | None = None,
                     emojis: dict[str, str] | None = None,
                     timeout: float = TIMEOUT_S) -> bool:
    """Post a finished cycle with the new board and its chart. Never raises."""
    import asyncio

    try:
        from training.leaderboard import chart_png, leaderboard_rows

        rows = await leaderboard_rows(db, guild_id, emojis=emojis)
        files = [("leaderboard.png", await asyncio.to_thread(chart_png, rows))] if rows else []
        text = cycle_message(report, rows)
    except Exception:  # noqa: BLE001 - the board is a bonus; the result still goes out
        log.warning("training news: no board for the cycle post", exc_info=True)
        files, text = [], cycle_message(report, [])
    return await asyncio.to_thread(post, url, text, files, timeout=timeout)
