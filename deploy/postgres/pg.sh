#!/usr/bin/env bash
# Throwaway PostgreSQL servers for tests and local use.
#
#   pg.sh start  DATA_DIR PORT   initialise DATA_DIR if needed, start the
#                                server on 127.0.0.1:PORT, create database
#                                "normwacht", print its SQLAlchemy URL on stdout
#   pg.sh stop   DATA_DIR        fast shutdown (no-op if not running)
#   pg.sh status DATA_DIR        exit 0 if running (prints port/pid), 3 if not
#
# Only the URL goes to stdout; all diagnostics go to stderr.
#
# Environment:
#   PG_FAST=1    run with fsync/synchronous_commit/full_page_writes off and
#                initdb --no-sync. Data may be lost on a crash: tests only.
#   PG_BINDIR    use the PostgreSQL binaries from this directory.
#
# Auth is "trust" for superuser "normwacht", listening on 127.0.0.1 only.
#
# PostgreSQL refuses to run as root. When run as root, the server files and
# processes belong to Debian's "postgres" system user (via runuser);
# otherwise to the current user.
set -euo pipefail

PG_USER_NAME=normwacht
PG_DB_NAME=normwacht
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'pg.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
    cat >&2 <<'USAGE'
usage: pg.sh start DATA_DIR PORT
       pg.sh stop DATA_DIR
       pg.sh status DATA_DIR
USAGE
    exit 2
}

# Client settings from the caller's environment must not redirect our own
# psql/createdb calls elsewhere.
unset PGHOST PGHOSTADDR PGPORT PGUSER PGDATABASE PGSERVICE PGOPTIONS \
    PGSSLMODE PGTARGETSESSIONATTRS PGDATA

# --- binaries ------------------------------------------------------------------
find_bindir() {
    local d best=""
    if [[ -n "${PG_BINDIR:-}" ]]; then
        [[ -x "$PG_BINDIR/pg_ctl" ]] || die "PG_BINDIR=$PG_BINDIR has no pg_ctl"
        echo "$PG_BINDIR"; return 0
    fi
    # Highest installed major version wins.
    while IFS= read -r d; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && best="$d"
    done < <(compgen -G '/usr/lib/postgresql/*/bin' | sort -V)
    if [[ -z "$best" ]] && command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && best="$d"
    fi
    [[ -n "$best" ]] && echo "$best"
}

bindir() {
    local d
    d="$(find_bindir)" && [[ -n "$d" ]] && { echo "$d"; return 0; }
    # No manual steps: install the server package if it is missing.
    log "PostgreSQL server binaries not found; running deploy/system-deps.sh"
    bash "$SCRIPT_DIR/../system-deps.sh" >&2 || die "could not install PostgreSQL"
    if d="$(find_bindir)" && [[ -n "$d" ]]; then
        echo "$d"
    else
        die "PostgreSQL server binaries still not found"
    fi
}

# --- running as the server owner -------------------------------------------
IS_ROOT=0
[[ $(id -u) -eq 0 ]] && IS_ROOT=1

