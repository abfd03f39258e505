from services.platform.wording import plural, plural_form, sentence


def test_one_is_singular_and_others_are_plural():
    assert plural(1, "mailbox") == "1 mailbox"
    assert plural(0, "mailbox") == "0 mailboxes"
    assert plural(10000, "mailbox") == "10,000 mailboxes"
    assert plural(2, "invitation") == "2 invitations"
    assert plural(3, "policy") == "3 policies"
    assert plural(3, "day") == "3 days"
    assert plural(2, "person", "people") == "2 people"
    assert plural(1, "calendar", with_count=False) == "calendar"
    assert plural(5, "calendar", with_count=False) == "calendars"


def test_regular_plural_forms():
    assert [plural_form(w) for w in ("batch", "address", "run", "key")] == ["batches", "addresses", "runs", "keys"]


def test_templates_can_use_the_filter(app):
    with app.test_request_context():
        rendered = app.jinja_env.from_string('{{ n|plural("mailbox") }} · {{ m|plural("mailbox") }}').render(n=1, m=4)
    assert rendered == "1 mailbox · 4 mailboxes"


def test_a_sentence_gets_one_full_stop_even_after_a_name_that_has_one():
    assert sentence("You no longer act on behalf of Acme") == "You no longer act on behalf of Acme."
    assert sentence("You no longer act on behalf of Globex Inc.") == "You no longer act on behalf of Globex Inc."
    assert sentence("Invited “Dana Jr.”") == "Invited “Dana Jr.”"
    assert sentence("Really?") == "Really?" and sentence("Done  ") == "Done."
    assert sentence("Sent to (it@acme.example)") == "Sent to (it@acme.example)."
