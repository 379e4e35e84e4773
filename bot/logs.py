"""Keep secrets out of logs: a filter that masks the Discord token in every record.

discord.py never logs the token itself; this is the belt to its braces, for messages
and tracebacks (ours and any library's) that might carry it.
"""

from __future__ import annotations

import logging

MASK = "[discord token]"


class RedactToken(logging.Filter):
    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secret:
            return True
        message = record.getMessage()
        if self.secret in message:
            record.msg, record.args = message.replace(self.secret, MASK), None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if self.secret in text:
                # Keep the traceback, masked, as text.
                record.exc_text = text.replace(self.secret, MASK)
                record.exc_info = None
                record.msg = f"{record.msg}\n{record.exc_text}"
                record.exc_text = None
        return True


def redact_token_everywhere(secret: str) -> None:
    """Install the filter on every handler of the root logger (where records are
    written; a filter on a logger would miss its children's records)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO)
    for handler in root.handlers:
        if not any(isinstance(f, RedactToken) for f in handler.filters):
            handler.addFilter(RedactToken(secret))
