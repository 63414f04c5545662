"""DVC's failures as errors that name the fix for the remote's kind."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mlci.core import workflow
from mlci.core.redact import mask_text, redact_url
from mlci.data.remotes import Remote, secrets_hint
from mlci.data.remotes import secrets_where as _where
from mlci.errors import ExternalError, MlciError, UsageError
from mlci.secrets import secret_values


def named_remote(remote: Remote) -> str:
    """The remote as messages name it, with its S3 endpoint when one is configured."""
    if remote.name is None:
        return "the DVC remote"
    endpoint = remote.options.get("endpointurl")
    return remote.shown + (f" at {redact_url(endpoint)}" if endpoint else "")


def answer_hint(remote: Remote) -> str:
    """What to check when the remote does not answer, for its kind."""
    if remote.kind.scheme == "local":
        return (
            "check that the folder answers on this runner (a hung network mount, NFS or SMB, "
            "blocks every read)"
        )
    endpoint = " and endpointurl" if remote.options.get("endpointurl") else ""
    return (
        f"check that it answers from this runner (its url{endpoint} in .dvc/config, the "
        f"network, a proxy or firewall that drops the traffic)"
    )


def plugin_message(remote: Remote, package: str) -> str:
    """The remote needs the DVC plugin `package`: how to install it."""
    extra = remote.kind.extra or remote.kind.scheme
    return (
        f"the DVC remote {remote.shown} needs {package}, which is not installed: "
        f"pip install 'dvc[{extra}]' in the CI job (or add it to the project's requirements)"
    )


def _redact(text: str, env: Mapping[str, str] | None) -> str:
    """Text from DVC without URL passwords or the values of secret-looking variables."""
    return mask_text(text, secret_values(env))


def dvc_errors(output: str) -> list[str]:
    """DVC's `ERROR: ` lines, without the prefix."""
    return [line[7:].strip() for line in output.splitlines() if line.startswith("ERROR: ")]


def _missing_bucket(remote: Remote, where: str, quoted: str) -> ExternalError:
    noun = _bucket_noun(remote)
    return ExternalError(
        f"the {noun} of {where} does not exist ({remote.bucket or 'the ' + noun}): fix the "
        f"remote's URL in .dvc/config (`dvc remote modify {remote.name or 'NAME'} url ...`), "
        f"or check its region or endpoint ({quoted})"
    )


def _bucket_noun(remote: Remote) -> str:
    return "container" if remote.kind.scheme == "azure" else "bucket"


def missing_targets(output: str) -> list[str]:
    """The paths of "Checkout failed for following targets:" and the missing objects."""
    lines = output.splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if "Checkout failed for following targets:" in line:
            for target in lines[index + 1 :]:
                if target.startswith("Is your cache up to date?") or not target.strip():
                    break
                found.append(target.strip())
    for match in re.finditer(r"^name: (.+?), md5: ([0-9a-f]+)", output, flags=re.M):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


