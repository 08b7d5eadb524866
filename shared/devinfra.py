"""Start and stop the local PostgreSQL server and Kafka broker that dev and CI runs use.

No Docker (ARCHITECTURE.md §6): PostgreSQL runs from the machine's Debian binaries as the
``postgres`` system user, and a single-node KRaft Kafka broker runs on the machine's Java 17
from jars that ``mvn`` resolves from Maven Central (``deploy/kafka/pom.xml``). Everything lives
under the repository's ``.local/`` folder (gitignored)::

    .local/pg/data              PostgreSQL cluster (owned by postgres)
    .local/pg/postgres.log      server log
    .local/kafka/libs/          broker jars (fetched once)
    .local/kafka/data/          KRaft log dir (formatted once)
    .local/kafka/server.properties, log4j2.properties, server.log, kafka.pid

If ``DATABASE_URL`` / ``KAFKA_BOOTSTRAP_SERVERS`` are set, those servers are used and nothing
is started for them. Every ``ensure_*`` function is idempotent and safe to call from several
processes at once (a file lock serialises them).

Run as ``python -m shared.devinfra up|down|status``.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

import typer

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Repository root: this file is ``<root>/shared/devinfra.py``.
REPO_ROOT: Final = Path(__file__).resolve().parent.parent
#: Gitignored folder holding all local server state.
LOCAL_DIR: Final = REPO_ROOT / ".local"

# --- PostgreSQL -------------------------------------------------------------------------------

#: Loopback address every local server binds to.
HOST: Final = "127.0.0.1"
#: TCP port of the local PostgreSQL server (not 5432, so a Debian cluster does not clash).
PG_PORT: Final = 55432
#: Superuser role, its password, and the database the services share (one schema each).
PG_USER: Final = "cfp"
PG_PASSWORD: Final = "cfp"
PG_DATABASE: Final = "cfp"
#: SQLAlchemy async URL of the local server.
DEFAULT_DATABASE_URL: Final = (
    f"postgresql+asyncpg://{PG_USER}:{PG_PASSWORD}@{HOST}:{PG_PORT}/{PG_DATABASE}"
)
#: System user that owns the cluster and runs the server (PostgreSQL refuses to run as root).
PG_OS_USER: Final = "postgres"
#: Where Debian installs the server binaries; the newest ``<version>/bin`` is used.
PG_LIB_DIR: Final = Path("/usr/lib/postgresql")
#: Server settings for a dev box that must also survive a load test.
PG_SETTINGS: Final[Mapping[str, str]] = {
    "listen_addresses": f"'{HOST}'",
    "port": str(PG_PORT),
    "max_connections": "300",
    "shared_buffers": "'256MB'",
    "work_mem": "'8MB'",
    "maintenance_work_mem": "'128MB'",
    # Losing the last few hundred ms of commits on a crash is fine locally; corruption is not,
    # so fsync stays on.
    "synchronous_commit": "off",
    "max_wal_size": "'2GB'",
    "checkpoint_timeout": "'15min'",
    "log_min_duration_statement": "'1s'",
    "log_line_prefix": "'%m [%p] %q%u@%d '",
    "timezone": "'UTC'",
}
PG_READY_TIMEOUT_SECONDS: Final = 60.0

# --- Kafka ------------------------------------------------------------------------------------

#: Client (PLAINTEXT) and controller listener ports of the local broker.
KAFKA_PORT: Final = 59092
KAFKA_CONTROLLER_PORT: Final = 59093
DEFAULT_KAFKA_BOOTSTRAP: Final = f"{HOST}:{KAFKA_PORT}"
#: The pom that resolves ``org.apache.kafka:kafka_2.13`` and its runtime dependencies.
KAFKA_POM: Final = REPO_ROOT / "deploy" / "kafka" / "pom.xml"
KAFKA_DIR: Final = LOCAL_DIR / "kafka"
KAFKA_LIBS: Final = KAFKA_DIR / "libs"
KAFKA_DATA: Final = KAFKA_DIR / "data"
KAFKA_PROPERTIES: Final = KAFKA_DIR / "server.properties"
KAFKA_LOG4J: Final = KAFKA_DIR / "log4j2.properties"
KAFKA_LOG: Final = KAFKA_DIR / "server.log"
KAFKA_PID: Final = KAFKA_DIR / "kafka.pid"
#: Class-data-sharing archive of the broker's classes: written when the first broker exits
#: cleanly, then mapped by later starts (saves 1-2 s of class loading per start).
KAFKA_CDS_ARCHIVE: Final = KAFKA_DIR / "kafka.jsa"
#: File in ``libs/`` holding the SHA-1 of the pom the jars were fetched with.
KAFKA_LIBS_STAMP: Final = ".pom.sha1"
#: JVM heap of the broker. Every test run creates the platform's topics under a prefix of
#: its own (and deletes them after); 512 MB ran out once ~16,000 partitions had piled up.
KAFKA_HEAP: Final = ("-Xms512m", "-Xmx1536m")
KAFKA_READY_TIMEOUT_SECONDS: Final = 90.0
KAFKA_STOP_TIMEOUT_SECONDS: Final = 30.0
MVN_TIMEOUT_SECONDS: Final = 900.0

_LOG4J2_CONFIG: Final = """\
# Written by shared/devinfra.py: warnings and errors only, to stdout (server.log).
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = WARN
rootLogger.appenderRef.out.ref = STDOUT
"""


class InfraError(RuntimeError):
    """A local server could not be installed, started or reached."""


# --- helpers ----------------------------------------------------------------------------------


def _run_sync(factory: Callable[[], Awaitable[T]]) -> T:
    """Run the coroutine made by ``factory`` to completion, even inside a running loop.

    Args:
        factory: zero-argument callable returning an awaitable.

    Returns:
        The awaitable's result.
    """

    async def main() -> T:
        return await factory()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # Called from async code (e.g. a test): run on a private loop in a worker thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def _port_open(port: int, host: str = HOST, timeout_seconds: float = 0.5) -> bool:
    """Return whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_seconds):
            return True
    except OSError:
        return False


