"""Cloud storage emulators on 127.0.0.1 for the DVC remote tests: Google Cloud Storage and
Azure Blob, each a real server process on a free port.

- GCS: PyPI's `gcp-storage-emulator`, which gcsfs reaches through STORAGE_EMULATOR_HOST.
  It checks no credentials, so a Google OAuth token endpoint stands beside it
  (`GoogleTokens`): it verifies the signed JWT of a service-account key, as Google does,
  and answers a key it does not know with Google's `invalid_grant`.
- Azure: Azurite (npm `azurite`, Microsoft's emulator, installed into tests/.node by `make`)
  with its well-known account `devstoreaccount1`; it checks shared-key signatures and SAS
  permissions like Azure Blob Storage.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import http.server
import json
import shutil
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlci.cli import main
from mlci.data.diagnosis import diagnose
from mlci.data.remotes import read_remote
from mlci.errors import MlciError
from tests.dvc_project import DvcProject, copy_template
from tests.servers import free_port, wait_until_listening

NODE_BIN = Path(__file__).parent / ".node" / "node_modules" / ".bin"
AZURITE_INSTALL = "npm install --prefix tests/.node azurite@3.35.0 (or `make tools`)"


@contextlib.contextmanager
def _process(args: list[str], port: int, what: str) -> Iterator[None]:
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_listening(port, process, what)
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- Google Cloud Storage --------------------------------------------------------------------


class GoogleTokens:
    """Google's OAuth token endpoint for service-account keys (the JWT bearer grant): a key
    whose public half it holds gets a token, any other `invalid_grant: Invalid JWT
    Signature.` with status 400, Google's answer to a deleted or foreign key."""

    def __init__(self) -> None:
        self.known: dict[str, Any] = {}  # private_key_id -> public key
        self.requests = 0
        handler = type("Handler", (_TokenHandler,), {"tokens": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def new_key(self, *, known: bool = True) -> dict[str, str]:
        """A service account's JSON key whose token_uri is this endpoint."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = f"key{len(self.known)}-{id(private):x}"
        if known:
            self.known[key_id] = private.public_key()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "mlci-test",
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": "ci-reader@mlci-test.iam.gserviceaccount.com",
            "client_id": "100000000000000000001",
            "token_uri": self.url,
        }

    def grant(self, assertion: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            header, payload, signature = assertion.split(".")
            key_id = json.loads(_unbase64(header)).get("kid")
            public = self.known[key_id]
            public.verify(
                _unbase64(signature),
                f"{header}.{payload}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, KeyError, InvalidSignature):
            return False
        return True

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _unbase64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    tokens: GoogleTokens

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        self.tokens.requests += 1
        if self.tokens.grant(form.get("assertion", [""])[0]):
            status = 200
            body: dict[str, Any] = {
                "access_token": "ya29.test-token",
                "expires_in": 3599,
                "token_type": "Bearer",
            }
        else:
            status = 400
            body = {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass(frozen=True)
class GcsEmulator:
    url: str  # STORAGE_EMULATOR_HOST
    tokens: GoogleTokens

    def create_bucket(self, name: str) -> None:
        request = urllib.request.Request(
            f"{self.url}/storage/v1/b?project=mlci-test",
            data=json.dumps({"name": name}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(request, timeout=10).read()


@contextlib.contextmanager
def gcs_emulator() -> Iterator[GcsEmulator]:
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "gcp_storage_emulator",
        "start",
        "-H",
        "127.0.0.1",
        "--port",
        str(port),
        "--in-memory",
        "-q",
    ]
    tokens = GoogleTokens()
    try:
        with _process(args, port, "gcp-storage-emulator"):
            yield GcsEmulator(f"http://127.0.0.1:{port}", tokens)
    finally:
        tokens.close()


# -- Azure Blob Storage ----------------------------------------------------------------------

AZURITE_ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key (public, in Microsoft's documentation).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


@dataclass(frozen=True)
class Azurite:
    blob_endpoint: str  # http://127.0.0.1:PORT/devstoreaccount1

    def connection_string(self, key: str = AZURITE_KEY) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
            f"BlobEndpoint={self.blob_endpoint};"
        )

    def sas_connection_string(self, container: str, permission: str, *, hours: float = 1) -> str:
        """A connection string with a container SAS of `permission` (e.g. "rl"), valid for
        `hours` from now (negative: already expired)."""
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        expiry = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=hours)
        sas = generate_container_sas(
            AZURITE_ACCOUNT,
            container,
            account_key=AZURITE_KEY,
            permission=ContainerSasPermissions.from_string(permission),
            expiry=expiry,
        )
        return f"BlobEndpoint={self.blob_endpoint};SharedAccessSignature={sas}"

    def create_container(self, name: str) -> None:
        from azure.storage.blob import BlobServiceClient

        BlobServiceClient.from_connection_string(self.connection_string()).create_container(name)


def azurite_command() -> Path:
    found = NODE_BIN / "azurite-blob"
    if not found.exists() or shutil.which("node") is None:
        raise RuntimeError(f"Azurite is not installed: {AZURITE_INSTALL}")
    return found


@contextlib.contextmanager
def azurite() -> Iterator[Azurite]:
    port = free_port()
    args = [
        str(azurite_command()),
        "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
        "--silent", "--skipApiVersionCheck", "--disableTelemetry",
    ]  # fmt: skip
    with _process(args, port, "Azurite"):
        yield Azurite(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}")


def project_on(template: Path, dest: Path, url: str) -> DvcProject:
    """A copy of the DVC project `template` whose default remote 'storage' is `url`, its
    data pushed there, and none of it left here: a fresh CI runner's checkout."""
    project = copy_template(template, dest)
    project.dvc("remote", "add", "-f", "-d", "storage", url)
    project.dvc("push", "-q")
    project.commit("data on the remote")
    project.forget_local_data()
    return project


def mlci_pull(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """`mlci data pull`: its exit code and what it said on stderr."""
    code = main(["data", "pull", "--config", str(project.config)])
    return code, capsys.readouterr().err


def in_github_job(monkeypatch: pytest.MonkeyPatch, event: str) -> None:
    """As in a job of GitHub Actions for `event` (pull_request, push)."""
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_EVENT_NAME", event)


def missing_plugin_error(project: DvcProject, module: str) -> MlciError:
    """What mlci makes of `dvc pull` by a DVC that cannot import `module` (the remote's
    plugin), as on a runner where the extra was not installed: DVC's own failure."""
    script = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from dvc.cli import main\n"
        "sys.exit(main(['pull']))\n"
    )
    ran = subprocess.run(
        [sys.executable, "-c", script], cwd=project.root, capture_output=True, text=True
    )
    assert f"requires '{module.replace('_', '-')}' to be installed" in ran.stderr
    return diagnose(ran.stdout + ran.stderr, ran.returncode, read_remote(project.root))
