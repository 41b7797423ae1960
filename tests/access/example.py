"""The issue's example rules (also the README's), shared by the access tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import bcrypt

#: The example's users; each one's password is ``<user>-pw``.
USERS = ("root", "alice", "bob", "ci", "carol")

#: The rules as a rules file holds them (the section's keys at the top level).
RULES = """\
groups:
  team-a: [alice, bob]
repositories:
  "team-a/**":
    - {users: [alice, ci], actions: [pull, push, delete]}
    - {groups: [team-a], actions: [pull]}
  "public/**":
    - {anonymous: true, actions: [pull]}
    - {users: ["*"], actions: [pull, push]}
default:
  - {users: ["*"], actions: [pull]}
admins: [root]
immutable:
  - {repositories: "**", tags: "v[0-9]*"}
"""


def section(rules: str = RULES) -> str:
    """``rules`` as the ``access:`` section of a config file."""
    return "access:\n" + textwrap.indent(rules, "  ")


def write_htpasswd(path: Path, users: tuple[str, ...] = USERS) -> Path:
    """An htpasswd file where each user's password is ``<user>-pw`` (cheap bcrypt cost)."""
    path.write_bytes(
        b"".join(
            f"{user}:".encode() + bcrypt.hashpw(f"{user}-pw".encode(), bcrypt.gensalt(4)) + b"\n"
            for user in users
        )
    )
    return path
