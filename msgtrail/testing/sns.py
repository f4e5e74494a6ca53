"""A loopback stand-in for Amazon SNS's certificate host, with certificates of a test
CA (trustme) that chain as SNS's do, and the variants a receiver must refuse."""

from __future__ import annotations

import base64
import datetime as dt
import shutil
import tempfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID


def _leaf(key: rsa.RSAPrivateKey, name: str, when: tuple[dt.datetime, dt.datetime],
          issuer: x509.Certificate, issuer_key: Any, issuer_url: str | None) -> x509.Certificate:
    """A server certificate for `name` as a public CA issues one, optionally naming
    where its issuer's certificate is (Authority Information Access)."""
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(issuer.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(when[0]).not_valid_after(when[1])
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_encipherment=True, content_commitment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False,
            crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                       critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False))
    if issuer_url:
        builder = builder.add_extension(x509.AuthorityInformationAccess([
            x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS,
                                   x509.UniformResourceIdentifier(issuer_url))]),
            critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _self_signed(key: rsa.RSAPrivateKey, name: str,
                 when: tuple[dt.datetime, dt.datetime]) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(when[0]).not_valid_after(when[1])
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)



class SnsEndpoint:
    """A loopback stand-in for SNS's certificate host: serves signing certificates and
    answers SubscribeURLs, recording what was asked. The certificates chain to a test
    root (`ca_file`, the service's MSGTRAIL_SNS_CA_BUNDLE) through an intermediate, as
    SNS's chain to a public root; every one carries the same signing key, so a variant
    only changes what is served: `good` (the leaf and the intermediate), `expired`
    (valid in 2015-2016), `foreign` (issued for another name), `selfsigned` (no chain
    to the root), `aia` (the leaf alone, its issuer at the URL its Authority
    Information Access names, as `issuer.der` here)."""

    VARIANTS = ("good", "expired", "foreign", "selfsigned", "aia")

    def __init__(self) -> None:
        import trustme  # a test dependency: only the tests serve certificates

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root = trustme.CA()
        intermediate = root.create_child_ca()
        self.folder = Path(tempfile.mkdtemp(prefix="msgtrail-sns-"))
        self.ca_file = str(self.folder / "roots.pem")
        root.cert_pem.write_to_path(self.ca_file)
        issuer = x509.load_pem_x509_certificate(intermediate.cert_pem.bytes())
        issuer_key = serialization.load_pem_private_key(intermediate.private_key_pem.bytes(),
                                                        password=None)
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.host_pattern = f"^{self.origin.replace('.', '[.]')}$"
        now = dt.datetime.now(dt.UTC)
        valid = (now - dt.timedelta(days=1), now + dt.timedelta(days=30))
        chain = issuer.public_bytes(serialization.Encoding.PEM)

        def leaf(name: str, when: tuple[dt.datetime, dt.datetime], aia: bool = False) -> bytes:
            cert = _leaf(self.key, name, when, issuer, issuer_key,
                         f"{self.origin}/issuer.der" if aia else None)
            return cert.public_bytes(serialization.Encoding.PEM)

        self.served = {
            "good": leaf("sns.amazonaws.com", valid) + chain,
            "expired": leaf("sns.amazonaws.com", (dt.datetime(2015, 1, 1, tzinfo=dt.UTC),
                                                  dt.datetime(2016, 1, 1, tzinfo=dt.UTC)))
            + chain,
            "foreign": leaf("attacker.example.com", valid) + chain,
            "selfsigned": _self_signed(self.key, "sns.amazonaws.com", valid),
            "aia": leaf("sns.amazonaws.com", valid, aia=True),
            "issuer.der": issuer.public_bytes(serialization.Encoding.DER),
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.requests.append(self.path)
                name = self.path.lstrip("/")
                if name.startswith("cert-"):  # cert-<variant>-<version>.pem
                    name = name.split("-")[1]
                body = endpoint.served.get(name, b"<ok/>")
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def envelope(self, kind: str, topic_arn: str, fields: dict[str, str],
                 version: str = "1", cert: str = "good") -> dict[str, str]:
        """An SNS message of `kind`, signed as SNS signs it (version 1: SHA1withRSA,
        2: SHA256withRSA, over the name/value lines of the signed fields), naming the
        `cert` variant as its SigningCertURL."""
        doc = {"Type": kind, "MessageId": str(uuid.uuid4()), "TopicArn": topic_arn,
               "Timestamp": "2023-11-14T22:13:20.000Z", **fields, "SignatureVersion": version,
               "SigningCertURL": f"{self.origin}/cert-{cert}-{version}.pem"}
        signed = (("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
                  if kind == "Notification" else
                  ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn",
                   "Type"))
        canonical = "".join(f"{k}\n{doc[k]}\n" for k in signed if k in doc)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(canonical.encode(), padding.PKCS1v15(), algorithm)
        doc["Signature"] = base64.b64encode(signature).decode()
        return doc