def diagnose(
    output: str,
    exit_code: int,
    remote: Remote,
    *,
    env: Mapping[str, str] | None = None,
    missing: list[str] | None = None,
) -> MlciError:
    """DVC's failure as an error that names the fix, for the remote's kind.

    `missing`: the datasets among the files DVC could not check out, named first.
    """
    errors = dvc_errors(output)
    lines = [line for line in output.splitlines() if line.strip()]
    quoted = _redact(errors[0] if errors else (lines[-1] if lines else ""), env)
    quoted = quoted or f"dvc exited with code {exit_code}"
    where = remote.shown if remote.name else "the DVC remote"
    said = "\n".join(errors) or output  # DVC's error lines: file names cannot match below
    plugin = re.search(r"requires '(dvc-[\w-]+)' to be installed", output)
    if plugin:
        return UsageError(plugin_message(remote, plugin.group(1)))
    if "unknown Git revision" in output or "unknown revision" in output:
        return UsageError(
            f"DVC cannot find a git revision ({quoted}): this is probably a shallow clone; "
            f"fetch the history, e.g. `fetch-depth: 0` on actions/checkout (GitLab: "
            f"GIT_DEPTH: 0), or `git fetch --unshallow`"
        )
    if "unsaved files without confirmation" in output:
        return UsageError(
            "dvc pull would overwrite files in the work tree that DVC has not saved (a "
            "stage output made outside `dvc repro`, or an edited dataset): save them with "
            "`dvc commit` or `dvc add`, or delete them; in CI, clone afresh"
        )
    if "No remote provided and no default remote set" in output:
        return UsageError(
            "DVC has no remote to pull from: add one with `dvc remote add -d NAME URL` and "
            "commit .dvc/config, or name one in data.remote of mlci.yaml"
        )
    by_kind = _BY_KIND.get(remote.kind.scheme)
    found = by_kind(said, remote, _Said(where, quoted, env)) if by_kind else None
    if found is not None:
        return found
    if re.search(r"Unable to locate credentials|Unable to find AWS credentials", said) or (
        re.search(r"DefaultCredentialsError|default credentials were not found", said)
        or re.search(r"No credential|DefaultAzureCredential failed", said)
    ):
        return ExternalError(
            f"DVC found no credentials for {where}: {secrets_hint(remote, env)} ({quoted})"
        )
    if re.search(r"NoSuchBucket|bucket does not exist|ContainerNotFound|NoSuchContainer", said):
        return _missing_bucket(remote, where, quoted)
    if re.search(r"\b403\b|Forbidden|AccessDenied|Access Denied|AuthorizationFailure", said):
        return ExternalError(
            f"{where} refused the credentials (403 Forbidden). DVC cannot tell whether the "
            f"key is wrong, the secret is wrong, or the key lacks permission: check "
            f"{' and '.join(remote.kind.secrets) or 'the credentials'} in the CI secrets, and "
            f"that the key may read {remote.bucket or 'the remote'} (S3: s3:GetObject and "
            f"s3:ListBucket) ({quoted})"
        )
    if re.search(r"Permission denied \(publickey|Authentication failed|AuthenticationErr", said):
        return ExternalError(f"{where} refused the login: {secrets_hint(remote, env)} ({quoted})")
    if "Checkout failed for following targets" in output or "Missing cache files" in output:
        targets = missing or missing_targets(output)
        more = f" and {len(targets) - 10} more" if len(targets) > 10 else ""
        listed = ", ".join(targets[:10]) + more
        url = (
            f" (or the remote's URL is wrong: is {remote.bucket} the right {_place(remote)}?)"
            if remote.bucket
            else ""
        )
        return ExternalError(
            f"{where} lacks the data of {listed or 'some outputs'}: someone committed the "
            f".dvc/dvc.lock change without `dvc push`{url}. Run `dvc push` where the data "
            f"was added or trained (or `dvc repro` and push), then run again"
        )
    if re.search(
        r"Could not connect|Connection refused|Connect call failed|Name or service not known",
        said,
    ):
        return ExternalError(
            f"cannot reach {where}: check the URL or endpoint in .dvc/config and the runner's "
            f"network ({quoted})"
        )
    return ExternalError(f"dvc pull from {where} failed (exit {exit_code}): {quoted}")


def _place(remote: Remote) -> str:
    if remote.kind.scheme in ("ssh", "http"):
        return "host and path"
    return f"{_bucket_noun(remote)} and path"


def ci_secrets(write: str, read: str) -> str:
    """Where the workflows of `mlci init` take a credential from, for a fix."""
    return (
        f"(the workflows of `mlci init` read it from the repository secret {read}, a "
        f"read-only credential, in pull requests, and from the secret {write} of the "
        f"environment {workflow.PROMOTE_ENVIRONMENT} on the main branch; GitLab: CI/CD "
        f"variables, the write one protected)"
    )


# -- SSH ---------------------------------------------------------------------------------------

_SSH_KEY_WHERE = ci_secrets(workflow.SSH_KEY_SECRET, workflow.SSH_READ_KEY_SECRET)


