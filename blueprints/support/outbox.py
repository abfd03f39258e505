"""Support's Outbox: every message the console sent or tried to send, newest first, with Retry.

Without MAIL_SERVER this is where development mail is read (the message and its link in full);
messages meant for a mail server show their status only, as their link belongs to the recipient.
"""

from __future__ import annotations

import re

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user

from blueprints.security import keep_link_page_private
from blueprints.support import bp
from extensions import db
from models.outgoing_email import OutgoingEmail
from services.platform import mail, mail_delivery, tenancy
from services.platform.wording import sentence

_LINK = re.compile(r"(https?://[^\s<>\"']+)")


def body_parts(text: str | None) -> list[list[list[tuple[str, bool]]]]:
    """Split a message's text into paragraphs of lines of (piece, is_link), so that the page wraps it and
    renders its links as links."""
    if not text:
        return []
    return [
        [[(piece, index % 2 == 1) for index, piece in enumerate(_LINK.split(line)) if piece]
         for line in paragraph.split("\n")]
        for paragraph in text.strip().split("\n\n")
    ]


@bp.get("/outbox")
def outbox():
    page = mail.outbox_page(request.args.get("page", 1, type=int))
    response = make_response(render_template(
        "support/outbox.html", page=page, transport=mail_delivery.transport(),
        bodies={email.id: body_parts(mail.readable_body(email)) for email in page.rows},
        retryable={email.id for email in page.rows if mail.can_retry(email)},
    ))
    # The page may show working links (development outbox): never cached, never passed on as a referrer.
    keep_link_page_private(response)
    return response


@bp.post("/outbox/<int:email_id>/retry")
def retry_email(email_id: int):
    email = db.session.get(OutgoingEmail, email_id)
    if email is None:
        abort(404)
    if email.organization_id is not None:
        # Acting in an organization needs a recorded reason: without one this redirects to ask for it.
        tenancy.organization_or_404(email.organization_id)
    try:
        mail.retry(email, actor=current_user)
    except mail.MailError as exc:
        db.session.rollback()
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash(sentence(f"Sending the email to {email.to_address} again"), "info")
    return redirect(url_for("support.outbox", page=request.form.get("page", 1, type=int)))
