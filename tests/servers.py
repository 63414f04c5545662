"""Real servers on 127.0.0.1 for the tests: a free port, the process, a wait until it listens."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Ports for servers the tests start: below the OS's ephemeral range (Linux: 32768 up), which
# it gives to clients' connections and to `bind(("", 0))`, in a slice of its own for each
# pytest-xdist worker. A port checked free here could otherwise be handed to another worker or
# to a connection in the seconds before `mlflow server` binds it.
_PORTS = range(10000, 32768)
_WORKERS = 16  # slices; workers beyond that share them (and the check still holds)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, from this worker's slice."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = len(_PORTS) // _WORKERS
    start = _PORTS.start + (worker % _WORKERS) * size
    for port in random.sample(range(start, start + size), size):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue  # in use, or a closed connection's TIME_WAIT
            return port
    raise RuntimeError(f"no free port in {start}..{start + size - 1}")


def wait_until_listening(port: int, process: subprocess.Popen[Any], what: str) -> None:
    """Wait (up to a minute) until `process` listens on `port` of 127.0.0.1."""
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.05)


@contextlib.contextmanager
def moto_server(env: Mapping[str, str] | None = None) -> Iterator[str]:
    """moto's S3-compatible (and IAM) server; yields its URL. `env` configures moto."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(port, process, "moto's server")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def postgres_binaries() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), if installed."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on 127.0.0.1; yields its URI (trust auth, user mlci).

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` user,
    in a folder of its own under /tmp (pytest's folders are closed to other users)."""
    binaries = postgres_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="mlci-postgres-"))
    data = folder / "data"
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    port = free_port()
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"

    def run(*args: str) -> None:
        subprocess.run([*as_owner, *args], check=True, capture_output=True, cwd=folder)

    run(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "mlci", "--no-sync")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-o", options,
        "-w", "start")  # fmt: skip
    try:
        yield f"postgresql+psycopg://mlci@127.0.0.1:{port}/postgres"
    finally:
        run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    """moto's S3 server with IAM on: `reader` may do anything on S3, `nobody` nothing."""

    url: str
    reader: tuple[str, str]  # access key id, secret
    nobody: tuple[str, str]

    def client(self, service: str = "s3", keys: tuple[str, str] | None = None) -> Any:
        """A boto3 client for this server, as `reader` unless `keys` are given."""
        import boto3

        key_id, secret = keys or self.reader
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
        )


@contextlib.contextmanager
def s3_with_iam() -> Iterator[S3Server]:
    """moto's server with the users of `S3Server`; from then on it checks every request's
    signature and permissions, so a wrong key, a wrong secret and a key without permission
    each get the real 403."""
    with moto_server() as url:
        iam = S3Server(url, ("admin", "admin"), ("admin", "admin")).client("iam")
        keys = {}
        for user in ("reader", "nobody"):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        allow_all = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        policy = json.dumps({"Version": "2012-10-17", "Statement": [allow_all]})
        iam.put_user_policy(UserName="reader", PolicyName="s3", PolicyDocument=policy)
        enforce = urllib.request.Request(
            f"{url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        urllib.request.urlopen(enforce, timeout=10).read()
        yield S3Server(url, keys["reader"], keys["nobody"])


class SilentServer:
    """A TCP server on 127.0.0.1 that accepts connections and never answers, as a
    blackholed endpoint or a stuck proxy does. It reads what clients send, and counts the
    connections still open: a client that was killed closes its end."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.accepted = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def open_connections(self) -> int:
        with self._lock:
            return len(self._open)

    def wait_all_closed(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.open_connections() == 0

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self._open.add(conn)
                self.accepted += 1
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while conn.recv(65536):
                pass  # the request arrives; no answer ever leaves
        with self._lock:
            self._open.discard(conn)
        conn.close()

    def close(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for conn in self._open:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


class _TrickleHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder, each body in small pieces with a pause between them."""

    piece = 16384
    pause = 0.5

    def copyfile(self, source: Any, outputfile: Any) -> None:
        while chunk := source.read(self.piece):
            outputfile.write(chunk)
            outputfile.flush()
            time.sleep(self.pause)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def trickle_server(folder: Path, *, piece: int, pause: float) -> Iterator[str]:
    """A slow but steady HTTP file server for `folder` on 127.0.0.1: `piece` bytes, then
    `pause` seconds, and so on. Yields its URL."""
    handler = type("Trickle", (_TrickleHandler,), {"piece": piece, "pause": pause})
    serve = functools.partial(handler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class SshServer:
    """Debian's sshd on 127.0.0.1 with throwaway keys; the login is this user's (root in CI
    containers), allowed with `key` (no passphrase) and `locked_key` (passphrase
    `passphrase`), refused with `other_key`. `known_hosts` lists the server's host key.
    On `denied_port` SFTP refuses to read anything, as for a path the user may not read
    (root reads every path, so permissions cannot do it)."""

    host: str
    port: int
    user: str
    key: Path
    locked_key: Path
    other_key: Path
    passphrase: str
    known_hosts: Path
    denied_port: int  # the same server, whose SFTP refuses to open or list any path


def sshd_program() -> str | None:
    """Debian's sshd (package openssh-server), if installed."""
    found = shutil.which("sshd") or "/usr/sbin/sshd"
    return found if Path(found).is_file() else None


def _keygen(path: Path, passphrase: str = "") -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", passphrase, "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
    )


@contextlib.contextmanager
def ssh_server(folder: Path) -> Iterator[SshServer]:
    """sshd in the foreground on a free port, its keys and config in `folder`."""
    program = sshd_program()
    if program is None:
        raise RuntimeError("sshd is not installed (Debian: apt-get install openssh-server)")
    for name in ("host_key", "user_key", "other_key"):
        _keygen(folder / name)
    _keygen(folder / "locked_key", "passphrase")
    authorized = folder / "authorized_keys"
    authorized.write_text(
        (folder / "user_key.pub").read_text() + (folder / "locked_key.pub").read_text()
    )
    port, denied = free_port(), free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nPort {denied}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {authorized}\nPidFile {folder / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
        "LogLevel ERROR\n"
        f"Match LocalPort {denied}\n  ForceCommand internal-sftp -P open,opendir,stat,lstat\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation folder
    with (folder / "sshd.log").open("w") as log:
        process = subprocess.Popen(
            [program, "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=log
        )
    try:
        wait_until_listening(port, process, "sshd")
        host_key = (folder / "host_key.pub").read_text().split()[:2]
        known = folder / "known_hosts"
        known.write_text(
            "".join(f"[127.0.0.1]:{one} {' '.join(host_key)}\n" for one in (port, denied))
        )
        import getpass

        yield SshServer(
            "127.0.0.1",
            port,
            getpass.getuser(),
            folder / "user_key",
            folder / "locked_key",
            folder / "other_key",
            "passphrase",
            known,
            denied,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass(frozen=True)
class HttpStore:
    """A DVC remote over HTTP on 127.0.0.1 that asks for credentials: basic auth as
    `reader`/`password`, or the header `X-Token: token`, may read; `nobody`/`password`
    is a known user without access (403); anything else gets 401."""

    url: str
    user: str = "reader"
    password: str = "password"
    header: str = "X-Token"
    token: str = "token"


class _StoreHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder (a DVC remote's layout) to the credentials of `HttpStore` only."""

    def _allowed(self) -> bool:
        import base64

        store = HttpStore("")
        if self.headers.get(store.header) == store.token:
            return True
        basic = self.headers.get("Authorization", "")
        user = base64.b64decode(basic.removeprefix("Basic ")).decode() if basic else ""
        if user == f"{store.user}:{store.password}":
            return True
        code = 403 if user == f"nobody:{store.password}" else 401
        self.send_response(code)
        if code == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="dvc"')
        self.send_header("Content-Length", "0")
        self.end_headers()
        return False

    def send_head(self) -> Any:
        if not self._allowed():
            return None
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def http_store(folder: Path) -> Iterator[HttpStore]:
    """`folder` served as a DVC remote behind credentials; yields its `HttpStore`."""
    serve = functools.partial(_StoreHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), serve)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpStore(f"http://127.0.0.1:{server.server_address[1]}")
    finally:
        server.shutdown()
        server.server_close()


def _free_block(count: int) -> int:
    """The first of `count` consecutive free ports of this worker's slice."""
    for _ in range(50):
        first = free_port()
        if all(_is_free(port) for port in range(first, first + count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def ray_head_start(folder: Path, first: int, resources: Mapping[str, float]) -> list[str]:
    """`ray start --head`'s arguments (after `ray`) for a head on 127.0.0.1 whose ports are
    the 40 from `first` (the dashboard's is `first`) and whose files are in `folder`."""
    ports = iter(range(first + 1, first + 10))
    return [
        "start", "--head", "--disable-usage-stats",
        "--num-cpus", "2", "--num-gpus", "1", "--resources", json.dumps(dict(resources)),
        "--object-store-memory", str(80_000_000), "--temp-dir", str(folder),
        "--dashboard-host", "127.0.0.1", "--dashboard-port", str(first),
        "--port", str(next(ports)), "--ray-client-server-port", str(next(ports)),
        "--dashboard-agent-listen-port", str(next(ports)),
        "--dashboard-agent-grpc-port", str(next(ports)),
        "--node-manager-port", str(next(ports)), "--object-manager-port", str(next(ports)),
        "--metrics-export-port", str(next(ports)), "--runtime-env-agent-port", str(next(ports)),
        "--min-worker-port", str(first + 10), "--max-worker-port", str(first + 39),
    ]  # fmt: skip


@contextlib.contextmanager
def ray_head(folder: Path, *, resources: Mapping[str, float]) -> Iterator[str]:
    """A real Ray head on 127.0.0.1 (CPU only: 2 CPUs, a small object store), the URL of
    its Jobs API. One GPU is declared (Ray schedules on the count; no job here uses CUDA)
    with `resources` besides. Every port is from this worker's slice, so heads of several
    workers live side by side; it runs as `ray start --block` in a process group of its
    own, stopped as a whole at the end (`ray stop` would stop every head on the machine)."""
    ray = Path(sys.executable).parent / "ray"
    dashboard = _free_block(40)
    command = [str(ray), *ray_head_start(folder, dashboard, resources), "--block"]
    # The jobs' `python` is this interpreter (the wrapper and the test trainings need only
    # the standard library).
    env = {**os.environ, "PATH": f"{ray.parent}{os.pathsep}{os.environ['PATH']}"}
    log = (folder / "head.log").open("wb")
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_until_listening(dashboard, process, "Ray's head")
        url = f"http://127.0.0.1:{dashboard}"
        _wait_for_jobs_api(url, process)
        yield url
    finally:
        # `ray start --block` stops what it started on SIGTERM; what is left of the group
        # after that (Ray's workers linger) is killed.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()


def _wait_for_jobs_api(url: str, process: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/api/jobs/", timeout=2) as answer,
        ):
            if answer.status == 200:
                return
        time.sleep(0.5)
    raise RuntimeError("Ray's Jobs API did not answer in a minute")


@dataclass(frozen=True)
class RayNodeHost:
    """A machine for Ray's local node provider (`provider: {type: local}`): sshd on
    127.0.0.1 in a PID and mount namespace of its own, where root's home is `home` (its
    .bashrc puts this Python's `ray` first on PATH, and Ray's /tmp/ray in the folder).
    `ray down` runs `ray stop` on the head, which stops every Ray process it can see:
    there, only those started through this sshd, not the other heads of the machine."""

    port: int
    key: Path
    home: Path
    namespace: str  # /proc/<pid>/ns/pid of the processes inside

    def proxy_command(self) -> str:
        """An ssh ProxyCommand to this sshd: Ray's cluster config has no SSH port."""
        return shlex.join([
            "ssh", "-i", str(self.key), "-p", str(self.port), "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-W", f"127.0.0.1:{self.port}", "root@127.0.0.1",
        ])  # fmt: skip

    def cluster_config(self, folder: Path, resources: Mapping[str, float]) -> dict[str, Any]:
        """A Ray cluster config whose head is this machine: a head of `ray_head_start`
        (ports of this worker's slice, its files in `folder`), no workers."""
        start = ray_head_start(folder, _free_block(40), resources)
        return {
            "cluster_name": "unnamed",  # mlci names each run's cluster
            "max_workers": 0,
            "idle_timeout_minutes": 5,
            "provider": {"type": "local", "head_ip": "127.0.0.1", "worker_ips": []},
            "auth": {
                "ssh_user": "root",
                "ssh_private_key": str(self.key),
                "ssh_proxy_command": self.proxy_command(),
            },
            "file_mounts": {},
            "initialization_commands": [],
            "setup_commands": [],
            "head_setup_commands": [],
            "worker_setup_commands": [],
            # Not Ray's default, which begins with `ray stop` and uses the default ports.
            "head_start_ray_commands": [
                shlex.join(["ray", *start]) + " --autoscaling-config=~/ray_bootstrap_config.yaml"
            ],
            "worker_start_ray_commands": [],
        }

    def ray_processes(self) -> list[str]:
        """The command lines of the Ray heads' GCS and raylets running inside."""
        found = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                if entry.name.isdigit() and str((entry / "ns/pid").readlink()) == self.namespace:
                    line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                    if "gcs_server" in line or "/raylet" in line:
                        found.append(line)
        return found


def can_host_ray_nodes() -> str | None:
    """Why RayNodeHost cannot run here, or None."""
    if sys.platform != "linux" or os.geteuid() != 0:
        return "needs root on Linux (PID and mount namespaces)"
    missing = [name for name in ("ssh", "rsync", "unshare") if shutil.which(name) is None]
    if sshd_program() is None or missing:
        return f"needs {', '.join(missing) or 'sshd'} (Debian: openssh-server, rsync)"
    return None


@contextlib.contextmanager
def ray_node_host(folder: Path) -> Iterator[RayNodeHost]:
    """A RayNodeHost in `folder`; at the end everything started inside it is killed."""
    program = sshd_program()
    assert program is not None, can_host_ray_nodes()
    _keygen(folder / "host_key")
    _keygen(folder / "user_key")
    home = folder / "home"
    home.mkdir()
    (folder / "tmp").mkdir()  # Ray's, for the local provider's state on the head
    (home / ".bashrc").write_text(
        f'export PATH={Path(sys.executable).parent}:"$PATH" RAY_TMPDIR={folder / "tmp"}\n'
    )
    passwd = folder / "passwd"  # root's home is `home`, in the namespace only
    passwd.write_text(
        "".join(
            f"root:x:0:0:root:{home}:/bin/bash\n" if line.startswith("root:") else line
            for line in Path("/etc/passwd").read_text().splitlines(keepends=True)
        )
    )
    port = free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'user_key.pub'}\nPidFile none\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "StrictModes no\nPermitRootLogin prohibit-password\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    inside = f"mount --bind {passwd} /etc/passwd && exec {program} -D -e -f {config}"
    with (folder / "sshd.log").open("w") as log:
        process = subprocess.Popen(
            ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c", inside],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        wait_until_listening(port, process, "sshd in its namespace")
    except BaseException:
        process.kill()  # --kill-child: sshd goes too
        process.wait()
        raise
    # sshd, the namespace's PID 1 (unshare itself ignores SIGTERM while it waits for it)
    [sshd] = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    try:
        yield RayNodeHost(
            port, folder / "user_key", home, str(Path(f"/proc/{sshd}/ns/pid").readlink())
        )
    finally:
        # When the namespace's PID 1 dies, the kernel kills all inside.
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(sshd), signal.SIGTERM)
        process.wait(timeout=10)
