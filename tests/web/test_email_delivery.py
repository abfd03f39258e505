"""Email that arrives: invitations, password resets and setup links reach a real SMTP server on loopback.

A failure (a refused recipient, a closed port, a server that does not answer) is recorded with its
reason, shown next to the pending invitation, and a Retry sends the message once the server accepts it.
"""

from __future__ import annotations

import re
import socket

import pytest

from extensions import db
from models.audit import AuditEvent
from models.outgoing_email import OutgoingEmail
from services.platform import mail
from tests.helpers import put_signed_in
from tests.web.wizard_helpers import ready_wizard, wizard_url

LINK_IN_PAGE = r'<input id="invitation-link"[^>]*value="([^"]+)"'


def _only_email() -> OutgoingEmail:
    db.session.expire_all()
    return db.session.scalars(db.select(OutgoingEmail)).one()


def _invite(client, organization, email="new.admin@globex.example") -> str:
    """Invite email to organization through the admins page; return the link the page shows."""
    response = client.post(f"/orgs/{organization.id}/admins", data={"email": email}, follow_redirects=True)
    assert response.status_code == 200
    return re.search(LINK_IN_PAGE, response.get_data(as_text=True)).group(1)


@pytest.fixture
def admin(login_as, make_org_admin, make_organization):
    return login_as(make_org_admin(make_organization(name="Globex Corporation"), name="Olivia Owner"))


def test_invitation_email_arrives_with_the_recipient_subject_and_link(client, admin, mail_over_smtp, deliver_mail):
    link = _invite(client, admin.organization)
    assert _only_email().status == "queued"  # nothing is sent inside the request

    assert deliver_mail() == 1
    [message] = mail_over_smtp.wait_for(1)
    assert message.rcpt_tos == ("new.admin@globex.example",) and message.to == "new.admin@globex.example"
    assert message.subject == "You are invited to administer Globex Corporation in Enterprise Connect Console"
    assert message.sender == "Console <console@vendor.example>"
    assert link in message.body and "Olivia Owner invited you" in message.body
    email = _only_email()
    assert (email.status, email.transport, email.attempts, email.purpose) == ("sent", "smtp", 1, "invitation")
    assert email.body_encrypted is None, "once the mail server has it, the link is not kept"
    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    assert 'data-status="sent"' in page


def test_the_stored_message_is_encrypted_until_it_is_sent(client, admin, mail_over_smtp, deliver_mail):
    link = _invite(client, admin.organization)
    email = _only_email()
    token = link.rsplit("/", 1)[1]
    assert token not in email.body_encrypted and "invitations" not in email.body_encrypted


def test_password_reset_email_arrives_and_its_link_works(app, client, admin, make_org_admin, mail_over_smtp,
                                                         deliver_mail):
    colleague = make_org_admin(admin.organization, email="sam@globex.example")
    response = client.post(f"/orgs/{admin.organization_id}/admins/{colleague.id}/email-reset-link",
                           data={"confirm": "yes"}, follow_redirects=True)
    assert "A link to choose a new password is on its way to sam@globex.example." in response.get_data(as_text=True)

    deliver_mail()
    [message] = mail_over_smtp.wait_for(1)
    assert message.rcpt_tos == ("sam@globex.example",)
    assert message.subject == "Choose a new password for Enterprise Connect Console"
    url = re.search(r"(http\S+/reset-password/\S+)", message.body).group(1)
    assert url.startswith(app.config["PUBLIC_BASE_URL"])
    assert "Choose" in app.test_client().get(url.split("127.0.0.1:5000", 1)[1]).get_data(as_text=True)
    assert url not in response.get_data(as_text=True), "the sender never sees the reset link"
    assert db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "password_reset.emailed")) is not None


def test_setup_link_email_arrives_at_the_colleague(app, client, admin, mail_over_smtp, deliver_mail):
    wizard = ready_wizard(admin.organization, admin)
    response = client.post(wizard_url(wizard, "setup-links"), data={"label": "Sam", "email": "Sam@Globex.example"})
    page = response.get_data(as_text=True)
    shown = re.search(r'value="(http[^"]+/setup/[^"]+)" data-testid="setup-link-url"', page).group(1)
    assert "It is on its way to <strong>sam@globex.example</strong> by email" in page

    deliver_mail()
    [message] = mail_over_smtp.wait_for(1)
    assert message.rcpt_tos == ("sam@globex.example",)
    assert message.subject == "Connect the calendars of Globex Corporation: your approval is needed"
    assert shown in message.body and "Olivia Owner asks you" in message.body