def _ssh(said: str, remote: Remote, s: _Said) -> MlciError | None:
    """The failures of DVC's SSH remote (asyncssh's words), or None."""
    name, where, quoted = remote.name or "NAME", s.where, s.quoted
    if "Passphrase must be specified" in said:
        return UsageError(
            f"the SSH key for {where} is protected by a passphrase, and nothing gives DVC "
            f"the passphrase in CI: use a deploy key without one (`ssh-keygen -t ed25519 "
            f"-N '' -f dvc_deploy_key`, its .pub in the server's authorized_keys) as the "
            f"secret {workflow.SSH_KEY_SECRET} {_SSH_KEY_WHERE}; or give DVC the passphrase "
            f'from a secret: `dvc remote modify --local {name} passphrase "$SSH_PASSPHRASE"` '
            f"({quoted})"
        )
    if "Incorrect passphrase" in said:
        return UsageError(
            f"the passphrase of the SSH key for {where} is wrong: fix the secret that "
            f"`dvc remote modify --local {name} passphrase` reads, or use a deploy key "
            f"without a passphrase ({quoted})"
        )
    denied = re.search(r"Permission denied for user (\S+) on host (\S+?):", said)
    if denied:
        user, host = denied.groups()
        return ExternalError(
            f"{where} refused the SSH login of user {user} on {host}. The server does not "
            f"say why: no key reached DVC (none in ~/.ssh/ and no keyfile), the key is not "
            f"in ~{user}/.ssh/authorized_keys there, or the user is wrong. Put the private "
            f"key in the secret {workflow.SSH_KEY_SECRET} {_SSH_KEY_WHERE}, its public half "
            f"in the server's authorized_keys, and check the user in the remote's URL "
            f"(`dvc remote modify {name} user ...`) ({quoted})"
        )
    if remote.kind.scheme == "ssh" and re.search(r" - Permission denied$", said, flags=re.M):
        return ExternalError(
            f"{where} let the user log in but not read {remote.bucket or 'its path'} "
            f"(SFTP said: {quoted}): fix the path in the remote's URL, or give the user read "
            f"permission on it there"
        )
    return None


def ssh_host_key_message(remote: Remote, host: str, port: int, said: str) -> str:
    """OpenSSH does not know, or no longer recognises, the host key of the SSH remote."""
    changed = "IDENTIFICATION HAS CHANGED" in said
    problem = (
        "presents a host key that differs from the one in known_hosts (a new server, or "
        "someone in between)"
        if changed
        else "presents a host key that is not in known_hosts"
    )
    target = host if port == 22 else f"[{host}]:{port}"
    return (
        f"the SSH server of {remote.shown} {problem}, so mlci does not let DVC connect "
        f"(DVC itself does not check host keys). Add the server's key to ~/.ssh/known_hosts: "
        f"`ssh-keyscan -p {port} {host}` on a trusted machine, check its fingerprint "
        f"(`ssh-keygen -lf`) against the server's, and store the line ({target} TYPE KEY) "
        f"in the configuration variable {workflow.SSH_KNOWN_HOSTS_VARIABLE}, which the "
        f"workflows of `mlci init` append to known_hosts"
    )


# -- HTTP --------------------------------------------------------------------------------------

_HTTP_WHERE = ci_secrets(
    " and ".join(s.secret for s in workflow.HTTP_SECRETS),
    " and ".join(s.secret for s in workflow.HTTP_READ_SECRETS),
)


def _http_set(remote: Remote) -> str:
    name = remote.name or "NAME"
    return (
        f'`dvc remote modify --local {name} auth basic`, `... user "$DVC_HTTP_USER"` and '
        f'`... password "$DVC_HTTP_PASSWORD"` (or auth custom with custom_auth_header and '
        f"password) {_HTTP_WHERE}"
    )


def _http(said: str, remote: Remote, s: _Said) -> MlciError | None:
    """DVC's HTTP remote (and WebDAV's) set to ask for auth without what it needs."""
    if "HTTP 'basic' authentication require" in said or "HTTP 'custom' authentication" in said:
        return UsageError(http_config_message(remote, s.where))
    return None


