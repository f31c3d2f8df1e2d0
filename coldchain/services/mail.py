"""Sending email through the operator's SMTP server (aiosmtplib): one connection per message, TLS as configured.

What a server answers is sorted into three outcomes, the way mail servers mean them (RFC 5321 §4.2.1): a 2xx reply
to the message's data is *sent*; a 5xx reply (a permanent failure: no such mailbox, the message refused) is
*refused* and not tried again; anything else (a 4xx reply such as 451 "try again later", a refused or dropped
connection, a timeout) is *transient* and tried again later.

The :class:`MailTransport` protocol is what the delivery job needs; tests give it the real
:class:`SmtpTransport` pointed at an SMTP server on 127.0.0.1.
"""

from __future__ import annotations

import email.message
import email.policy
import email.utils
from typing import Literal, Protocol

import aiosmtplib
import msgspec

__all__ = ["MailOutcome", "MailTransport", "SmtpSettings", "SmtpTransport", "TlsMode"]

TlsMode = Literal["starttls", "tls", "none"]
_MAX_TEXT = 500
_WIRE = email.policy.SMTP.clone(max_line_length=998)
"""Lines end CRLF; a header is folded only past RFC 5322's hard limit, so a subject reads back as it was written
(folded at 78, Python's parser would give it a leading space)."""


class SmtpSettings(msgspec.Struct, frozen=True, kw_only=True):
    host: str
    port: int
    tls: TlsMode = "starttls"
    """``starttls``: connect in plain text and upgrade (port 587); ``tls``: TLS from the first byte (port 465);
    ``none``: never encrypt (a relay on the same host or a closed network only)."""
    username: str | None = None
    password: str | None = None
    sender: str
    """The From address, e.g. ``coldchain <alerts@example.org>``."""
    timeout_s: float = 30.0


class MailOutcome(msgspec.Struct, frozen=True, kw_only=True):
    result: Literal["sent", "transient", "refused"]
    reply_code: int | None
    """The server's reply code, when it answered."""
    reply: str | None
    """The server's words (the data reply, or the refusal), shortened."""
    error: str | None


class MailTransport(Protocol):
    async def send(self, message: email.message.EmailMessage) -> MailOutcome: ...


def _short(text: str) -> str:
    return text.strip()[:_MAX_TEXT]


class SmtpTransport:
    """:class:`MailTransport` over SMTP with aiosmtplib, one connection per message."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    async def send(self, message: email.message.EmailMessage) -> MailOutcome:
        s = self.settings
        _, sender = email.utils.parseaddr(str(message["From"]))
        recipients = [address for _, address in email.utils.getaddresses([str(v) for v in message.get_all("To", [])])]
        try:
            _, reply = await aiosmtplib.send(
                message.as_bytes(policy=_WIRE),
                sender=sender,
                recipients=recipients,
                hostname=s.host,
                port=s.port,
                username=s.username,
                password=s.password,
                use_tls=s.tls == "tls",
                start_tls=s.tls == "starttls",
                timeout=s.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refusal = exc.recipients[0]
            return _answered(refusal.code, f"recipient refused: {refusal.message}")
        except aiosmtplib.SMTPResponseException as exc:
            return _answered(exc.code, exc.message)
        except aiosmtplib.SMTPTimeoutError:
            return MailOutcome(
                result="transient", reply_code=None, reply=None, error=f"no answer within {s.timeout_s:g} s"
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return MailOutcome(result="transient", reply_code=None, reply=None, error=_short(text))
        return MailOutcome(result="sent", reply_code=250, reply=_short(reply), error=None)


def _answered(code: int, text: str) -> MailOutcome:
    permanent = 500 <= code < 600
    return MailOutcome(
        result="refused" if permanent else "transient",
        reply_code=code,
        reply=_short(text),
        error=_short(f"the server answered {code}: {text}"),
    )
