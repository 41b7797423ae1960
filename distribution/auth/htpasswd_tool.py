"""The ``htpasswd`` command: Apache's flags, bcrypt hashes only.

The deployment guide makes its password file with ``htpasswd -Bbn user password``; the image
ships this command under that name (and ``registry htpasswd`` runs it anywhere). Flags, messages,
output and exit statuses are Apache's (``htpasswd`` of httpd 2.4), with one difference: the
registry, like Go's, accepts bcrypt entries only, so bcrypt is the default and the flags that
make other hashes (``-m -2 -5 -d -s -p``) are refused instead of writing an entry that could
never log in. Passwords past bcrypt's 72 bytes are cut with a warning (Apache cuts silently).
"""

from __future__ import annotations

import getopt
import getpass
import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

import bcrypt

from distribution.auth.htpasswd import BCRYPT, BCRYPT_MAX_PASSWORD

#: Apache's exit statuses.
OK, FILE_ERROR, SYNTAX, MISMATCH, INTERRUPTED, OVERFLOW, BAD_USER, INVALID = range(8)
#: Apache's bcrypt cost: default and range (``-C``).
DEFAULT_COST, MIN_COST, MAX_COST = 5, 4, 17
#: Apache's limit on a user name or password (its line buffer less the terminator).
MAX_FIELD = 255

USAGE = f"""\
Usage:
\thtpasswd [-ciBDv] [-C cost] passwordfile username
\thtpasswd -b[cBDv] [-C cost] passwordfile username password

\thtpasswd -n[iB] [-C cost] username
\thtpasswd -nb[B] [-C cost] username password
 -c  Create a new file.
 -n  Don't update file; display results on stdout.
 -b  Use the password from the command line rather than prompting for it.
 -i  Read password from stdin without verification (for script usage).
 -B  Force bcrypt hashing of the password (the default here, and the only hash
     the registry accepts).
 -C  Set the computing time used for the bcrypt algorithm
     (higher is more secure but slower, default: {DEFAULT_COST}, valid: {MIN_COST} to {MAX_COST}).
 -D  Delete the specified user.
 -v  Verify password for the specified user.
Apache's -m, -2, -5, -d, -s and -p (MD5, SHA, crypt and plain text) are refused:
the registry ignores such entries.
"""

_REFUSED = {"-m": "MD5", "-2": "SHA-256", "-5": "SHA-512", "-d": "crypt", "-s": "SHA-1"}
_REFUSED["-p"] = "plain text"
_REFUSED["-r"] = "SHA-256/SHA-512 rounds"