def http_config_message(remote: Remote, where: str) -> str:
    """The remote asks for auth but lacks the user, password or header."""
    auth = remote.options.get("auth", "basic")
    needs = "custom_auth_header and password" if auth == "custom" else "user and password"
    return (
        f"the HTTP remote {where} has auth {auth} but not its {needs}: set them in the CI "
        f"job with {_http_set(remote)}"
    )


def http_status_message(remote: Remote, where: str, status: int, url: str) -> str | None:
    """What an HTTP answer to one of the remote's objects means, or None (found, or 404:
    the data is missing, which the caller says)."""
    shown = redact_url(url)
    auth = remote.options.get("auth")
    if status == 401:
        why = (
            "no credentials are configured for it (no auth in .dvc/config.local)"
            if not auth
            else "the user or password (or the custom header's value) is wrong"
        )
        return (
            f"{where} answered 401 Unauthorized for {shown}: {why}. DVC takes this for "
            f"missing data, mlci asked again. Set the credentials in the CI job with "
            f"{_http_set(remote)}"
        )
    if status == 403:
        return (
            f"{where} answered 403 Forbidden for {shown}: the server refuses these "
            f"credentials (a wrong user or password where the server answers 403, or a user "
            f"without read permission on the path). DVC takes this for missing data, mlci "
            f"asked again. Check the credentials set with {_http_set(remote)}, and that the "
            f"user may read the path on the server"
        )
    if status >= 500:
        return f"{where} answered {status} for {shown}: the server failed; try again later"
    return None


def credentials_problem(remote: Remote, env: Mapping[str, str] | None) -> MlciError | None:
    """Before DVC runs: credentials that cannot work and that DVC would not name (gcsfs
    takes a key it cannot read for no key at all, and goes on anonymously)."""
    check = _BEFORE_PULL.get(remote.kind.scheme)
    return check(remote, os.environ if env is None else env) if check else None


@dataclass(frozen=True)
class _Said:
    """What every message by kind quotes: the remote as named, DVC's line, the job's env."""

    where: str
    quoted: str
    env: Mapping[str, str] | None


# -- Google Cloud Storage --------------------------------------------------------------------

_GCS_KEY = "GOOGLE_APPLICATION_CREDENTIALS"
_GCS_KEY_FIX = (
    "write the secret's JSON to a file and point the variable at it, e.g. "
    '`printf \'%s\' "$GCP_SERVICE_ACCOUNT_KEY" > "$RUNNER_TEMP/gcp-key.json"` and '
    "GOOGLE_APPLICATION_CREDENTIALS=$RUNNER_TEMP/gcp-key.json (or `dvc remote modify --local "
    "{name} credentialpath FILE`)"
)


def _gcs_key_problem(remote: Remote, env: Mapping[str, str]) -> MlciError | None:
    option = remote.options.get("credentialpath")
    value = option or env.get(_GCS_KEY)
    if not value:
        return None  # workload identity, gcloud's login or the metadata server may serve
    named = (
        f"credentialpath of the DVC remote {remote.shown}"
        if option
        else f"{_GCS_KEY} (for the DVC remote {remote.shown})"
    )
    fix = _GCS_KEY_FIX.format(name=remote.name or "NAME") + _where((_GCS_KEY,), env)
    if re.search(r'\{\s*"', value):  # DVC keeps credentialpath as a path: ../{"type": ...
        return UsageError(
            f"{named} holds a key's JSON, not the path of a key file: Google's libraries "
            f"would look for a file of that name, not find it, and go on without "
            f"credentials; {fix}"
        )
    path = Path(value)
    if not path.is_file():
        return UsageError(f"{named} names {value}, which is not a file on this runner; {fix}")
    try:
        kind = json.loads(path.read_bytes()[:1_000_000]).get("type")
    except (OSError, ValueError, AttributeError):
        kind = None
    if not isinstance(kind, str):
        empty = (
            " (it is empty: is the secret set, and does this job get it?)"
            if not (path.stat().st_size)
            else ""
        )
        return UsageError(
            f"{named} names {value}, which is not a Google credentials file (JSON with "
            f'"type": "service_account"){empty}; {fix}'
        )
    return None


