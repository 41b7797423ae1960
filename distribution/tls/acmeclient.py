"""One certificate order by ACME v2 (RFC 8555), with certbot's ``acme`` package.

The account key lives in the cache folder; the account is registered (or found again: the
CA answers an existing key with its account) once per process. The only challenge answered is
TLS-ALPN-01: its certificate goes to the cache folder, where every worker and replica serving
the name finds it when the CA's validation connection comes. Every failure becomes an
:class:`OrderError` whose message fits on one line of the log.
"""

from __future__ import annotations

import datetime
import logging
import re
from typing import Any

import josepy as jose
import requests
from acme import challenges, client, errors, messages
from acme import crypto_util as acme_crypto
from cryptography.hazmat.primitives.asymmetric import ec

from distribution import __version__
from distribution.tls import challenge
from distribution.tls.certcache import CertCache

log = logging.getLogger(__name__)

#: How long an order may take, validation and issuance included.
ORDER_TIMEOUT = datetime.timedelta(minutes=3)
#: Seconds each request to the CA may take.
REQUEST_TIMEOUT = 30
#: How many times a request rejected for its nonce is sent again (RFC 8555 section 6.5:
#: ``badNonce`` is to be retried with a fresh nonce; Pebble rejects 5 % on purpose).
BAD_NONCE_TRIES = 10


class OrderError(Exception):
    """An order failed; the message says why, on one line."""


class ACMEClient:
    """Orders certificates from the CA at ``directory_url`` for the account in ``cache``."""

    def __init__(self, directory_url: str, email: str | None, cache: CertCache) -> None:
        self.directory_url = directory_url
        self.email = email
        self.cache = cache
        self._client: client.ClientV2 | None = None

    def obtain(self, name: str) -> bytes:
        """A new certificate for ``name``: its key and chain as PEM, key first."""
        try:
            return self._obtain(name)
        except OrderError:
            raise
        except Exception as err:  # every failure of the protocol, the network or the folder
            raise OrderError(describe(err, self.directory_url, self.cache.directory)) from None

    def _obtain(self, name: str) -> bytes:
        acme = self._account()
        key = ec.generate_private_key(ec.SECP256R1())
        key_pem = challenge.private_key_pem(key)
        order = acme.new_order(acme_crypto.make_csr(key_pem, [name]))
        deadline = datetime.datetime.now() + ORDER_TIMEOUT
        try:
            for authorization in order.authorizations:
                if authorization.body.status == messages.STATUS_PENDING:
                    self._answer(acme, name, authorization)
            order = acme.poll_and_finalize(order, deadline)
        except Exception:
            _abandon(acme, order)
            raise
        finally:
            self.cache.delete(f"{name}+token")
        return key_pem + order.fullchain_pem.encode()

    def _account(self) -> client.ClientV2:
        if self._client is not None:
            return self._client
        key = self.cache.account_key()
        if isinstance(key, ec.EllipticCurvePrivateKey):
            jwk, alg = jose.JWKEC(key=key), jose.ES256
        else:
            jwk, alg = jose.JWKRSA(key=key), jose.RS256
        network = _Network(
            key=jwk, alg=alg, user_agent=f"distribution-py/{__version__}", timeout=REQUEST_TIMEOUT
        )
        acme = client.ClientV2(client.ClientV2.get_directory(self.directory_url, network), network)
        registration = messages.NewRegistration.from_data(
            email=self.email, terms_of_service_agreed=True
        )
        try:
            acme.new_account(registration)
        except errors.ConflictError as existing:  # this key's account, registered before
            network.account = messages.RegistrationResource(
                uri=existing.location, body=messages.Registration()
            )
        self._client = acme
        return acme

    def _answer(
        self, acme: client.ClientV2, name: str, authorization: messages.AuthorizationResource
    ) -> None:
        for body in authorization.body.challenges:
            fields = body.chall.to_partial_json()
            if fields.get("type") == "tls-alpn-01":
                key_authorization = f"{fields['token']}.{_thumbprint(acme)}"
                self.cache.write(f"{name}+token", challenge.certificate(name, key_authorization))
                acme.answer_challenge(body, _TLSALPN01Response())
                return
        offered = ", ".join(
            str(body.chall.to_partial_json().get("type")) for body in authorization.body.challenges
        )
        raise OrderError(f"the CA offers no tls-alpn-01 challenge for {name} (only {offered})")


class _TLSALPN01Response(challenges.KeyAuthorizationChallengeResponse):
    """The answer to a TLS-ALPN-01 challenge: an empty object (RFC 8555 section 7.5.1)."""

    typ = "tls-alpn-01"


class _Network(client.ClientNetwork):
    """The ``acme`` package's network, retrying ``badNonce`` more than once."""

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(1, BAD_NONCE_TRIES + 1):
            try:
                return super().post(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_TRIES:
                    raise
                log.debug("ACME request rejected for its nonce, sending it again")
        raise AssertionError("unreachable")


def _thumbprint(acme: client.ClientV2) -> str:
    key = acme.net.key
    return jose.b64encode(key.public_key().thumbprint()).decode()


def _abandon(acme: client.ClientV2, order: messages.OrderResource) -> None:
    """Deactivate the order's authorisations still pending, so they count against no limit."""
    for authorization in order.authorizations:
        if authorization.body.status == messages.STATUS_PENDING:
            try:
                acme.deactivate_authorization(authorization)
            except Exception as err:  # best effort: the order has failed already
                log.debug("cannot deactivate %s: %s", authorization.uri, err)


def describe(err: BaseException, directory_url: str, cache: str) -> str:
    """``err`` on one line, saying what failed in a user's words."""
    if isinstance(err, errors.ValidationError):
        problems = []
        for authorization in err.failed_authzrs:
            for body in authorization.body.challenges:
                if body.error is not None:
                    problems.append(
                        f"the CA could not validate {authorization.body.identifier.value}: "
                        f"{_problem(body.error)}"
                    )
        return "; ".join(problems) or "the CA could not validate the name"
    if isinstance(err, messages.Error):
        return f"the CA refused: {_problem(err)}"
    if isinstance(err, errors.TimeoutError):
        return f"the CA did not finish the order within {ORDER_TIMEOUT.seconds}s"
    if isinstance(err, requests.RequestException):
        return f"cannot reach the ACME server at {directory_url}: {_reason(err)}"
    if isinstance(err, OSError) and str(err.filename or "").startswith(cache):
        return f"cannot use the cache folder: {err.strerror or err}: {err.filename}"
    return " ".join(f"{type(err).__name__}: {err}".split())


def _problem(error: messages.Error) -> str:
    detail = " ".join(str(error.detail or error.title or error.typ).split())
    return f"{error.code or error.typ}: {detail}" if error.code else detail


def _reason(err: requests.RequestException) -> str:
    """The innermost cause of a requests error, without urllib3's object reprs."""
    text = str(err)
    for pattern in (r"\[Errno -?\d+\] ([^'\")]+)", r"\[SSL: [A-Z_]+\] ([^'\"(]+)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    if isinstance(err, requests.Timeout):
        return "timed out"
    return " ".join(text.split())[:200]