class Exit(Exception):
    """Stop with Apache's exit ``status`` after printing ``message`` (if any) on stderr."""

    def __init__(self, status: int, message: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Request:
    """What the command line asks for."""

    mode: str  # "update" (the default), "create", "print", "delete" or "verify"
    user: str
    file: str | None
    password: str | None  # from -b, else read later
    stdin: bool  # -i
    cost: int


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return run(parse(args))
    except Exit as stop:
        if stop.message:
            print(stop.message, file=sys.stderr)
        return stop.status
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return INTERRUPTED


def parse(args: list[str]) -> Request:
    """Apache's getopt rules: flags first (combinable, ``-C`` takes a value), then operands."""
    try:
        options, operands = getopt.getopt(args, "cnBbDiC:vmspd25r:")
    except getopt.GetoptError as err:
        problem = "option requires an argument" if "requires" in err.msg else "illegal option"
        raise Exit(SYNTAX, f"htpasswd: {problem} -- {err.opt}\n{USAGE}") from None
    modes = {"-c": "create", "-n": "print", "-D": "delete", "-v": "verify"}
    chosen: set[str] = set()
    from_args = from_stdin = False
    cost = DEFAULT_COST
    for flag, value in options:
        if flag in _REFUSED:
            raise Exit(
                SYNTAX,
                f"htpasswd: {flag} makes {_REFUSED[flag]} entries, which the registry refuses; "
                "only bcrypt (-B, the default here) is accepted",
            )
        if flag in modes:
            chosen.add(modes[flag])
        elif flag == "-b":
            from_args = True
        elif flag == "-i":
            from_stdin = True
        elif flag == "-C":
            cost = _cost(value)
    if len(chosen) > 1:
        raise Exit(SYNTAX, "htpasswd: only one of -c -n -v -D may be specified")
    if from_args and from_stdin:
        raise Exit(SYNTAX, "htpasswd: only one of -b and -i may be specified")
    mode = chosen.pop() if chosen else "update"
    expected = (1 if mode == "print" else 2) + from_args
    if len(operands) != expected:
        raise Exit(SYNTAX, USAGE.rstrip("\n"))
    file = None if mode == "print" else operands.pop(0)
    user = operands[0]
    _check_user(user)
    password = operands[1] if from_args else None
    if password is not None and len(password.encode()) > MAX_FIELD:
        raise Exit(OVERFLOW, f"htpasswd: password too long (> {MAX_FIELD})")
    return Request(mode, user, file, password, from_stdin, cost)


def run(request: Request) -> int:
    if request.mode == "print":
        sys.stdout.write(_record(request, _new_password(request)).decode() + "\n")
        return OK
    assert request.file is not None
    lines = _read_existing(request.file, request.mode)
    if request.mode == "verify":
        return _verify(request, lines)
    record = b"" if request.mode == "delete" else _record(request, _new_password(request))
    kept: list[bytes] = []
    found = False
    for line in lines:
        if _user_of(line, request.file) != request.user.encode():
            kept.append(line)
            continue
        found = True
        if request.mode == "delete":
            _say(f"Deleting password for user {request.user}")
        else:
            _say(f"Updating password for user {request.user}")
            kept.append(record)
    if not found:
        if request.mode == "delete":
            raise Exit(OK, f"User {request.user} not found")
        _say(f"Adding password for user {request.user}")
        kept.append(record)
    _write(request.file, b"".join(_terminated(line) for line in kept))
    return OK


def _cost(value: str) -> int:
    if not value.isdigit():
        raise Exit(SYNTAX, "htpasswd: argument to -C must be a positive integer")
    cost = int(value)
    if not MIN_COST <= cost <= MAX_COST:
        raise Exit(SYNTAX, f"htpasswd: bcrypt cost must be {MIN_COST} to {MAX_COST}, not {cost}")
    return cost


def _check_user(user: str) -> None:
    if len(user.encode()) > MAX_FIELD:
        raise Exit(OVERFLOW, f"htpasswd: username too long (> {MAX_FIELD})")
    if not user:
        raise Exit(BAD_USER, "htpasswd: username is empty")
    for char in user:
        if char == ":" or not char.isprintable():
            raise Exit(BAD_USER, f"htpasswd: username contains illegal character {char!r}")


def _new_password(request: Request) -> bytes:
    """The password from -b, stdin (-i) or asked twice on the terminal, as Apache reads it."""
    if request.password is not None:
        return request.password.encode()
    if request.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Re-type new password: ") != password:
            raise Exit(MISMATCH, "htpasswd: password verification error")
    if len(password.encode()) > MAX_FIELD:
        raise Exit(OVERFLOW, f"htpasswd: password too long (> {MAX_FIELD})")
    return password.encode()


def _record(request: Request, password: bytes) -> bytes:
    """``user:$2y$cost$...`` and a newline: Apache's bcrypt prefix (Go and we read 2a/2b/2y)."""
    if len(password) > BCRYPT_MAX_PASSWORD:
        _say(f"htpasswd: warning: bcrypt uses only the first {BCRYPT_MAX_PASSWORD} bytes")
    hashed = bcrypt.hashpw(password[:BCRYPT_MAX_PASSWORD], bcrypt.gensalt(request.cost))
    return request.user.encode() + b":$2y$" + hashed[4:] + b"\n"


def _read_existing(path: str, mode: str) -> list[bytes]:
    """The file's lines (empty for -c), after Apache's checks on its existence and access."""
    if not os.path.isfile(path):
        if mode != "create":
            raise Exit(FILE_ERROR, f"htpasswd: cannot modify file {path}; use '-c' to create it")
        return []
    wanted = os.R_OK if mode == "verify" else os.R_OK | os.W_OK
    if not os.access(path, wanted):
        access = "read" if mode == "verify" else "read/write"
        raise Exit(FILE_ERROR, f"htpasswd: cannot open file {path} for {access} access")
    if mode == "create":
        return []
    with open(path, "rb") as file:
        return file.read().splitlines(keepends=True)


def _user_of(line: bytes, path: str) -> bytes | None:
    """The user a line is for; None for a blank or comment line; a line with no colon stops."""
    text = line.strip()
    if not text or text.startswith(b"#"):
        return None
    user, colon, _ = text.partition(b":")
    if not colon:
        raise Exit(
            INVALID, f"htpasswd: The file {path} does not appear to be a valid htpasswd file."
        )
    return user


def _verify(request: Request, lines: list[bytes]) -> int:
    assert request.file is not None
    for line in lines:
        if _user_of(line, request.file) != request.user.encode():
            continue
        hashed = line.strip().partition(b":")[2].strip()
        if not hashed:
            raise Exit(INVALID, f"Empty hash for user {request.user}")
        if not BCRYPT.fullmatch(hashed):
            raise Exit(
                MISMATCH,
                f"htpasswd: user {request.user} has no bcrypt hash; the registry ignores "
                "the entry (make it again with -B)",
            )
        password = request.password
        if password is None:
            password = (
                sys.stdin.readline().rstrip("\r\n")
                if request.stdin
                else getpass.getpass("Enter password: ")
            )
        if not bcrypt.checkpw(password.encode()[:BCRYPT_MAX_PASSWORD], hashed):
            raise Exit(MISMATCH, "password verification failed")
        _say(f"Password for user {request.user} correct.")
        return OK
    raise Exit(BAD_USER, f"User {request.user} not found")


def _write(path: str, content: bytes) -> None:
    """Replace the file at once (a registry reading it never sees half of it), keeping its
    mode and owner; where it cannot be replaced (a bind-mounted file, a read-only directory),
    rewrite it in place as Apache does."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        existing = os.stat(path)
    except FileNotFoundError:
        existing = None
    try:
        fd, temporary = tempfile.mkstemp(prefix=".htpasswd.", dir=directory)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(content)
                file.flush()
                os.fsync(file.fileno())
            if existing is not None:
                os.chmod(temporary, existing.st_mode & 0o7777)
                if (existing.st_uid, existing.st_gid) != (os.getuid(), os.getgid()):
                    os.chown(temporary, existing.st_uid, existing.st_gid)
            else:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(temporary, 0o666 & ~umask)
            os.replace(temporary, path)
            return
        except OSError:
            os.unlink(temporary)
    try:
        with open(path, "wb") as file:
            file.write(content)
    except OSError as err:
        raise Exit(FILE_ERROR, f"htpasswd: unable to update file {path}: {err.strerror}") from None


def _terminated(line: bytes) -> bytes:
    return line if line.endswith(b"\n") else line + b"\n"


def _say(message: str) -> None:
    print(message, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