def _gcs(said: str, remote: Remote, s: _Said) -> MlciError | None:
    if re.search(r"invalid_grant|Invalid Credentials|RefreshError", said):
        return ExternalError(
            f"Google refused the service-account key of {s.where}: the key was deleted or "
            f"disabled, or its account was: create a new key (IAM > Service accounts > "
            f"Keys) and store its JSON as the secret{_where((_GCS_KEY,), s.env)} ({s.quoted})"
        )
    if "Anonymous caller does not have" in said:
        return ExternalError(
            f"DVC found no credentials for {s.where} and asked Google as an anonymous "
            f"caller: {secrets_hint(remote, s.env)} ({s.quoted})"
        )
    if re.search(r"does not have storage\.\w+\.\w+ access|Forbidden: ", said):
        return ExternalError(
            f"{s.where} refused the service account (403): it may not read "
            f"{remote.bucket or 'the bucket'}; grant it the role Storage Object Viewer "
            f"(storage.objects.get and storage.objects.list) on the bucket ({s.quoted})"
        )
    if re.search(r"unexpected error - b/[^/\s]+/o$", said, flags=re.M):
        return _missing_bucket(remote, s.where, s.quoted)
    return None


# -- Azure Blob Storage ----------------------------------------------------------------------

_AZURE_WAYS = (
    "AZURE_STORAGE_CONNECTION_STRING (the account key's connection string, or a SAS's: "
    "BlobEndpoint=...;SharedAccessSignature=...); or AZURE_STORAGE_ACCOUNT with "
    "AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN; or a service principal: `dvc remote "
    "modify --local {name} account_name ACCOUNT` with AZURE_CLIENT_ID, AZURE_CLIENT_SECRET "
    "and AZURE_TENANT_ID (or OIDC: azure/login)"
)


def _azure(said: str, remote: Remote, s: _Said) -> MlciError | None:
    ways = _AZURE_WAYS.format(name=remote.name or "NAME")
    where_secret = _where(("AZURE_STORAGE_CONNECTION_STRING",), s.env)
    if re.search(r"requires either account_name or connection_string|DefaultAzureCredential", said):
        return ExternalError(
            f"DVC found no credentials for {s.where}: set {ways}{where_secret} ({s.quoted})"
        )
    if "Connection string missing required connection details" in said:
        return UsageError(
            f"AZURE_STORAGE_CONNECTION_STRING of {s.where} is not a connection string: "
            f"store the whole 'Connection string' of the storage account's access key "
            f"(DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...;EndpointSuffix="
            f"core.windows.net), not the key alone{where_secret} ({s.quoted})"
        )
    if re.search(
        r"AuthorizationPermissionMismatch|not authorized to perform this operation using", said
    ):
        return ExternalError(
            f"the credentials of {s.where} are valid but may not read the container "
            f"{remote.bucket or ''}: a SAS needs the permissions read and list (sp=rl), a "
            f"service principal the role Storage Blob Data Reader on the account or "
            f"container ({s.quoted})"
        )
    if re.search(r"AuthenticationFailed|AuthorizationFailure|failed to authenticate", said):
        return ExternalError(
            f"{s.where} refused the credentials (403): the account key in the connection "
            f"string is wrong or was rotated, or the SAS expired or was signed with a key "
            f"since rotated: store a fresh connection string (Storage account > Access "
            f"keys) or a new SAS{where_secret} ({s.quoted})"
        )
    return None


_BEFORE_PULL: dict[str, Callable[[Remote, Mapping[str, str]], MlciError | None]] = {
    "gs": _gcs_key_problem,
}
_BY_KIND: dict[str, Callable[[str, Remote, _Said], MlciError | None]] = {
    "gs": _gcs,
    "azure": _azure,
    "ssh": _ssh,
    "http": _http,
    "webdav": _http,
}