def test_a_setup_link_without_an_address_sends_nothing(client, admin, deliver_mail):
    wizard = ready_wizard(admin.organization, admin)
    assert client.post(wizard_url(wizard, "setup-links"), data={"label": "Sam"}).status_code == 200
    assert db.session.scalars(db.select(OutgoingEmail)).all() == [] and deliver_mail() == 0


def test_a_refused_recipient_is_shown_on_the_admins_page_and_retry_sends_it(client, admin, mail_over_smtp,
                                                                            deliver_mail):
    mail_over_smtp.refuse_recipients = True
    link = _invite(client, admin.organization)
    deliver_mail()
    email = _only_email()
    assert email.status == "failed" and email.attempts == 1
    assert "refused the recipient" in email.failure_reason and "550 5.1.1 No such user here" in email.failure_reason
    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    row = page.split('data-testid="invitation-email"', 1)[1].split("</div>", 1)[0]
    assert "not sent" in row and "550 5.1.1 No such user here" in row and "Retry" in row

    mail_over_smtp.refuse_recipients = False
    retried = client.post(f"/orgs/{admin.organization_id}/emails/{email.id}/retry", follow_redirects=True)
    assert "Sending the email to new.admin@globex.example again." in retried.get_data(as_text=True)
    assert deliver_mail() == 1
    [message] = mail_over_smtp.wait_for(1)
    assert link in message.body
    email = _only_email()
    assert (email.status, email.attempts, email.failure_reason) == ("sent", 2, None)


def test_a_closed_port_fails_with_its_reason_and_retry_succeeds_once_the_server_answers(
    app, client, admin, mail_over_smtp, closed_smtp_port, deliver_mail
):
    app.config["MAIL_PORT"] = closed_smtp_port
    _invite(client, admin.organization)
    deliver_mail()
    email = _only_email()
    assert email.status == "failed"
    assert email.failure_reason == f"Could not connect to the mail server at 127.0.0.1:{closed_smtp_port}: the connection was refused."

    app.config["MAIL_PORT"] = mail_over_smtp.port
    client.post(f"/orgs/{admin.organization_id}/emails/{email.id}/retry")
    deliver_mail()
    assert mail_over_smtp.wait_for(1)[0].rcpt_tos == ("new.admin@globex.example",)
    assert _only_email().status == "sent"


def test_a_server_that_never_answers_times_out(app, client, admin, mail_over_smtp, deliver_mail):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # connections are queued by the kernel, but nobody ever greets them
        app.config.update(MAIL_PORT=silent.getsockname()[1], MAIL_TIMEOUT=0.3)
        _invite(client, admin.organization)
        deliver_mail()
    email = _only_email()
    assert email.status == "failed" and "did not answer within 0.3 seconds" in email.failure_reason


def test_retry_is_refused_for_a_sent_message_and_a_withdrawn_invitation(client, admin, mail_over_smtp, deliver_mail):
    _invite(client, admin.organization)
    deliver_mail()
    email = _only_email()
    response = client.post(f"/orgs/{admin.organization_id}/emails/{email.id}/retry", follow_redirects=True)
    assert "This message was already sent." in response.get_data(as_text=True) and deliver_mail() == 0

    mail_over_smtp.refuse_recipients = True
    _invite(client, admin.organization, "other@globex.example")
    deliver_mail()
    failed = db.session.scalars(db.select(OutgoingEmail).where(OutgoingEmail.status == "failed")).one()
    client.post(f"/orgs/{admin.organization_id}/invitations/{failed.invitation_id}/revoke", data={"confirm": "yes"})
    response = client.post(f"/orgs/{admin.organization_id}/emails/{failed.id}/retry", follow_redirects=True)
    assert "The invitation is revoked: its link no longer works." in response.get_data(as_text=True)
    assert deliver_mail() == 0


