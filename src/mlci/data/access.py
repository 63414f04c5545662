"""What mlci asks an SSH or HTTP remote itself, where DVC would not tell.

DVC's SSH remote (sshfs) connects to any host key, and its HTTP remote takes a 401 or a
403 for missing data. So before pulling, mlci checks the SSH server's host key with
OpenSSH against known_hosts, and refuses to send HTTP credentials over plain http to
another machine; after a failed pull, it asks the HTTP remote for one missing object with
the remote's own credentials and says what the status means.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from mlci.core.redact import plain_http_refusal
from mlci.data.diagnosis import (
    credentials_problem,
    diagnose,
    http_status_message,
    ssh_host_key_message,
)
from mlci.data.remotes import Remote
from mlci.errors import ExternalError, MlciError, UsageError

_SSH_TIMEOUT_S = 20
_HTTP_TIMEOUT_S = 20
_HOST_KEY_FAILURES = ("Host key verification failed", "IDENTIFICATION HAS CHANGED")


def before_pull(remote: Remote, env: Mapping[str, str] | None = None) -> MlciError | None:
    """What stops a pull from this remote before DVC connects, or None: credentials that
    cannot work (`diagnosis.credentials_problem`), an SSH host or key DVC would not check,
    credentials over plain HTTP."""
    problem = credentials_problem(remote, env)
    if problem is not None:
        return problem
    if remote.kind.scheme == "ssh":
        env = env if env is not None else os.environ
        return _ssh_host_key(remote, env) or _locked_key(remote, Path(env.get("HOME") or "~"))
    if remote.kind.scheme == "http":
        return _plain_http(remote)
    return None


def _ssh_host_key(remote: Remote, env: Mapping[str, str]) -> MlciError | None:
    """OpenSSH's verdict on the server's host key, against the known_hosts DVC would use.

    `ssh` asks for no authentication at all (PreferredAuthentications none): it checks the
    host key, then the server refuses the login, which is the answer expected here."""
    parts = urlsplit(remote.url or "")
    host = remote.options.get("host") or parts.hostname or ""
    port = int(remote.options.get("port") or parts.port or 22)
    program = shutil.which("ssh", path=env.get("PATH"))
    if program is None:
        return UsageError(
            f"the DVC remote {remote.shown} is an SSH server, and mlci checks its host key "
            f"with OpenSSH's ssh client (DVC does not check it), which is not installed: "
            f"apt-get install openssh-client (or your system's package)"
        )
    home = Path(env.get("HOME") or Path.home())  # DVC's asyncssh reads $HOME's ~/.ssh
    command = [program, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    # Quoted: OpenSSH splits an unquoted list of files at spaces (a HOME with a space).
    command += ["-o", f'UserKnownHostsFile="{home / ".ssh" / "known_hosts"}"']
    command += ["-o", "PreferredAuthentications=none", "-o", f"ConnectTimeout={_SSH_TIMEOUT_S}"]
    config = home / ".ssh" / "config"  # the one asyncssh reads, not $HOME-less OpenSSH's
    command += ["-F", str(config) if config.is_file() else os.devnull]
    command += ["-p", str(port), "--", host, "exit"]
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=_SSH_TIMEOUT_S + 10,
            env=dict(env),
        )
    except subprocess.TimeoutExpired:
        return None  # DVC's own attempt says what is wrong with the connection
    if any(failure in done.stderr for failure in _HOST_KEY_FAILURES):
        return ExternalError(ssh_host_key_message(remote, host, port, done.stderr))
    return None


_DEFAULT_KEYS = ("id_ed25519", "id_ecdsa", "id_rsa", "id_dsa")


def _locked_key(remote: Remote, home: Path) -> MlciError | None:
    """Every key DVC would try is protected by a passphrase, and none is configured.

    DVC's own words then are only "1 files failed to download" (its prompt for the
    passphrase meets a closed stdin), unless the key is the remote's keyfile."""
    if remote.options.get("passphrase") is not None or remote.options.get("ask_passphrase"):
        return None
    keys = [k for k in _key_files(remote, home) if k.is_file()]
    if keys and all(_encrypted(key) for key in keys):
        said = "Passphrase must be specified to import encrypted private keys: " + str(keys[0])
        return diagnose(said, 1, remote)
    return None


