#!/usr/bin/env bash
# Install what a fresh Debian 12 machine lacks to run and test the platform, then pre-fetch
# the Kafka broker jars. Idempotent: when everything is present it only checks (a few seconds).
#
#   uv (pip install uv)  ->  uv sync --frozen
#   PostgreSQL server    (apt; no Debian cluster is created or started: shared/devinfra.py
#                         runs its own on 127.0.0.1:55432)
#   Java 17 + Maven      (apt)
#   Kafka jars           (mvn via shared.devinfra.fetch_kafka_jars -> .local/kafka/libs)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="$HOME/.local/bin:$HOME/.cargo/bin:$PATH"
export DEBIAN_FRONTEND=noninteractive

did=()
say() { printf 'bootstrap: %s\n' "$*"; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null; then SUDO="sudo"; fi
fi

apt_updated=false
apt_install() {
    if ! command -v apt-get >/dev/null; then
        say "apt-get not found; install these by hand: $*" >&2
        exit 1
    fi
    if [[ $apt_updated == false ]]; then
        $SUDO apt-get update -qq
        apt_updated=true
    fi
    $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    did+=("apt-get install $*")
}

# --- uv and the Python environment ------------------------------------------------------------
if ! command -v uv >/dev/null; then
    say "installing uv with pip"
    if ! command -v pip >/dev/null && ! command -v pip3 >/dev/null \
        && ! python3 -m pip --version >/dev/null 2>&1; then
        apt_install python3-pip
    fi
    # Debian's system Python is "externally managed" (PEP 668): fall back to a user install.
    python3 -m pip install --quiet uv 2>/dev/null \
        || python3 -m pip install --quiet --user --break-system-packages uv
    command -v uv >/dev/null || { say "uv still not on PATH after pip install" >&2; exit 1; }
    did+=("pip install uv")
fi
uv sync --frozen --quiet
say "python environment in sync ($(uv run python --version))"

# --- PostgreSQL server binaries ---------------------------------------------------------------
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    say "installing the PostgreSQL server"
    apt_install postgresql-common
    # Keep apt from creating (and starting) a "main" cluster on 5432: we run our own.
    $SUDO sed -i -E 's/^#?\s*create_main_cluster\s*=.*/create_main_cluster = false/' \
        /etc/postgresql-common/createcluster.conf
    apt_install postgresql
    if command -v pg_lsclusters >/dev/null; then
        # Should there be one anyway, stop it (only clusters apt just made; none expected).
        pg_lsclusters --no-header 2>/dev/null | while read -r ver name port status _; do
            if [[ $status == online* ]]; then
                $SUDO pg_ctlcluster "$ver" "$name" stop || true
                say "stopped the Debian cluster $ver/$name on port $port"
            fi
        done
    fi
fi
say "postgresql: $(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)"

# --- Java 17 and Maven ------------------------------------------------------------------------
java_major() {
    java -version 2>&1 | sed -n -E 's/.*version "([0-9]+)(\.[0-9]+)*.*".*/\1/p' | head -1
}
if ! command -v java >/dev/null || [[ $(java_major) -lt 17 ]]; then
    say "installing Java 17"
    apt_install openjdk-17-jre-headless
fi
if ! command -v mvn >/dev/null; then
    say "installing Maven"
    apt_install maven
fi
say "java $(java_major), $(mvn -B -v 2>/dev/null | head -1 | sed -E "s/\x1b\[[0-9;]*m//g")"

# --- Prometheus (promtool checks rules; the observability test runs its own server) ----------
if ! command -v promtool >/dev/null; then
    say "installing Prometheus"
    apt_install prometheus
    # Debian may start its own server on :9090; tests start theirs on free ports.
    if command -v systemctl >/dev/null; then $SUDO systemctl disable --now prometheus 2>/dev/null || true; fi
    # Only Debian's own server (it runs as the user prometheus), never anyone else's.
    $SUDO pkill -u prometheus -x prometheus 2>/dev/null || true
fi
say "$(promtool --version 2>&1 | head -1)"

# --- wrk (load generator of bench/bench_intake.py; not needed by the tests) -------------------
if ! command -v wrk >/dev/null; then
    say "installing wrk"
    apt_install wrk
fi

# --- Kafka broker jars ------------------------------------------------------------------------
uv run python - <<'PY'
import time

from shared import devinfra

started = time.monotonic()
libs = devinfra.fetch_kafka_jars()  # no-op when libs/ matches deploy/kafka/pom.xml
seconds = time.monotonic() - started
jars = len(list(libs.glob("*.jar")))
how = "already cached" if seconds < 1 else "fetched with mvn"
print(f"bootstrap: kafka jars {how}: {jars} in {libs} ({seconds:.1f} s)")
PY

if ((${#did[@]})); then
    say "done; changed: ${did[*]}"
else
    say "done; nothing to install"
fi
