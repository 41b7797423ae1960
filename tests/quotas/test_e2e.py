"""A quota through ``registry serve`` and skopeo: a push over the limit is refused, 80 % and
100 % are announced (event and log line), and after a delete pushes are accepted again."""

from __future__ import annotations

import time
from pathlib import Path

import requests

from distribution.quotas import guard
from tests.e2e.checks import ImageSet
from tests.e2e.harness import Skopeo
from tests.notifications.receiver import Receiver

CONFIG = """
version: 0.1
log: {{level: info}}
storage:
  filesystem: {{rootdirectory: {root}}}
  delete: {{enabled: true}}
  maintenance:
    uploadpurging: {{enabled: false}}
    usage: {{interval: 1s}}
    quotas:
      - {{repositories: "team-a/**", limit: 2MiB}}
http:
  secret: quota-secret
notifications:
  endpoints:
    - {{name: hook, url: "{hook}", timeout: 5s, threshold: 3, backoff: 1s}}
"""

#: Seconds a change takes to count: the journal's flush and a refresh (1 s each here) and the
#: workers' re-read of the summary (5 s), with room for a loaded machine.
WINDOW = 60.0


def test_a_push_over_the_quota_is_refused_until_a_delete(
    tmp_path: Path, start_registry, skopeo: Skopeo, image_set: ImageSet, receiver: Receiver
) -> None:
    registry = start_registry(CONFIG.format(root=tmp_path / "root", hook=receiver.url))
    netloc = registry.url.split("//", 1)[1]

    def ref(name: str) -> str:
        return f"docker://{netloc}/{name}"

    # under the quota (nothing counted yet): the ~3 MiB image goes in
    skopeo.copy(image_set.oci("image"), ref("team-a/app:v1"))
    _wait(lambda: _quota(registry.url)["over"], "the quota to be used up")
    time.sleep(guard.REFRESH + 0.5)  # every worker has read the summary that says so

    # over it: refused with 403 DENIED, usage and limit in the message
    refused = skopeo.run(
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        "--all",
        image_set.oci("index"),
        ref("team-a/app:v2"),
        check=False,
    )
    message = refused.stderr.decode()
    assert refused.returncode != 0
    assert "denied" in message and "quota exceeded: team-a/** uses 3." in message, message
    assert "of its 2.0 MiB limit" in message, message
    # another namespace is not concerned
    skopeo.copy(image_set.oci("index"), ref("team-b/app:v1"), "--all")

    # announced once each: 80 % and 100 %, as events and log lines
    events = receiver.wait_for(lambda got: len(_quota_events(got)) >= 2)
    quota_events = _quota_events(events)
    assert [e["target"]["threshold"] for e in quota_events] == [80, 100]
    assert quota_events[0]["target"]["repositories"] == "team-a/**"
    assert quota_events[0]["target"]["limit"] == 2 << 20
    assert "quota: team-a/** crossed 100 % of its limit" in registry.log

    # a delete brings it under: the same push is then accepted
    skopeo.delete(ref("team-a/app:v1"))
    _wait(lambda: not _quota(registry.url)["over"], "the quota to be freed")
    deadline = time.monotonic() + WINDOW
    while True:
        result = skopeo.run(
            "copy",
            "--dest-tls-verify=false",
            "--preserve-digests",
            "--all",
            image_set.oci("index"),
            ref("team-a/app:v2"),
            check=False,
        )
        if result.returncode == 0:
            break
        assert time.monotonic() < deadline, result.stderr.decode()
        time.sleep(1)
    assert skopeo.list_tags(ref("team-a/app")) == ["v2"]
    assert "quota: team-a/** is back under its limit" in registry.log
    assert "Traceback" not in registry.log


def _quota(url: str) -> dict:
    response = requests.get(f"{url}/v2/_usage", timeout=10)
    if response.status_code != 200:
        return {"over": None}
    (quota,) = response.json()["quotas"]
    return quota


def _quota_events(events: list[dict]) -> list[dict]:
    return [event for event in events if event["action"] == "quota"]


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WINDOW
    while not condition():
        assert time.monotonic() < deadline, f"waited {WINDOW} s for {what}"
        time.sleep(0.5)