def _key_files(remote: Remote, home: Path) -> list[Path]:
    """The private keys DVC's asyncssh loads: the keyfile, else ~/.ssh/config's
    IdentityFile, else the default names."""
    keyfile = remote.options.get("keyfile")
    if keyfile:
        return [Path(keyfile.replace("~", str(home), 1) if keyfile.startswith("~") else keyfile)]
    config = home / ".ssh" / "config"
    named = []
    if config.is_file():
        for line in config.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.strip().split(None, 1)
            if len(words) == 2 and words[0].lower() == "identityfile":
                value = words[1].strip().strip('"')
                named.append(Path(value.replace("~", str(home), 1)))
    return named or [home / ".ssh" / name for name in _DEFAULT_KEYS]


def _encrypted(key: Path) -> bool:
    """Whether a private key file (OpenSSH's format or PEM) needs a passphrase."""
    try:
        text = key.read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    if "ENCRYPTED" in text:  # PEM: Proc-Type: 4,ENCRYPTED, or BEGIN ENCRYPTED PRIVATE KEY
        return True
    body = "".join(line for line in text.splitlines() if line and "-----" not in line)
    try:
        blob = base64.b64decode(body)
    except ValueError:
        return False
    magic = b"openssh-key-v1\0"
    if not blob.startswith(magic) or len(blob) < len(magic) + 4:
        return False
    size = int.from_bytes(blob[len(magic) : len(magic) + 4], "big")
    cipher = blob[len(magic) + 4 : len(magic) + 4 + size]
    return cipher != b"none"


def _plain_http(remote: Remote) -> MlciError | None:
    if not _credentials(remote):
        return None
    name = remote.name or "NAME"
    refusal = plain_http_refusal(
        remote.url or "", f"the credentials of the DVC remote '{name}'", ".dvc/config"
    )
    return UsageError(refusal) if refusal else None


def _credentials(remote: Remote) -> dict[str, str]:
    """The headers DVC's HTTP remote sends, from its options (auth basic or custom)."""
    options = remote.options
    password = options.get("password")
    if options.get("auth") == "basic" and options.get("user") and password is not None:
        pair = f"{options['user']}:{password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    header = options.get("custom_auth_header")
    if options.get("auth") == "custom" and header and password is not None:
        return {header: password}
    return {}


def http_object_url(remote: Remote, md5: str) -> str:
    """The URL of one object in a DVC 3 remote (files/md5/XX/REST)."""
    return f"{(remote.url or '').rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


def http_problem(remote: Remote, where: str, md5: str) -> MlciError | None:
    """Ask the HTTP remote for one object it should hold (HEAD, the remote's credentials):
    a 401, a 403, a server error or no connection as the error that names the fix; None
    when it answers (found, or 404: the data is really missing)."""
    url = http_object_url(remote, md5)
    if _plain_http(remote) is not None:
        return None  # refused before pulling already
    request = urllib.request.Request(url, method="HEAD", headers=_credentials(remote))
    opener = urllib.request.build_opener(_NoRedirect, _tls(remote))
    try:
        with opener.open(request, timeout=_HTTP_TIMEOUT_S):
            return None
    except urllib.error.HTTPError as exc:
        message = http_status_message(remote, where, exc.code, url)
        return ExternalError(message) if message else None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return ExternalError(
            f"cannot reach {where} ({reason}): check the URL in .dvc/config and the runner's "
            f"network (DVC takes an unreachable HTTP remote for missing data)"
        )


def _tls(remote: Remote) -> urllib.request.HTTPSHandler:
    """The remote's ssl_verify, as DVC applies it: false, a CA bundle's path, or on."""
    import ssl

    verify = remote.options.get("ssl_verify", "true")
    if verify.lower() == "false":
        context = ssl._create_unverified_context()  # the user's own choice for DVC
    elif verify.lower() == "true":
        context = ssl.create_default_context()
    else:
        context = ssl.create_default_context(cafile=verify)
    return urllib.request.HTTPSHandler(context=context)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an answer: the credentials are not sent on to another URL."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None
