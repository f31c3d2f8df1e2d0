"""A real SMTP server on 127.0.0.1 for the tests (aiosmtpd), in the test's own event loop."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import msgspec
from aiosmtpd.smtp import SMTP, Envelope, Session

from coldchain.services.mail import SmtpSettings, SmtpTransport

__all__ = ["Received", "SmtpSink"]


class Received(msgspec.Struct, frozen=True, kw_only=True):
    recipients: list[str]
    message: email.message.EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def to(self) -> str:
        return str(self.message["To"])

    def part(self, subtype: str) -> str:
        """The ``text/<subtype>`` part's text."""
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content: str = body.get_content()
        return content


class SmtpSink:
    """Takes every message on a free port of 127.0.0.1 and keeps it; answers the DATA of the first messages with
    the replies of ``script`` instead (``"451 4.3.0 try again later"``), then accepts."""

    def __init__(self, script: Iterable[str] = ()) -> None:
        self._script = list(script)
        self.received: list[Received] = []
        self.refusals: list[str] = []
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._script:
            reply = self._script.pop(0)
            self.refusals.append(reply)
            return reply
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        self.received.append(Received(recipients=list(envelope.rcpt_tos), message=message))
        return "250 2.0.0 accepted"

    def settings(self, sender: str = "coldchain <alerts@coldchain.test>", timeout_s: float = 5.0) -> SmtpSettings:
        return SmtpSettings(host="127.0.0.1", port=self.port, tls="none", sender=sender, timeout_s=timeout_s)

    def transport(self) -> SmtpTransport:
        return SmtpTransport(self.settings())

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.recipients]

    async def __aenter__(self) -> SmtpSink:
        loop = asyncio.get_running_loop()

        def factory() -> Any:
            return SMTP(self, hostname="sink.test")

        self._server = await loop.create_server(factory, host="127.0.0.1", port=0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()
