"""TLS and mutual TLS between the oip clients and the reference server.

Certificates are made for each run with openssl: a CA, a server
certificate for 127.0.0.1 (and the name oip.test), a client certificate.
"""

import asyncio
import subprocess

import numpy as np
import pytest

import oip
from oip.server import ServerProcess

TIMEOUT = 10


def _openssl(*args, cwd):
    subprocess.run(
        ["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60
    )


def _issue(directory, name, subject_alt_names):
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={name}",
        cwd=directory,
    )
    (directory / f"{name}.ext").write_text(f"subjectAltName={subject_alt_names}\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.pem",
        "-extfile",
        f"{name}.ext",
        cwd=directory,
    )


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=oip-test-ca",
        cwd=directory,
    )
    _issue(directory, "server", "IP:127.0.0.1,DNS:oip.test")
    _issue(directory, "client", "DNS:client.oip.test")
    return directory


@pytest.fixture(scope="module")
def tls_server(certs):
    args = [
        "--tls-cert-file",
        str(certs / "server.pem"),
        "--tls-key-file",
        str(certs / "server.key"),
    ]
    with ServerProcess(extra_args=args) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(certs):
    args = [
        "--tls-cert-file",
        str(certs / "server.pem"),
        "--tls-key-file",
        str(certs / "server.key"),
        "--tls-client-ca-file",
        str(certs / "ca.pem"),
    ]
    with ServerProcess(extra_args=args) as server:
        yield server


def _simple(client):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    return client.infer("simple", {"INPUT0": a, "INPUT1": a})["OUTPUT0"]


def test_tls_client_trusting_the_ca(tls_server, certs):
    tls = oip.TlsOptions(root_certificates=str(certs / "ca.pem"))

    with oip.Client(tls_server.url, tls=tls, timeout=TIMEOUT) as client:
        assert client.is_server_live()
        assert _simple(client).tolist() == [list(range(0, 32, 2))]


def test_tls_certificates_as_bytes(tls_server, certs):
    tls = oip.TlsOptions(root_certificates=(certs / "ca.pem").read_bytes())

    with oip.Client(tls_server.url, tls=tls, timeout=TIMEOUT) as client:
        assert client.is_server_ready()


def test_target_name_override(tls_server, certs):
    tls = oip.TlsOptions(
        root_certificates=str(certs / "ca.pem"), target_name_override="oip.test"
    )
    url = f"localhost:{tls_server.port}"

    with oip.Client(url, tls=tls, timeout=TIMEOUT) as client:
        assert client.is_server_live()


def test_async_client_over_tls(tls_server, certs):
    tls = oip.TlsOptions(root_certificates=str(certs / "ca.pem"))

    async def run():
        async with oip.AsyncClient(tls_server.url, tls=tls, timeout=TIMEOUT) as client:
            return await client.is_server_live()

    assert asyncio.run(run())


def test_plaintext_client_to_tls_server_fails(tls_server):
    with oip.Client(tls_server.url, timeout=3, retry=None) as client:
        with pytest.raises(oip.ServerUnavailableError):
            client.is_server_live()


def test_untrusted_server_certificate_fails(tls_server):
    with oip.Client(
        tls_server.url, tls=oip.TlsOptions(), timeout=3, retry=None
    ) as client:
        with pytest.raises(oip.ServerUnavailableError):
            client.is_server_live()


def test_mutual_tls_with_client_certificate(mtls_server, certs):
    tls = oip.TlsOptions(
        root_certificates=str(certs / "ca.pem"),
        private_key=str(certs / "client.key"),
        certificate_chain=str(certs / "client.pem"),
    )

    with oip.Client(mtls_server.url, tls=tls, timeout=TIMEOUT) as client:
        assert _simple(client).shape == (1, 16)


def test_mutual_tls_without_client_certificate_fails(mtls_server, certs):
    tls = oip.TlsOptions(root_certificates=str(certs / "ca.pem"))

    with oip.Client(mtls_server.url, tls=tls, timeout=3, retry=None) as client:
        with pytest.raises(oip.ServerUnavailableError):
            client.is_server_live()