def test_nothing_is_sent_for_a_transaction_that_rolls_back(app, admin, deliver_mail):
    mail.queue(to="ghost@globex.example", subject="Never", template="invitation", purpose="invitation",
               context={"organization": "Globex", "url": "http://x/y", "inviter": None, "expires_at": None})
    db.session.rollback()
    db.session.commit()
    assert deliver_mail() == 0


def test_another_organizations_email_cannot_be_retried(client, admin, make_organization):
    other = make_organization()
    email = OutgoingEmail(organization_id=other.id, purpose="invitation", to_address="x@other.example",
                          subject="x", status="failed", failure_reason="x", attempts=1)
    db.session.add(email)
    db.session.commit()
    assert client.post(f"/orgs/{admin.organization_id}/emails/{email.id}/retry").status_code == 404
    assert client.post(f"/orgs/{other.id}/emails/{email.id}/retry").status_code == 404


def test_retry_and_reset_buttons_need_the_csrf_token(csrf_client, make_org_admin, deliver_mail):
    admin = make_org_admin()
    with csrf_client.session_transaction() as session:
        put_signed_in(session, admin)
    email = OutgoingEmail(organization_id=admin.organization_id, purpose="invitation", to_address="x@globex.example",
                          subject="x", status="failed", failure_reason="x", attempts=1, body_encrypted="x")
    db.session.add(email)
    db.session.commit()
    for path in (f"/orgs/{admin.organization_id}/emails/{email.id}/retry", f"/support/outbox/{email.id}/retry",
                 f"/orgs/{admin.organization_id}/admins/{admin.id}/email-reset-link"):
        assert csrf_client.post(path, data={"confirm": "yes"}).status_code == 400, path
    db.session.expire_all()
    assert db.session.get(OutgoingEmail, email.id).status == "failed" and deliver_mail() == 0


def test_a_message_the_queue_never_took_stays_queued_and_can_be_retried_later(
    client, admin, mail_over_smtp, deliver_mail, monkeypatch, caplog
):
    from datetime import timedelta

    from jobs import mail as mail_jobs
    from models.base import utcnow

    def queue_down(email_id):
        raise ConnectionError("queue down")

    with monkeypatch.context() as patched:
        patched.setattr(mail_jobs, "send_email", queue_down)
        link = _invite(client, admin.organization)  # the invitation is made all the same
    assert "Could not enqueue email" in caplog.text
    email = _only_email()
    assert email.status == "queued"
    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    assert "Retry" not in page.split('data-testid="invitation-email"', 1)[1].split("</div>", 1)[0]

    email.queued_at = utcnow() - timedelta(minutes=6)
    db.session.commit()
    page = client.get(f"/orgs/{admin.organization_id}/admins").get_data(as_text=True)
    assert "Retry" in page.split('data-testid="invitation-email"', 1)[1].split("</div>", 1)[0]
    client.post(f"/orgs/{admin.organization_id}/emails/{email.id}/retry")
    assert deliver_mail() == 1 and link in mail_over_smtp.wait_for(1)[0].body


def test_mail_settings_come_from_the_environment(monkeypatch, tmp_path):
    from config import ConfigurationError, build_config

    monkeypatch.setenv("MAIL_SERVER", "smtp.vendor.example")
    monkeypatch.setenv("MAIL_USE_TLS", "true")
    monkeypatch.setenv("MAIL_USERNAME", "console")
    config = build_config(str(tmp_path), "testing")
    assert (config["MAIL_SERVER"], config["MAIL_PORT"], config["MAIL_USE_TLS"], config["MAIL_USERNAME"]) == (
        "smtp.vendor.example", 587, True, "console")
    assert config["MAIL_FILE_PATH"] == str(tmp_path / "outbox") and config["MAIL_TIMEOUT"] == 10.0
    monkeypatch.setenv("MAIL_USE_SSL", "yes")
    with pytest.raises(ConfigurationError, match="MAIL_USE_TLS .* or MAIL_USE_SSL"):
        build_config(str(tmp_path), "testing")
    monkeypatch.setenv("MAIL_USE_SSL", "maybe")
    with pytest.raises(ConfigurationError, match="MAIL_USE_SSL must be true or false"):
        build_config(str(tmp_path), "testing")
