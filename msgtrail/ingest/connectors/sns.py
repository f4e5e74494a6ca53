"""Amazon SNS's HTTP(S) deliveries: the message authenticity check (signature versions
1 and 2 over the canonical string) and the subscription handshake. The signing
certificate is fetched only from an SNS host, and trusted only in its validity period,
issued for SNS (`sns.amazonaws.com`, or the regional host it came from) and chaining
to a trusted root (the system's CA bundle, or MSGTRAIL_SNS_CA_BUNDLE)."""

from __future__ import annotations

import base64
import binascii
import re
import ssl
import threading
import warnings
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cachetools import LRUCache
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import AuthorityInformationAccessOID
from cryptography.x509.verification import DNSName, PolicyBuilder, Store, VerificationError

from msgtrail.clock import exact
from msgtrail.errors import BadRequest, Unauthorized, Unavailable
from msgtrail.ingest.connectors.base import Context

# The fields each message type signs, in the order SNS signs them.
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token",
                                 "TopicArn", "Type"),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}

# Verified signing keys by certificate URL, each until its certificate expires; bounded,
# since the URLs come from requests (only from an SNS host, but still not ours).
_keys: LRUCache[str, tuple[rsa.RSAPublicKey, float]] = LRUCache(maxsize=64)
_keys_lock = threading.Lock()
# The names an SNS signing certificate is issued for (its subject alternative names).
SNS_NAME = "sns.amazonaws.com"
_REGIONAL = re.compile(r"sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?")


def canonical(doc: dict[str, Any]) -> bytes:
    """The string SNS signs: name and value lines of the signed fields present."""
    kind = doc.get("Type")
    if kind not in _SIGNED:
        raise BadRequest(f"Type: {kind!r} is not an SNS message type")
    lines = []
    for name in _SIGNED[kind]:
        if name in doc and doc[name] is not None:
            lines += [name, str(doc[name])]
    return ("\n".join(lines) + "\n").encode()


def check_host(url: object, ctx: Context, what: str) -> str:
    """The URL, if its scheme and host are an SNS endpoint's; anything else is refused,
    so that a forged message cannot make msgtrail trust or call a host of its choice."""
    if not isinstance(url, str):
        raise Unauthorized(f"{what}: missing")
    parts = urlsplit(url)
    if not re.fullmatch(ctx.sns_host_pattern, f"{parts.scheme}://{parts.netloc}"):
        raise Unauthorized(f"{what}: {parts.scheme}://{parts.netloc} is not an SNS host")
    return url


_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.S)


@lru_cache(maxsize=4)
def _roots(bundle: str) -> Store:
    """The trusted roots in a PEM bundle (the system's by default), read once. A root
    that cryptography cannot parse is left out rather than failing them all (the
    system bundle holds old roots that newer releases refuse)."""
    try:
        data = Path(bundle).read_bytes()
    except OSError as exc:
        raise Unavailable(f"cannot read the CA bundle {bundle} ({exc})") from None
    roots = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        for block in _PEM.findall(data):
            try:
                roots.append(x509.load_pem_x509_certificate(block))
            except ValueError:
                continue
    if not roots:
        raise Unavailable(f"the CA bundle {bundle} holds no certificate")
    return Store(roots)


def _issuer(leaf: x509.Certificate, ctx: Context) -> list[x509.Certificate]:
    """The leaf's issuer from its Authority Information Access, where the certificate
    came without it, and only from the CA's own host (ctx.sns_issuer_pattern)."""
    try:
        access = leaf.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    except x509.ExtensionNotFound:
        return []
    for item in access.value:
        if item.access_method != AuthorityInformationAccessOID.CA_ISSUERS:
            continue
        url = str(item.access_location.value)
        parts = urlsplit(url)
        if not re.fullmatch(ctx.sns_issuer_pattern, f"{parts.scheme}://{parts.netloc}"):
            continue
        data = ctx.fetch(url)
        try:
            return (x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data
                    else [x509.load_der_x509_certificate(data)])
        except ValueError:
            return []
    return []


def _trusted(leaf: x509.Certificate, intermediates: list[x509.Certificate], url: str,
             ctx: Context) -> None:
    """Raise Unauthorized unless the certificate is in its validity period, issued for
    SNS, and chains to a trusted root."""
    at = datetime.fromtimestamp(exact(), UTC)
    if not leaf.not_valid_before_utc <= at <= leaf.not_valid_after_utc:
        raise Unauthorized(f"SNS signing certificate is not valid now (valid "
                           f"{leaf.not_valid_before_utc:%Y-%m-%d} to "
                           f"{leaf.not_valid_after_utc:%Y-%m-%d})")
    host = urlsplit(url).hostname or ""
    names = [SNS_NAME] + ([host] if _REGIONAL.fullmatch(host) and host != SNS_NAME else [])
    roots = _roots(ctx.sns_ca_bundle or ssl.get_default_verify_paths().cafile
                   or "/etc/ssl/certs/ca-certificates.crt")
    builder = PolicyBuilder().store(roots).time(at)
    if not intermediates:
        intermediates = _issuer(leaf, ctx)
    problem = "no SNS name"
    for name in names:
        try:
            builder.build_server_verifier(DNSName(name)).verify(leaf, intermediates)
            return
        except VerificationError as exc:
            problem = str(exc)
    raise Unauthorized(f"SNS signing certificate is not trusted ({problem})")


def _certificate_key(url: str, ctx: Context) -> rsa.RSAPublicKey:
    with _keys_lock:
        cached = _keys.get(url)
    if cached is not None and cached[1] > exact():
        return cached[0]
    try:
        leaf, *intermediates = x509.load_pem_x509_certificates(ctx.fetch(url))
    except ValueError:
        raise Unauthorized("SigningCertURL does not hold a PEM certificate") from None
    key = leaf.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Unauthorized("SNS signing certificate is not an RSA key")
    _trusted(leaf, intermediates, url, ctx)
    with _keys_lock:
        _keys[url] = (key, leaf.not_valid_after_utc.timestamp())
    return key


def verify(doc: dict[str, Any], ctx: Context) -> None:
    """Raise Unauthorized unless SNS signed this message."""
    algorithm = _HASHES.get(str(doc.get("SignatureVersion")))
    if algorithm is None:
        raise Unauthorized("SignatureVersion: must be 1 or 2")
    url = check_host(doc.get("SigningCertURL"), ctx, "SigningCertURL")
    try:
        signature = base64.b64decode(str(doc.get("Signature") or ""), validate=True)
        _certificate_key(url, ctx).verify(signature, canonical(doc), padding.PKCS1v15(),
                                          algorithm())
    except (InvalidSignature, binascii.Error):
        raise Unauthorized("SNS signature does not verify") from None


def confirm(doc: dict[str, Any], ctx: Context) -> None:
    """Accept a subscription: GET its SubscribeURL (from an SNS host only)."""
    ctx.fetch(check_host(doc.get("SubscribeURL"), ctx, "SubscribeURL"))
