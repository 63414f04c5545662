"""Predictions in object storage (s3://, gs://, az://): fsspec filesystems, read in place.

The engine reads the objects through these filesystems by ranges (Parquet's footer, then
the columns it needs), never a full download. Credentials come as for the DVC remotes of
the same kind (the AWS, Google and Azure variables), and a refusal says which to set with
the DVC remotes' words (`data.remotes.secrets_hint`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from mlci.core.redact import redact_url
from mlci.data.remotes import Remote, secrets_hint
from mlci.errors import ExternalError, MlciError, UsageError

# The URL's scheme -> (DVC's scheme for the same store, the fsspec package that reads it).
SCHEMES = {
    "s3": ("s3", "s3fs"),
    "gs": ("gs", "gcsfs"),
    "gcs": ("gs", "gcsfs"),
    "az": ("azure", "adlfs"),
    "abfs": ("azure", "adlfs"),
    "abfss": ("azure", "adlfs"),
}
_NO_CREDENTIALS = re.compile(
    r"Unable to locate credentials|NoCredentialsError|DefaultCredentialsError|"
    r"default credentials were not found|account_name or connection_string|"
    r"DefaultAzureCredential|Anonymous caller"
)
_REFUSED = re.compile(
    r"\b403\b|Forbidden|AccessDenied|Access Denied|AuthenticationFailed|AuthorizationFailure|"
    r"InvalidAccessKeyId|SignatureDoesNotMatch|invalid_grant"
)
_MISSING = re.compile(r"NoSuchBucket|NoSuchKey|\b404\b|No files found|FileNotFoundError")


def scheme(path: str) -> str | None:
    """The object-storage scheme of `path` (s3, gs, az...), or None for a local path."""
    found = urlsplit(path).scheme.lower() if "://" in path else ""
    return found if found in SCHEMES else None


def filesystem(path: str, env: Mapping[str, str] | None = None) -> Any:
    """The fsspec filesystem that reads `path`, with credentials from the environment."""
    import fsspec

    env = os.environ if env is None else env
    found = scheme(path)
    if found is None:
        raise UsageError(f"{redact_url(path)}: not an s3://, gs:// or az:// URL")
    kind, package = SCHEMES[found]
    options: dict[str, Any] = {}
    if kind == "azure":  # adlfs takes the account from arguments, not the environment
        if env.get("AZURE_STORAGE_CONNECTION_STRING"):
            options["connection_string"] = env["AZURE_STORAGE_CONNECTION_STRING"]
        elif env.get("AZURE_STORAGE_ACCOUNT"):
            options["account_name"] = env["AZURE_STORAGE_ACCOUNT"]
    try:
        # A fresh instance: fsspec caches them by arguments, with the credentials of then.
        return fsspec.filesystem(found, skip_instance_cache=True, **options)
    except ImportError:
        raise UsageError(
            f"{redact_url(path)}: reading predictions from {found}:// needs {package}, which "
            f"is not installed: pip install {package}"
        ) from None
    except ValueError as exc:
        raise ExternalError(_message(path, str(exc), env) or f"{path}: {exc}") from None


@contextlib.contextmanager
def diagnosed(*paths: str, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """Errors of reading `paths` from object storage as the fix they call for."""
    try:
        yield
    except Exception as exc:
        said = str(exc.message if isinstance(exc, MlciError) else exc)
        found = (_message(path, said, os.environ if env is None else env) for path in paths)
        message = next((text for text in found if text), None)
        if message is None:
            raise
        raise ExternalError(message) from None


def _message(path: str, said: str, env: Mapping[str, str]) -> str | None:
    found = scheme(path)
    if found is None:
        return None
    kind = SCHEMES[found][0]
    remote = Remote(None, f"{kind}://{urlsplit(path).netloc}")
    shown = redact_url(path)
    if _NO_CREDENTIALS.search(said):
        return f"no credentials to read the predictions {shown}: {secrets_hint(remote, env)}"
    if _REFUSED.search(said):
        return (
            f"{urlsplit(path).netloc} refused the credentials to read the predictions {shown} "
            f"(403): check {' and '.join(remote.kind.secrets) or 'the credentials'} in the CI "
            f"secrets, and that they may read and list the bucket"
        )
    if _MISSING.search(said):
        return (
            f"the predictions {shown} are not there (no such bucket or object): fix "
            f"evaluate.predictions (or --predictions, --baseline-predictions), or check that "
            f"training uploaded them"
        )
    return None