def _pid_alive(pid: int) -> bool:
    """Return whether process ``pid`` exists (and is not a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _proc_user(pid: int) -> str | None:
    """Return the user name owning process ``pid``, or None if unknown."""
    import pwd

    try:
        uid = Path(f"/proc/{pid}").stat().st_uid
        return pwd.getpwuid(uid).pw_name
    except (OSError, KeyError):
        return None


@contextlib.contextmanager
def _file_lock(name: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``.local/<name>.lock`` for the ``with`` body."""
    LOCAL_DIR.mkdir(parents=True, exist_ok=True)
    with (LOCAL_DIR / f"{name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, lines: int = 30) -> str:
    """Return the last ``lines`` lines of a text file ('' if missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- PostgreSQL -------------------------------------------------------------------------------


def _pg_bin_dir() -> Path:
    """Return the newest ``/usr/lib/postgresql/<version>/bin`` that has ``initdb``.

    Raises:
        InfraError: no PostgreSQL server is installed (run scripts/bootstrap.sh).
    """
    candidates = [p for p in PG_LIB_DIR.glob("*/bin") if (p / "initdb").exists()]

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in path.parent.name.split(".") if x.isdigit())

    if not candidates:
        raise InfraError(
            f"no PostgreSQL server binaries under {PG_LIB_DIR}/*/bin; run scripts/bootstrap.sh"
        )
    return max(candidates, key=version)


def _as_root() -> bool:
    return os.geteuid() == 0


def _pg_cmd(*args: str) -> list[str]:
    """Prefix a command so that it runs as the postgres system user when we are root."""
    if _as_root():
        return ["runuser", "-u", PG_OS_USER, "--", *args]
    return list(args)


def _traversable_by_postgres(path: Path) -> bool:
    """Return whether the postgres user can enter ``path`` (always True if we are not root)."""
    if not _as_root():
        return True
    result = subprocess.run(
        _pg_cmd("test", "-x", str(path)), capture_output=True, check=False, timeout=30
    )
    return result.returncode == 0


def pg_base_dir() -> Path:
    """Return the folder that holds the local cluster: ``.local/pg`` if usable.

    When running as root in a checkout that the postgres user cannot traverse (e.g. under
    ``/root``), fall back to ``/var/tmp/cfp-pg-<hash of the repo path>``.
    """
    preferred = LOCAL_DIR / "pg"
    if (preferred / "data" / "PG_VERSION").exists() or _traversable_by_postgres(REPO_ROOT):
        return preferred
    digest = hashlib.sha1(str(REPO_ROOT).encode()).hexdigest()[:10]
    return Path("/var/tmp") / f"cfp-pg-{digest}"


def _pg_socket_dir(data_dir: Path) -> Path:
    """Return the unix socket directory: the data dir, or /tmp if its path is too long."""
    # sun_path is 108 bytes including ".s.PGSQL.<port>" and the NUL.
    return data_dir if len(str(data_dir)) < 80 else Path("/tmp")


def _chown_postgres(path: Path) -> None:
    if _as_root():
        shutil.chown(path, user=PG_OS_USER, group=PG_OS_USER)


def _pg_initdb(bin_dir: Path, base: Path, data_dir: Path) -> None:
    """Create a new cluster in ``data_dir`` with ``postgres`` as bootstrap superuser.

    Raises:
        InfraError: initdb failed.
    """
    base.mkdir(parents=True, exist_ok=True)
    os.chmod(base, 0o755)
    _chown_postgres(base)
    if data_dir.exists() and not any(data_dir.iterdir()):
        data_dir.rmdir()
    started = time.monotonic()
    result = subprocess.run(
        _pg_cmd(
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            PG_OS_USER,
            "--encoding=UTF8",
            "--no-locale",
            # The socket lives in the 0700 data dir, so only postgres/root reach it.
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--no-instructions",
        ),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(base),
        timeout=300,
    )
    if result.returncode != 0:
        raise InfraError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
    log.info("postgres.initdb seconds=%.2f", time.monotonic() - started)


def _pg_write_config(data_dir: Path) -> None:
    """Write ``cfp.conf`` (our settings) and include it from postgresql.conf once."""
    settings = dict(PG_SETTINGS)
    settings["unix_socket_directories"] = f"'{_pg_socket_dir(data_dir)}'"
    conf = data_dir / "cfp.conf"
    conf.write_text(
        "# Written by shared/devinfra.py on every start; edit PG_SETTINGS there.\n"
        + "".join(f"{key} = {value}\n" for key, value in settings.items())
    )
    _chown_postgres(conf)
    main_conf = data_dir / "postgresql.conf"
    text = main_conf.read_text()
    if "include_if_exists = 'cfp.conf'" not in text:
        main_conf.write_text(text + "\ninclude_if_exists = 'cfp.conf'\n")


def _pg_ctl(bin_dir: Path, data_dir: Path, *args: str, timeout_seconds: float = 120.0) -> None:
    """Run ``pg_ctl`` on ``data_dir`` as postgres.

    Raises:
        InfraError: pg_ctl exited non-zero.
    """
    result = subprocess.run(
        _pg_cmd(str(bin_dir / "pg_ctl"), "-D", str(data_dir), *args),
        capture_output=True,
        text=True,
        check=False,
        cwd=str(data_dir),
        timeout=timeout_seconds,
    )
    if result.returncode != 0:
        raise InfraError(
            f"pg_ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}\n"
            + _tail(data_dir.parent / "postgres.log")
        )


async def _pg_bootstrap_roles(socket_dir: Path) -> None:
    """Create the ``cfp`` role and database over the unix socket if they are missing."""
    import asyncpg

    conn = await asyncpg.connect(
        host=str(socket_dir), port=PG_PORT, user=PG_OS_USER, database="postgres", timeout=30
    )
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", PG_USER):
            await conn.execute(f"CREATE ROLE {PG_USER} LOGIN SUPERUSER PASSWORD '{PG_PASSWORD}'")
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", PG_DATABASE):
            await conn.execute(f"CREATE DATABASE {PG_DATABASE} OWNER {PG_USER}")
    finally:
        await conn.close()


async def _pg_check(url: str, timeout_seconds: float) -> None:
    """Wait until ``url`` accepts a login and answers ``SELECT 1``.

    Raises:
        InfraError: no successful query within ``timeout_seconds``.
    """
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            try:
                await conn.fetchval("SELECT 1")
                return
            finally:
                await conn.close()
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            if time.monotonic() > deadline:
                raise InfraError(f"PostgreSQL at {url} is not usable: {exc}") from exc
            await asyncio.sleep(0.2)


def ensure_postgres() -> str:
    """Make sure a PostgreSQL server with the ``cfp`` role and database is running.

    Uses ``DATABASE_URL`` untouched when it is set. Otherwise initialises ``.local/pg/data``
    once (as the postgres system user), starts the server on 127.0.0.1:55432 if the port does
    not answer yet, and creates the role and database if missing. Idempotent.

    Returns:
        The SQLAlchemy async URL (``postgresql+asyncpg://...``).

    Raises:
        InfraError: binaries missing, initdb/start failed, or the server refuses the login.
    """
    external = os.environ.get("DATABASE_URL")
    if external:
        return external
    with _file_lock("pg"):
        base = pg_base_dir()
        data_dir = base / "data"
        ours_running = (data_dir / "postmaster.pid").exists() and _pg_pid(data_dir) is not None
        if _port_open(PG_PORT) and not ours_running:
            # Someone else's server on our port: use it if it accepts our login.
            _run_sync(lambda: _pg_check(DEFAULT_DATABASE_URL, 5))
            return DEFAULT_DATABASE_URL
        bin_dir = _pg_bin_dir()
        if not (data_dir / "PG_VERSION").exists():
            _pg_initdb(bin_dir, base, data_dir)
        if not ours_running:
            _pg_write_config(data_dir)
            started = time.monotonic()
            _pg_ctl(
                bin_dir,
                data_dir,
                "start",
                "-w",
                "-t",
                str(int(PG_READY_TIMEOUT_SECONDS)),
                "-l",
                str(base / "postgres.log"),
            )
            log.info("postgres.started seconds=%.2f", time.monotonic() - started)
        _run_sync(lambda: _pg_bootstrap_roles(_pg_socket_dir(data_dir)))
        _run_sync(lambda: _pg_check(DEFAULT_DATABASE_URL, PG_READY_TIMEOUT_SECONDS))
        return DEFAULT_DATABASE_URL


def _pg_pid(data_dir: Path) -> int | None:
    """Return the postmaster pid of ``data_dir`` if that process is alive."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        # Guard against a stale postmaster.pid whose pid now belongs to something else.
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return pid
    return pid if comm.startswith("postgres") else None


def stop_postgres() -> None:
    """Stop the local PostgreSQL server (``pg_ctl stop -m fast``); no-op if not running.

    Does nothing when ``DATABASE_URL`` is set (that server is not ours).

    Raises:
        InfraError: pg_ctl failed to stop it.
    """
    if os.environ.get("DATABASE_URL"):
        return
    with _file_lock("pg"):
        data_dir = pg_base_dir() / "data"
        if _pg_pid(data_dir) is None:
            return
        _pg_ctl(_pg_bin_dir(), data_dir, "stop", "-m", "fast", "-w", "-t", "60")


# --- Kafka ------------------------------------------------------------------------------------


def _kafka_classpath() -> str:
    return f"{KAFKA_LIBS}/*"


def _kafka_jars_cached(stamp: str | None = None) -> bool:
    """Return whether ``libs/`` holds the jars of the current pom (of any pom if no stamp)."""
    if not any(KAFKA_LIBS.glob("kafka_2.13-*.jar")):
        return False
    if stamp is None:
        return True
    try:
        return (KAFKA_LIBS / KAFKA_LIBS_STAMP).read_text().strip() == stamp
    except OSError:
        return False


def fetch_kafka_jars() -> Path:
    """Copy the broker jars into ``.local/kafka/libs`` with mvn, unless already there.

    The folder is stamped with the pom's SHA-1, so editing ``deploy/kafka/pom.xml`` triggers a
    new fetch. mvn's own cache (``~/.m2``) makes a re-fetch take seconds.

    Returns:
        The libs directory.

    Raises:
        InfraError: mvn is missing or failed.
    """
    stamp = hashlib.sha1(KAFKA_POM.read_bytes()).hexdigest()
    if _kafka_jars_cached(stamp):
        return KAFKA_LIBS
    # Own lock (not "kafka"): ensure_kafka calls this while holding that one.
    with _file_lock("kafka-jars"):
        if not _kafka_jars_cached(stamp):
            _mvn_copy_dependencies(stamp)
    return KAFKA_LIBS


def _mvn_copy_dependencies(stamp: str) -> None:
    """Resolve the pom's jars with mvn into a staging folder, then swap it in as ``libs/``.

    Raises:
        InfraError: mvn is missing or failed.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise InfraError("mvn not found; run scripts/bootstrap.sh")
    KAFKA_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="libs.", dir=KAFKA_DIR))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(KAFKA_POM),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=MVN_TIMEOUT_SECONDS,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            raise InfraError(f"mvn could not fetch the Kafka jars:\n{result.stdout}{result.stderr}")
        if KAFKA_LIBS.exists():
            shutil.rmtree(KAFKA_LIBS)
        (staging / KAFKA_LIBS_STAMP).write_text(stamp + "\n")
        staging.chmod(0o755)
        staging.rename(KAFKA_LIBS)  # atomic: libs/ is either complete or absent
        KAFKA_CDS_ARCHIVE.unlink(missing_ok=True)  # it is tied to the old jars
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("kafka.jars_fetched seconds=%.2f", time.monotonic() - started)


def _kafka_properties() -> str:
    return f"""\
# Written by shared/devinfra.py on every start.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}
advertised.listeners=PLAINTEXT://{HOST}:{KAFKA_PORT},CONTROLLER://{HOST}:{KAFKA_CONTROLLER_PORT}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.bootstrap.servers={HOST}:{KAFKA_CONTROLLER_PORT}
log.dirs={KAFKA_DATA}
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0
log.retention.hours=168
log.segment.bytes=67108864
num.network.threads=2
num.io.threads=4
"""


def _kafka_cluster_id() -> str:
    """Return a new random cluster id in Kafka's format (url-safe base64 of 16 bytes)."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):  # Kafka's Uuid.randomUuid() avoids these too
            return text


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise InfraError("java not found; run scripts/bootstrap.sh")
    return java


def _kafka_format() -> None:
    """Format the KRaft log dir once (``StorageTool format --standalone``).

    Raises:
        InfraError: the storage tool failed.
    """
    if (KAFKA_DATA / "meta.properties").exists():
        return
    KAFKA_DATA.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            _java(),
            "-Xmx256m",
            f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
            "-cp",
            _kafka_classpath(),
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            _kafka_cluster_id(),
            "-c",
            str(KAFKA_PROPERTIES),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    if result.returncode != 0:
        raise InfraError(f"kafka StorageTool format failed:\n{result.stdout}{result.stderr}")


def _kafka_cds_options() -> list[str]:
    """Return JVM options that use the CDS archive, or create it at exit if it is missing."""
    if KAFKA_CDS_ARCHIVE.exists():
        option = f"-XX:SharedArchiveFile={KAFKA_CDS_ARCHIVE}"
    else:
        option = f"-XX:ArchiveClassesAtExit={KAFKA_CDS_ARCHIVE}"
    # A stale or unusable archive is ignored by the JVM (-Xshare:auto); keep that quiet.
    return [option, "-Xshare:auto", "-Xlog:cds*=off", "-Xlog:class+path=off"]


def _kafka_pid() -> int | None:
    """Return the pid of our broker if it is alive, else None."""
    try:
        pid = int(KAFKA_PID.read_text().strip())
    except (OSError, ValueError):
        return None
    if not _pid_alive(pid):
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    # Guard against a recycled pid: it must be our broker.
    return pid if b"kafka.Kafka" in cmdline else None


async def _kafka_ping(bootstrap: str) -> None:
    """Fetch cluster metadata from ``bootstrap`` once (raises on failure)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        await admin.list_topics()
    finally:
        await admin.close()


def _kafka_wait(bootstrap: str, pid: int | None, timeout_seconds: float) -> None:
    """Wait until the broker answers a metadata request.

    Args:
        bootstrap: ``host:port`` list.
        pid: broker process to watch (fail fast if it dies), or None.
        timeout_seconds: give up after this long.

    Raises:
        InfraError: the process died or the broker did not answer in time.
    """
    deadline = time.monotonic() + timeout_seconds
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    while True:
        if pid is not None and not _pid_alive(pid):
            raise InfraError(f"Kafka broker exited during start-up:\n{_tail(KAFKA_LOG)}")
        if _port_open(int(port), host or HOST):
            try:
                _run_sync(lambda: _kafka_ping(bootstrap))
                return
            except Exception as exc:
                last_error: Exception | None = exc
        else:
            last_error = None
        if time.monotonic() > deadline:
            raise InfraError(
                f"Kafka at {bootstrap} did not answer within {timeout_seconds:.0f} s "
                f"({last_error!r}):\n{_tail(KAFKA_LOG)}"
            )
        time.sleep(0.2)


def ensure_kafka() -> str:
    """Make sure a Kafka broker is running and answering metadata requests.

    Uses ``KAFKA_BOOTSTRAP_SERVERS`` untouched when it is set. Otherwise fetches the jars once,
    writes ``server.properties``, formats the KRaft log dir once and starts
    ``java -cp '<libs>/*' kafka.Kafka`` in its own session (it outlives this process), unless
    the broker already answers. Idempotent.

    Returns:
        The bootstrap servers string (``127.0.0.1:59092`` by default).

    Raises:
        InfraError: java/mvn missing, formatting failed, or the broker did not come up.
    """
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        return external
    bootstrap = DEFAULT_KAFKA_BOOTSTRAP
    with _file_lock("kafka"):
        pid = _kafka_pid()
        if pid is not None or _port_open(KAFKA_PORT):
            _kafka_wait(bootstrap, pid, KAFKA_READY_TIMEOUT_SECONDS)
            return bootstrap
        fetch_kafka_jars()
        KAFKA_DIR.mkdir(parents=True, exist_ok=True)
        KAFKA_PROPERTIES.write_text(_kafka_properties())
        KAFKA_LOG4J.write_text(_LOG4J2_CONFIG)
        _kafka_format()
        started = time.monotonic()
        pid = _spawn_detached(
            [
                _java(),
                *KAFKA_HEAP,
                "-XX:+UseG1GC",
                "-XX:MaxGCPauseMillis=20",
                "-Djava.awt.headless=true",
                # Plain IPv4 sockets: the listeners are 127.0.0.1 only anyway.
                "-Djava.net.preferIPv4Stack=true",
                *_kafka_cds_options(),
                f"-Dlog4j2.configurationFile={KAFKA_LOG4J}",
                f"-Dkafka.logs.dir={KAFKA_DIR}",
                "-cp",
                _kafka_classpath(),
                "kafka.Kafka",
                str(KAFKA_PROPERTIES),
            ],
            log_file=KAFKA_LOG,
            cwd=KAFKA_DIR,
        )
        KAFKA_PID.write_text(f"{pid}\n")
        try:
            _kafka_wait(bootstrap, pid, KAFKA_READY_TIMEOUT_SECONDS)
        except InfraError:
            _terminate(pid, KAFKA_STOP_TIMEOUT_SECONDS)
            raise
        log.info("kafka.started seconds=%.2f", time.monotonic() - started)
        return bootstrap


def _spawn_detached(command: list[str], *, log_file: Path, cwd: Path) -> int:
    """Start ``command`` as a daemon: own session, not our child, output appended to a file.

    A shell in a new session backgrounds the command and exits at once, so the daemon is
    re-parented to init: it outlives this process, leaves no zombie behind, and a Ctrl-C in
    the terminal that started it does not reach it.

    Args:
        command: program and arguments.
        log_file: receives stdout and stderr (appended).
        cwd: working directory of the daemon.

    Returns:
        The daemon's pid.

    Raises:
        InfraError: the shell did not report a pid.
    """
    script = '"$@" >>"$CFP_DAEMON_LOG" 2>&1 </dev/null & echo $!'
    result = subprocess.run(
        ["sh", "-c", script, "sh", *command],
        env={**os.environ, "CFP_DAEMON_LOG": str(log_file)},
        cwd=str(cwd),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        start_new_session=True,
    )
    try:
        return int(result.stdout.strip())
    except ValueError as exc:
        raise InfraError(f"could not start {command[0]}: {result.stderr}") from exc


def _terminate(pid: int, timeout_seconds: float) -> None:
    """Send SIGTERM to ``pid``, wait up to ``timeout_seconds``, then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_seconds
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            log.warning("kafka.kill pid=%d", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.1)


def stop_kafka() -> None:
    """Stop the local broker (SIGTERM, then wait; SIGKILL after 30 s); no-op if not running.

    Does nothing when ``KAFKA_BOOTSTRAP_SERVERS`` is set (that broker is not ours).
    """
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        return
    with _file_lock("kafka"):
        pid = _kafka_pid()
        if pid is not None:
            _terminate(pid, KAFKA_STOP_TIMEOUT_SECONDS)
        KAFKA_PID.unlink(missing_ok=True)


class PrivateKafka:
    """A second single-node broker on its own ports and data dir, owned by one test.

    For tests that must stop and restart Kafka (the intake outage test): they never touch
    the shared broker on 59092 that everyone uses. The broker runs as a child process of
    the caller (not a daemon), so :meth:`stop` or the caller's exit ends it.

    Args:
        directory: holds ``server.properties``, ``data/`` and ``server.log``; created.
        port: client (PLAINTEXT) port; controller_port: KRaft controller port.
    """

    def __init__(self, directory: Path, port: int, controller_port: int) -> None:
        self.directory = directory
        self.port = port
        self.controller_port = controller_port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """``127.0.0.1:<port>``."""
        return f"{HOST}:{self.port}"

    def _properties(self) -> Path:
        text = (
            _kafka_properties()
            .replace(f"{HOST}:{KAFKA_PORT}", f"{HOST}:{self.port}")
            .replace(f"{HOST}:{KAFKA_CONTROLLER_PORT}", f"{HOST}:{self.controller_port}")
            .replace(f"log.dirs={KAFKA_DATA}", f"log.dirs={self.directory / 'data'}")
        )
        path = self.directory / "server.properties"
        path.write_text(text)
        (self.directory / "log4j2.properties").write_text(_LOG4J2_CONFIG)
        return path

    def start(self, timeout_seconds: float = KAFKA_READY_TIMEOUT_SECONDS) -> str:
        """Start the broker (formatting its log dir the first time) and wait until it answers.

        Returns:
            The bootstrap servers string.

        Raises:
            InfraError: java/mvn missing, formatting failed, or the broker did not come up.
        """
        if self.process is not None and self.process.poll() is None:
            return self.bootstrap
        fetch_kafka_jars()
        self.directory.mkdir(parents=True, exist_ok=True)
        props = self._properties()
        log4j = f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}"
        if not (self.directory / "data" / "meta.properties").exists():
            result = subprocess.run(
                [_java(), "-Xmx256m", log4j, "-cp", _kafka_classpath(), "kafka.tools.StorageTool",
                 "format", "--standalone", "-t", _kafka_cluster_id(), "-c", str(props)],
                capture_output=True, text=True, check=False, timeout=180, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if result.returncode != 0:
                raise InfraError(
                    f"kafka StorageTool format failed:\n{result.stdout}{result.stderr}"
                )
        cds = (
            [f"-XX:SharedArchiveFile={KAFKA_CDS_ARCHIVE}", "-Xshare:auto", "-Xlog:cds*=off"]
            if KAFKA_CDS_ARCHIVE.exists()
            else []
        )
        log_path = self.directory / "server.log"
        with log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                [_java(), *KAFKA_HEAP, "-XX:+UseG1GC", "-Djava.awt.headless=true",
                 "-Djava.net.preferIPv4Stack=true", *cds, log4j,
                 f"-Dkafka.logs.dir={self.directory}", "-cp", _kafka_classpath(), "kafka.Kafka",
                 str(props)],
                stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=str(self.directory),
            )  # fmt: skip
        try:
            _kafka_wait(self.bootstrap, self.process.pid, timeout_seconds)
        except InfraError as exc:
            self.stop()
            raise InfraError(f"{exc}\n{_tail(log_path)}") from exc
        return self.bootstrap

    def stop(self, timeout_seconds: float = KAFKA_STOP_TIMEOUT_SECONDS) -> None:
        """Stop the broker (SIGTERM, SIGKILL after ``timeout_seconds``); no-op if stopped."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


async def _create_topics(bootstrap: str, topics: Mapping[str, int]) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name=name, num_partitions=count, replication_factor=1)
            for name, count in topics.items()
            if name not in existing
        ]
        if missing:
            # Another process may win the race; the partition check below still applies.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
        present = [name for name in topics if name in existing]
        if present:
            described = await admin.describe_topics(present)
            grow = {
                d["topic"]: NewPartitions(total_count=topics[d["topic"]])
                for d in described
                if len(d["partitions"]) < topics[d["topic"]]
            }
            if grow:
                await admin.create_partitions(grow)
    finally:
        await admin.close()


def create_topics(bootstrap: str, topics: Mapping[str, int], *, prefix: str = "") -> None:
    """Create the missing topics with the given partition counts (replication factor 1).

    Idempotent: existing topics are kept; one with fewer partitions than asked is grown.

    Args:
        bootstrap: Kafka bootstrap servers, ``host:port[,host:port]``.
        topics: topic name -> partition count (>= 1).
        prefix: prepended to every name (isolates a test run's topics).

    Raises:
        aiokafka.errors.KafkaError: the broker rejected a request.
    """
    wanted = {prefix + name: count for name, count in topics.items()}
    _run_sync(lambda: _create_topics(bootstrap, wanted))


async def _delete_topics(bootstrap: str, prefix: str) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30000)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
        return len(names)
    finally:
        await admin.close()


def delete_topics(bootstrap: str, *, prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix`` (a test run's own topics).

    Args:
        bootstrap: Kafka bootstrap servers.
        prefix: non-empty name prefix, e.g. ``t1a2b3c4.``; the platform's own topics have
            none, so they can never match.

    Returns:
        How many topics were deleted.

    Raises:
        ValueError: an empty prefix (that would delete the platform's topics).
    """
    if not prefix:
        raise ValueError("refusing to delete topics without a prefix")
    return _run_sync(lambda: _delete_topics(bootstrap, prefix))


def platform_topics() -> dict[str, int]:
    """Return every topic of the platform with its partition count (incl. dead letters)."""
    from shared.events.registry import all_topics

    return all_topics()


# --- status and CLI ---------------------------------------------------------------------------


def status() -> dict[str, Any]:
    """Describe the local servers.

    Returns:
        ``{"postgres": {...}, "kafka": {...}}``; each has ``url``/``bootstrap``, ``external``
        (configured by env, not ours), ``running`` (port answers), ``pid`` and its ``user``.
    """
    pg_data = pg_base_dir() / "data"
    pg_pid = _pg_pid(pg_data)
    kafka_pid = _kafka_pid()
    return {
        "postgres": {
            "url": os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            "external": bool(os.environ.get("DATABASE_URL")),
            "running": _port_open(PG_PORT),
            "pid": pg_pid,
            "user": _proc_user(pg_pid) if pg_pid else None,
            "data_dir": str(pg_data),
        },
        "kafka": {
            "bootstrap": os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or DEFAULT_KAFKA_BOOTSTRAP,
            "external": bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
            "running": _port_open(KAFKA_PORT),
            "pid": kafka_pid,
            "user": _proc_user(kafka_pid) if kafka_pid else None,
            "data_dir": str(KAFKA_DATA),
            "jars_cached": _kafka_jars_cached(),
        },
    }


app = typer.Typer(help="Local PostgreSQL and Kafka for development and CI.", no_args_is_help=True)


@app.command()
def up(topics: bool = typer.Option(True, help="Create the platform's topics.")) -> None:
    """Start PostgreSQL and Kafka (if needed), create the topics, print the env lines."""
    started = time.monotonic()
    database_url = ensure_postgres()
    pg_seconds = time.monotonic() - started
    bootstrap = ensure_kafka()
    kafka_seconds = time.monotonic() - started - pg_seconds
    if topics:
        create_topics(bootstrap, platform_topics())
    typer.echo(f"# postgres ready in {pg_seconds:.1f} s, kafka in {kafka_seconds:.1f} s", err=True)
    typer.echo(f"DATABASE_URL={database_url}")
    typer.echo(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap}")


@app.command()
def down() -> None:
    """Stop the local Kafka broker and PostgreSQL server."""
    stop_kafka()
    stop_postgres()
    typer.echo("stopped", err=True)


@app.command(name="status")
def status_command() -> None:
    """Print what runs."""
    for name, info in status().items():
        fields = " ".join(f"{key}={value}" for key, value in info.items())
        typer.echo(f"{name}: {fields}")


def main() -> None:
    """Run the CLI with INFO logging to stderr; an InfraError exits 1 with its message."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        app()
    except InfraError as exc:
        typer.echo(f"devinfra: {exc}", err=True)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()


# --- scratch databases (tests and benchmarks) ---------------------------------------------------


def _plain_dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://", 1)


def create_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` and return its URL.

    Args:
        server_url: any database URL on the server (``postgresql+asyncpg://...``).
        name: new database name (letters, digits, underscores).

    Raises:
        ValueError: an unsafe name. asyncpg.DuplicateDatabaseError: it exists.
    """
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(_plain_dsn(server_url))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    _run_sync(run)
    return server_url.rsplit("/", 1)[0] + "/" + name


def drop_database(server_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, ending its connections."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")

    async def run() -> None:
        import asyncpg

        conn = await asyncpg.connect(_plain_dsn(server_url))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_sync(run)
