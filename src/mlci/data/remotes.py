"""DVC's remotes and config, read from `.dvc/config` and `.dvc/config.local`."""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from mlci.core.redact import redact_url
from mlci.core.workflow import secrets_source
from mlci.errors import UsageError


@dataclass(frozen=True)
class RemoteKind:
    """What a kind of DVC remote needs on a CI runner."""

    scheme: str
    extra: str | None  # pip install 'dvc[EXTRA]'; None: built into dvc
    module: str | None  # the plugin's module, to check before pulling
    secrets: tuple[str, ...]  # the environment variables (CI secrets) the job sets
    how: str  # how else credentials reach DVC, for the message


_KINDS: dict[str, RemoteKind] = {
    "local": RemoteKind(
        "local", None, None, (), "a folder: the CI runner must see the same path (a mount)"
    ),
    "s3": RemoteKind(
        "s3",
        "s3",
        "dvc_s3",
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        "plus AWS_SESSION_TOKEN for temporary keys; or OIDC "
        "(aws-actions/configure-aws-credentials on GitHub Actions) which sets them",
    ),
    "gs": RemoteKind(
        "gs",
        "gs",
        "dvc_gs",
        ("GOOGLE_APPLICATION_CREDENTIALS",),
        "the path of a service-account key file the job writes from a secret; or workload "
        "identity (google-github-actions/auth) which sets it",
    ),
    "azure": RemoteKind(
        "azure",
        "azure",
        "dvc_azure",
        ("AZURE_STORAGE_CONNECTION_STRING",),
        "or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, or a service principal: "
        "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID",
    ),
    "ssh": RemoteKind(
        "ssh",
        "ssh",
        "dvc_ssh",
        (),
        "a private key the job writes to ~/.ssh/ from a secret (mlci init: DVC_SSH_KEY, a "
        "deploy key without a passphrase) with the server's line in ~/.ssh/known_hosts (the "
        "variable DVC_SSH_KNOWN_HOSTS: mlci checks the host key), or a password set with "
        '`dvc remote modify --local REMOTE password "$SSH_PASSWORD"`',
    ),
    "http": RemoteKind(
        "http",
        None,
        None,
        (),
        "user and password set in the job with `dvc remote modify --local REMOTE user ...` "
        "and `... password ...` from secrets (auth: basic; mlci init: DVC_HTTP_USER and "
        "DVC_HTTP_PASSWORD), over https",
    ),
    "webdav": RemoteKind(
        "webdav",
        "webdav",
        "dvc_webdav",
        (),
        "user and password (or token) set with `dvc remote modify --local REMOTE ...` from secrets",
    ),
    "hdfs": RemoteKind("hdfs", "hdfs", "dvc_hdfs", (), "a Kerberos ticket (kinit) on the runner"),
    "webhdfs": RemoteKind(
        "webhdfs", "webhdfs", "dvc_webhdfs", (), "a Kerberos ticket or user and password"
    ),
    "oss": RemoteKind(
        "oss", "oss", "dvc_oss", ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"), "Aliyun keys"
    ),
    "gdrive": RemoteKind(
        "gdrive",
        "gdrive",
        "dvc_gdrive",
        ("GDRIVE_CREDENTIALS_DATA",),
        "a service account's JSON key in the variable",
    ),
}
_SCHEMES = {
    "s3": "s3",
    "gs": "gs",
    "azure": "azure",
    "ssh": "ssh",
    "http": "http",
    "https": "http",
    "webdav": "webdav",
    "webdavs": "webdav",
    "hdfs": "hdfs",
    "webhdfs": "webhdfs",
    "oss": "oss",
    "gdrive": "gdrive",
    "file": "local",
}


@dataclass(frozen=True)
class Remote:
    """A DVC remote as `.dvc/config` (and `.dvc/config.local`) describe it."""

    name: str | None  # None: no remote configured
    url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets

    @property
    def kind(self) -> RemoteKind:
        scheme = urlsplit(self.url).scheme if self.url and "://" in self.url else "file"
        return _KINDS.get(_SCHEMES.get(scheme, "local"), _KINDS["local"])

    @property
    def shown(self) -> str:
        """`'name' (url)` without any user or password in the URL."""
        return f"'{self.name}' ({redact_url(self.url or '?')})"

    @property
    def bucket(self) -> str | None:
        if not self.url or "://" not in self.url or self.kind.scheme == "local":
            return None
        parts = urlsplit(self.url)
        return parts.netloc.rpartition("@")[2] + parts.path.rstrip("/")


def secrets_hint(remote: Remote, env: Mapping[str, str] | None = None) -> str:
    """How to give the job credentials for the remote's kind (the CI secrets to set)."""
    kind = remote.kind
    if kind.secrets:
        names = " and ".join(kind.secrets)
        where = secrets_where(kind.secrets, env)
        return f"set {names} in the CI job from its secrets ({kind.how}){where}"
    return f"give the job its credentials: {kind.how}"


def secrets_where(variables: tuple[str, ...], env: Mapping[str, str] | None) -> str:
    """Which secrets fill `variables` in the job `mlci init` writes: repository or
    environment secrets (docs/security.md)."""
    return secrets_source(variables, os.environ if env is None else env)


def find_dvc_root(start: Path) -> Path | None:
    """The folder holding `.dvc/` at `start` or above it, or None: not a DVC project."""
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
        if (folder / ".git").exists():
            return None
    return None


def read_remote(dvc_root: Path, name: str | None = None) -> Remote:
    """The remote `name` (default: core.remote) from `.dvc/config` and `.dvc/config.local`."""
    sections = read_dvc_config(dvc_root)
    name = name or sections.get("core", {}).get("remote")
    if not name:
        return Remote(None)
    options = sections.get(f'remote "{name}"')
    if options is None:
        configured = [s[8:-1] for s in sections if s.startswith('remote "')]
        listed = ", ".join(configured) or "none"
        raise UsageError(
            f"DVC has no remote named '{name}' (configured: {listed}); fix data.remote in "
            f"mlci.yaml or add it with `dvc remote add {name} URL`"
        )
    return Remote(name, options.get("url"), options)


def read_dvc_config(dvc_root: Path) -> dict[str, dict[str, str]]:
    """Section -> option -> value, from `.dvc/config` with `.dvc/config.local` over it."""
    merged: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        path = dvc_root / ".dvc" / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(encoding="utf-8"))
        except configparser.Error as exc:
            raise UsageError(f"{path}: DVC's config cannot be read ({exc})") from None
        for section in parser.sections():
            key = section.strip()
            if len(key) > 1 and key[0] == key[-1] == "'":
                key = key[1:-1].strip()
            merged.setdefault(key, {}).update(
                {k: v.strip().strip("'\"") for k, v in parser[section].items()}
            )
    return merged
