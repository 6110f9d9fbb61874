"""Issue 19 §6: every django-environ EMAIL_URL scheme delivers the project's email task — each
in a fresh process configured only by EMAIL_URL, the SMTP ones to a real local SMTP server
(STARTTLS and implicit TLS with a certificate made for the test)."""

import base64
import datetime
import ipaddress
import os
import socketserver
import ssl
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
SEND = """
from django.conf import settings
from django.core import mail
from accounts.emails import send_email
send_email(template="password_reset", to=["ann@example.com"],
           context={"name": "Ann", "reset_url": "https://app.example.com/r", "valid_hours": 3})
print("BACKEND", settings.EMAIL_BACKEND)
if settings.EMAIL_BACKEND.endswith("locmem.EmailBackend"):
    print("OUTBOX", len(mail.outbox), mail.outbox[0].to)
"""


def send_with(email_url: str, **extra_env) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "EMAIL_BACKEND")}
    env.update(EMAIL_URL=email_url, **extra_env)
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "--settings=config.settings.test", "-c", SEND],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# --- a real SMTP server -----------------------------------------------------------------------


class _SMTPHandler(socketserver.StreamRequestHandler):
    def setup(self):
        if self.server.implicit_tls:
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
        super().setup()

    def _reply(self, text: bytes):
        self.wfile.write(text + b"\r\n")
        self.wfile.flush()

    def handle(self):
        secure = self.server.implicit_tls
        self._reply(b"220 test ESMTP")
        while line := self.rfile.readline():
            command = line.strip().upper()
            if command.startswith((b"EHLO", b"HELO")):
                offer_tls = self.server.tls is not None and not secure
                self._reply(
                    b"250-test\r\n250-AUTH PLAIN"
                    + (b"\r\n250 STARTTLS" if offer_tls else b"\r\n250 8BITMIME")
                )
            elif command == b"STARTTLS":
                self._reply(b"220 go ahead")
                self.request = self.server.tls.wrap_socket(self.request, server_side=True)
                self.rfile = self.request.makefile("rb")
                self.wfile = self.request.makefile("wb")
                secure = True
            elif command.startswith(b"AUTH PLAIN"):
                self.server.logins.append(base64.b64decode(line.split()[2]).split(b"\0")[1:])
                self._reply(b"235 ok")
            elif command == b"DATA":
                self._reply(b"354 end with .")
                body = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(data)
                self.server.messages.append((secure, b"".join(body)))
                self._reply(b"250 queued")
            elif command == b"QUIT":
                self._reply(b"221 bye")
                return
            else:  # MAIL FROM, RCPT TO, RSET, NOOP
                self._reply(b"250 ok")


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None, implicit_tls: bool = False):
        super().__init__(("127.0.0.1", 0), _SMTPHandler)
        self.tls, self.implicit_tls = tls, implicit_tls
        self.messages, self.logins = [], []


@pytest.fixture
def certificate(tmp_path) -> tuple[Path, ssl.SSLContext]:
    """A self-signed certificate for 127.0.0.1; the sending process trusts it (SSL_CERT_FILE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return cert_path, context


def serve(server: SMTPServer):
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server


@pytest.fixture
def smtp_server():
    servers = []

    def start(**kwargs) -> SMTPServer:
        servers.append(serve(SMTPServer(**kwargs)))
        return servers[-1]

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- each scheme --------------------------------------------------------------------------------


def test_smtp_delivers_to_the_server_with_the_urls_credentials(smtp_server):
    server = smtp_server()

    send_with(f"smtp://mailer:s3cret@127.0.0.1:{server.server_address[1]}")

    assert len(server.messages) == 1 and b"ann@example.com" in server.messages[0][1]
    assert server.logins == [[b"mailer", b"s3cret"]]


def test_smtp_tls_upgrades_with_starttls_before_it_logs_in(smtp_server, certificate):
    cert_path, context = certificate
    server = smtp_server(tls=context)

    send_with(f"smtp+tls://mailer:s3cret@127.0.0.1:{server.server_address[1]}", SSL_CERT_FILE=str(cert_path))

    assert [secure for secure, _ in server.messages] == [True]
    assert server.logins == [[b"mailer", b"s3cret"]]


def test_smtp_ssl_speaks_tls_from_the_first_byte(smtp_server, certificate):
    cert_path, context = certificate
    server = smtp_server(tls=context, implicit_tls=True)

    send_with(f"smtp+ssl://mailer:s3cret@127.0.0.1:{server.server_address[1]}", SSL_CERT_FILE=str(cert_path))

    assert [secure for secure, _ in server.messages] == [True]


def test_consolemail_prints_the_message():
    result = send_with("consolemail://")

    assert "console.EmailBackend" in result.stdout and "To: ann@example.com" in result.stdout


def test_filemail_writes_the_message_into_the_urls_folder(tmp_path):
    folder = tmp_path / "mail"

    send_with(f"filemail://{folder}")

    files = list(folder.iterdir())
    assert len(files) == 1 and "ann@example.com" in files[0].read_text()


def test_memorymail_keeps_the_message_in_the_outbox():
    result = send_with("memorymail://")

    assert "OUTBOX 1 ['ann@example.com']" in result.stdout


def test_dummymail_accepts_and_drops_the_message():
    result = send_with("dummymail://")

    assert "dummy.EmailBackend" in result.stdout