as_owner() {
    if [[ $IS_ROOT -eq 1 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

require_owner_user() {
    [[ $IS_ROOT -eq 1 ]] || return 0
    getent passwd postgres >/dev/null \
        || die "running as root but there is no 'postgres' user (is the postgresql package installed?)"
}

# As root, the server runs as "postgres", which must be able to traverse
# every ancestor of DATA_DIR. Some callers hand us directories inside
# private (mode 700, root-owned) trees, notably pytest's
# /tmp/pytest-of-root/pytest-N/. We add search permission for others
# (o+x: enter only, no listing or reading) to exactly those ancestors that
# postgres cannot traverse, and say so on stderr. We prefer this over
# relocating the data into a separate world-traversable directory plus a
# symlink because the data then stays where the caller asked for it and is
# removed with it (no leaked clusters in /tmp). pytest itself re-tightens
# /tmp/pytest-of-root to 700 at its next session; a running server is not
# affected (it has already chdir'ed into its data directory), and stop/status
# re-apply the fix before talking to it.
ensure_traversable() {
    local target="$1" path="" part
    [[ $IS_ROOT -eq 1 ]] || return 0
    runuser -u postgres -- test -x "$target" 2>/dev/null && return 0
    local -a parts
    IFS=/ read -r -a parts <<<"${target#/}"
    for part in "${parts[@]}"; do
        [[ -n "$part" ]] || continue
        path="$path/$part"
        [[ -d "$path" ]] || break
        if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
            log "granting search permission (o+x) on $path so the postgres user can reach the data directory"
            chmod o+x "$path"
        fi
    done
}

# --- helpers -------------------------------------------------------------------
abs_path() { realpath -m -- "$1"; }

# Quote for POSIX sh (single quotes; embedded ' becomes '\'').
sh_quote() {
    local q="'" s="$1"
    printf "'%s'" "${s//$q/$q\\$q$q}"
}

pick_locale() {
    if locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
        echo C.UTF-8
    else
        echo C
    fi
}

is_running() {
    # $1 = bindir, $2 = data dir
    [[ -f "$2/postmaster.pid" ]] || return 1
    as_owner "$1/pg_ctl" status -D "$2" >/dev/null 2>&1
}

pid_file_field() {
    # postmaster.pid: line 1 pid, line 4 port
    sed -n "${2}p" "$1/postmaster.pid" 2>/dev/null | tr -d '[:space:]'
}

psql_q() {
    # $1 bindir, $2 port, $3 sql
    "$1/psql" -X -q -t -A -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$2" \
        -U "$PG_USER_NAME" -d postgres -c "$3"
}

print_url() { echo "postgresql+psycopg://${PG_USER_NAME}@127.0.0.1:$1/${PG_DB_NAME}"; }

ensure_database() {
    local bd="$1" port="$2" exists
    exists="$(psql_q "$bd" "$port" "SELECT 1 FROM pg_database WHERE datname = '${PG_DB_NAME}'")"
    if [[ "$exists" != "1" ]]; then
        "$bd/createdb" -h 127.0.0.1 -p "$port" -U "$PG_USER_NAME" "$PG_DB_NAME" >&2
    fi
}

# --- subcommands -----------------------------------------------------------------
cmd_start() {
    [[ $# -eq 2 ]] || usage
    local data port bd running_port
    data="$(abs_path "$1")"
    port="$2"
    [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1 && "$port" -le 65535 ]] || die "invalid port: $port"
    bd="$(bindir)"
    require_owner_user

    # The server's working directory is the data directory, but initdb/pg_ctl
    # also chdir back to the caller's cwd, which postgres may not be able to
    # enter (e.g. /root): run everything from /.
    cd /

    if [[ ! -d "$data" ]]; then
        mkdir -p -- "$data"
    fi
    ensure_traversable "$data"

    if [[ ! -f "$data/PG_VERSION" ]]; then
        if [[ -n "$(ls -A -- "$data")" ]]; then
            die "$data exists, is not empty and is not a PostgreSQL data directory"
        fi
        [[ $IS_ROOT -eq 1 ]] && chown postgres:postgres "$data"
        chmod 700 "$data"
        local -a initdb_args=(-D "$data" --auth=trust -U "$PG_USER_NAME"
            --encoding=UTF8 "--locale=$(pick_locale)")
        [[ "${PG_FAST:-0}" == "1" ]] && initdb_args+=(--no-sync)
        log "initialising $data"
        as_owner "$bd/initdb" "${initdb_args[@]}" >&2 \
            || die "initdb failed for $data"
    fi

    if is_running "$bd" "$data"; then
        running_port="$(pid_file_field "$data" 4)"
        if [[ "$running_port" != "$port" ]]; then
            die "server in $data is already running on port $running_port (asked for $port); stop it first"
        fi
        log "already running on port $port"
    else
        # Unix-domain socket paths are limited to 107 bytes; deep temp dirs
        # (pytest) exceed that. The socket is a convenience only (we connect
        # over TCP), so fall back to TCP only when the path is too long.
        local sockdir="$data"
        if (( ${#data} + ${#port} + 12 > 107 )); then
            sockdir=""
        fi
        # pg_ctl hands -o to /bin/sh, hence the shell quoting.
        local opts
        opts="-p $port -k $(sh_quote "$sockdir") -c listen_addresses=127.0.0.1"
        if [[ "${PG_FAST:-0}" == "1" ]]; then
            opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        fi
        local logfile="$data/postgres.log"
        if ! as_owner "$bd/pg_ctl" start -w -t 60 -D "$data" -l "$logfile" -o "$opts" >&2; then
            log "server failed to start; last lines of $logfile:"
            tail -n 30 "$logfile" >&2 2>/dev/null || true
            exit 1
        fi
    fi

    ensure_database "$bd" "$port"
    print_url "$port"
}

cmd_stop() {
    [[ $# -eq 1 ]] || usage
    local data bd
    data="$(abs_path "$1")"
    cd /
    if [[ ! -f "$data/postmaster.pid" ]]; then
        log "not running ($data)"
        return 0
    fi
    bd="$(bindir)"
    require_owner_user
    ensure_traversable "$data"
    if ! is_running "$bd" "$data"; then
        log "not running ($data)"
        return 0
    fi
    as_owner "$bd/pg_ctl" stop -w -t 60 -m fast -D "$data" >&2
}

cmd_status() {
    [[ $# -eq 1 ]] || usage
    local data bd
    data="$(abs_path "$1")"
    cd /
    if [[ -f "$data/postmaster.pid" ]]; then
        bd="$(bindir)"
        require_owner_user
        ensure_traversable "$data"
        if is_running "$bd" "$data"; then
            echo "running: pid $(pid_file_field "$data" 1), port $(pid_file_field "$data" 4), data $data"
            return 0
        fi
    fi
    echo "not running: $data"
    return 3
}

[[ $# -ge 1 ]] || usage
sub="$1"; shift
case "$sub" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac
