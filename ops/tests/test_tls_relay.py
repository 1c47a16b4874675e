"""ops/lib/tls_relay.py as ops/broker runs it: a TLS client that trusts the certificate reaches the
plaintext service behind it, byte for byte both ways; a plaintext client is refused; SIGTERM
stops it."""

import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest

RELAY = pathlib.Path(__file__).resolve().parents[1] / "lib" / "tls_relay.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def certificate(tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


@pytest.fixture
def echo_service():
    """A plaintext service that answers each connection with what it receives, upper-cased."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                while data := connection.recv(65536):
                    connection.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


def test_tls_clients_reach_the_service_and_sigterm_stops_it(certificate, echo_service):
    cert, key = certificate
    port = free_port()
    relay = subprocess.Popen([sys.executable, RELAY, "127.0.0.1", str(port), "127.0.0.1", str(echo_service), cert, key],
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the relay did not listen within 10 s"
                time.sleep(0.05)
        context = ssl.create_default_context(cafile=str(cert))
        payload = bytes(range(256)) * 1000  # larger than one read of the relay
        with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1") as tls:
            tls.sendall(payload)
            received = b""
            while len(received) < len(payload):
                received += tls.recv(65536)
        assert received == payload.upper()
        with socket.create_connection(("127.0.0.1", port)) as plain:
            plain.sendall(b"not a TLS hello\r\n\r\n")
            plain.settimeout(10)
            reply = plain.recv(100)
            # Refused: the relay closes the connection or answers with a TLS alert (record type
            # 21), and nothing reaches the service.
            assert reply == b"" or reply[0] == 21, reply
        relay.send_signal(signal.SIGTERM)
        assert relay.wait(timeout=10) == 0
        assert f"TLS on 127.0.0.1:{port}, relayed to 127.0.0.1:{echo_service}" in relay.stderr.read()
    finally:
        if relay.poll() is None:
            relay.kill()
