#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, on loopback.
#
#   scripts/postgres-test-server.sh start   # prints postgres://postgres@127.0.0.1:PORT/sluice_test
#   scripts/postgres-test-server.sh stop    # stops it and deletes its data directory
#   scripts/postgres-test-server.sh crash   # stops it at once (pg_ctl stop -m immediate), keeping its data
#   scripts/postgres-test-server.sh resume  # starts the crashed server again, on the same port and data
#
# `crash` and `resume` are for outage tests: the server goes away without a clean shutdown (its
# connections drop, its backends get no chance to finish) and comes back where it was. Such a test
# must start its server with SLUICE_POSTGRES_DURABLE=1: the default synchronous_commit=off
# acknowledges a commit before its WAL is written, so a crash loses the last commits the server
# acknowledged (a test would see effects lost that were never durable); durable keeps
# synchronous_commit on (fsync stays off: a crashed server, unlike a crashed machine, loses
# nothing it wrote to the kernel).
#
# `start` runs initdb in a new temporary directory (trust authentication, fsync off: test data
# only), starts the server on 127.0.0.1 and a free port with its socket in that directory, creates
# the database `sluice_test`, prints its URL and records what `stop` needs in a state file:
# $SLUICE_POSTGRES_STATE_FILE, by default .build/postgres-test-server.state in the repository.
# As root, initdb and pg_ctl run as the `postgres` user (the server refuses to run as root).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
state_file=${SLUICE_POSTGRES_STATE_FILE:-$repo/.build/postgres-test-server.state}

find_bindir() {
    if [ -n "${SLUICE_POSTGRES_BINDIR:-}" ]; then echo "$SLUICE_POSTGRES_BINDIR"; return; fi
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && candidate=$dir
    done
    if [ -n "${candidate:-}" ]; then echo "$candidate"; return; fi
    if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
        pg_config --bindir
        return
    fi
    echo "error: no PostgreSQL server found (initdb); run scripts/ensure-deps.sh or install postgresql" >&2
    exit 1
}

# Runs a server binary as the user owning the data directory.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Starts the server of data directory $2/data on port $3 and waits until it accepts connections;
# $4 is the synchronous_commit setting.
start_server() {
    as_owner "$1/pg_ctl" -D "$2/data" -l "$2/server.log" -w -t 30 start -o \
        "-c listen_addresses=127.0.0.1 -p $3 -c unix_socket_directories=$2 -c fsync=off -c full_page_writes=off -c synchronous_commit=$4 -c max_connections=200" \
        >/dev/null 2>&1
}

start() {
    if [ -f "$state_file" ]; then
        echo "error: a test server is already recorded in $state_file; run '$0 stop' first" >&2
        exit 1
    fi
    local bindir dir port attempt synchronous_commit=off
    [ "${SLUICE_POSTGRES_DURABLE:-}" = 1 ] && synchronous_commit=on
    bindir=$(find_bindir)
    dir=$(mktemp -d "${TMPDIR:-/tmp}/sluice-postgres.XXXXXX")
    chmod 700 "$dir"
    if [ "$(id -u)" -eq 0 ]; then
        if ! id postgres >/dev/null 2>&1; then
            echo "error: running as root needs a 'postgres' user to run the server as" >&2
            rm -rf "$dir"
            exit 1
        fi
        chown postgres: "$dir"
    fi
    # The server binaries must not start in a directory the postgres user cannot enter.
    cd "$dir"
    if ! as_owner "$bindir/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C --no-sync \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        rm -rf "$dir"
        echo "error: initdb failed" >&2
        exit 1
    fi

    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
        port_in_use "$port" && continue
        if start_server "$bindir" "$dir" "$port" "$synchronous_commit"; then
            mkdir -p "$(dirname "$state_file")"
            printf 'dir=%s\nbindir=%s\nport=%s\nsynchronous_commit=%s\n' "$dir" "$bindir" "$port" "$synchronous_commit" >"$state_file"
            "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres sluice_test
            echo "postgres://postgres@127.0.0.1:$port/sluice_test"
            return
        fi
    done
    cat "$dir/server.log" >&2 || true
    rm -rf "$dir"
    echo "error: could not start PostgreSQL on a free port" >&2
    exit 1
}

stop() {
    if [ ! -f "$state_file" ]; then
        echo "no test server recorded in $state_file" >&2
        return
    fi
    local dir bindir
    dir=$(sed -n 's/^dir=//p' "$state_file")
    bindir=$(sed -n 's/^bindir=//p' "$state_file")
    if [ -d "$dir/data" ]; then
        (cd "$dir" && as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1) || true
    fi
    case "$dir" in
        */sluice-postgres.*) rm -rf "$dir" ;;
    esac
    rm -f "$state_file"
}

recorded() {
    if [ ! -f "$state_file" ]; then
        echo "error: no test server recorded in $state_file" >&2
        exit 1
    fi
    sed -n "s/^$1=//p" "$state_file"
}

crash() {
    local dir bindir
    dir=$(recorded dir)
    bindir=$(recorded bindir)
    cd "$dir"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null
}

resume() {
    local dir bindir port synchronous_commit
    dir=$(recorded dir)
    bindir=$(recorded bindir)
    port=$(recorded port)
    synchronous_commit=$(recorded synchronous_commit)
    cd "$dir"
    if ! start_server "$bindir" "$dir" "$port" "${synchronous_commit:-off}"; then
        tail -20 "$dir/server.log" >&2 || true
        echo "error: could not start PostgreSQL again on port $port" >&2
        exit 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    crash) crash ;;
    resume) resume ;;
    *) echo "usage: $0 start|stop|crash|resume" >&2; exit 2 ;;
esac
