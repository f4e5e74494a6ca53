"""Email of history reports over SMTP (any server: plain, STARTTLS or TLS)."""

from __future__ import annotations

import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage

from msgtrail.settings import Settings


def report_email(settings: Settings, to: str, url: str, message_id: str, events: str,
                 rows: int, expires_at: float) -> EmailMessage:
    until = datetime.fromtimestamp(expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    mail = EmailMessage()
    mail["From"] = settings.smtp_sender
    mail["To"] = to
    mail["Subject"] = f"Your message history report is ready ({events}, {rows:,} rows)"
    mail.set_content(
        f"The history report of message {message_id} is ready: {rows:,} recipients "
        f"who were {events} the message.\n\nDownload it (CSV) until {until}:\n{url}\n")
    return mail


def send(settings: Settings, mail: EmailMessage) -> None:
    """Deliver one email; raises on any SMTP or connection failure."""
    if not settings.smtp_host:
        raise RuntimeError("no SMTP server configured (MSGTRAIL_SMTP_HOST)")
    context = ssl.create_default_context()
    if settings.smtp_security == "tls":
        client: smtplib.SMTP = smtplib.SMTP_SSL(settings.smtp_host, settings.smtp_port,
                                                timeout=settings.smtp_timeout, context=context)
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port,
                              timeout=settings.smtp_timeout)
    with client:
        if settings.smtp_security == "starttls":
            client.starttls(context=context)
        if settings.smtp_user:
            client.login(settings.smtp_user, settings.smtp_password or "")
        client.send_message(mail)
