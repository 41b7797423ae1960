"""``log.hooks`` of type mail: Go's mail for each line of the chosen levels, to an SMTP server."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from distribution import cli, mailhook
from distribution.config import ConfigError, parse
from tests.observability.smtp_server import SMTPServer


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    yield server
    server.stop()


def hooks_config(addr: str, levels: str = "[error]", extra: str = "") -> str:
    return f"""
version: 0.1
storage: inmemory
log:
  fields: {{service: registry}}
  hooks:
    - type: mail
      levels: {levels}
      options:
        smtp: {{addr: '{addr}', username: mailuser, password: secret}}
        from: registry@example.com
        to: [ops@example.com, oncall@example.com]
{extra}
"""


def test_a_line_of_a_chosen_level_is_mailed_as_go_mails_it(smtp: SMTPServer) -> None:
    config = parse(hooks_config(smtp.addr), {})
    (handler,) = mailhook.handlers(config.log.hooks, config.log.fields)
    logger = logging.getLogger("distribution.mailhook-test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        logger.info("not mailed: info is not among the levels")
        logger.error("disk full", extra={"fields": {"path": "/v2/a"}})
        (mail,) = smtp.wait_for(1)
        time.sleep(0.2)
    finally:
        logger.removeHandler(handler)
    assert len(smtp.mails) == 1
    assert mail.sender == "registry@example.com"
    assert mail.recipients == ["ops@example.com", "oncall@example.com"]
    assert mail.login == "mailuser"
    assert mail.data.decode() == (
        "To:ops@example.com;oncall@example.com\r\nFrom: registry@example.com\r\n"
        "Subject: [error] 127.0.0.1: disk full\r\nContent-Type: text/plain\r\n\r\n"
        "\n\tdisk full\n\n\t\n\tpath: /v2/a\n\t\n\tservice: registry\n\t\n\t\r\n"
    )


def test_registry_serve_mails_its_errors(smtp: SMTPServer, start_registry, tmp_path: Path) -> None:
    """A storage failure (the root under a regular file) is logged at error and mailed."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    text = hooks_config(smtp.addr).replace(
        "storage: inmemory", f"storage: {{filesystem: {{rootdirectory: '{blocker}/root'}}}}"
    )
    registry = start_registry(text + "http: {secret: s}\n")
    response = requests.post(f"{registry.url}/v2/app/blobs/uploads/", timeout=10)
    assert response.status_code == 503
    mails = smtp.wait_for(1)
    subject = b"Subject: [error] 127.0.0.1: storage error handling POST /v2/app/blobs/uploads/"
    (mail,) = [mail for mail in mails if subject in mail.data]
    assert b"\n\tservice: registry\n\t" in mail.data


@pytest.mark.parametrize(
    ("old", "new", "key", "message"),
    [
        ("'127.0.0.1:25'", "mail.example.com", "log.hooks[0].options.smtp.addr", "host:port"),
        ("[ops@example.com, oncall@example.com]", "[]", "log.hooks[0].options.to", "recipient"),
        ("levels: [error]", "levels: [eror]", "log.hooks[0].levels", "unknown level 'eror'"),
    ],
)
def test_a_hook_that_could_never_send_stops_start_up(
    tmp_path: Path, old: str, new: str, key: str, message: str
) -> None:
    path = tmp_path / "config.yml"
    path.write_text(hooks_config("127.0.0.1:25").replace(old, new) + "http: {secret: s}\n")
    with pytest.raises(ConfigError) as info:
        cli.prepare(str(path))
    assert info.value.key == key and message in info.value.message


def test_an_unknown_hook_type_is_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    text = "version: 0.1\nstorage: inmemory\nlog:\n  hooks:\n    - {type: slack, levels: [error]}\n"
    config = parse(text, {})
    with caplog.at_level(logging.WARNING, logger="distribution.mailhook"):
        assert mailhook.handlers(config.log.hooks) == []
    assert caplog.messages == [
        "log.hooks[0].type: unknown hook type 'slack', ignored (Go ignores it too); only mail "
        "is known"
    ]


def test_a_disabled_hook_sends_nothing(smtp: SMTPServer) -> None:
    text = hooks_config(smtp.addr).replace("- type: mail", "- type: mail\n      disabled: true")
    assert mailhook.handlers(parse(text, {}).log.hooks) == []
