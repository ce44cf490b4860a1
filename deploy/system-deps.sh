#!/usr/bin/env bash
# Ensure the Debian packages Normwacht needs are installed.
#
# Idempotent and cheap when everything is present (it runs at every
# `make test`): the checks below only look at files / commands, and apt is
# touched only when something is actually missing.
#
# Packages:
#   postgresql  server binaries (any major version Debian ships), used by
#               deploy/postgres/pg.sh for throwaway test/dev servers.
#   kcat        Kafka command-line client.
#   prometheus, prometheus-alertmanager
#               Prometheus, promtool, Alertmanager and amtool: `make run` starts
#               its own instances from deploy/prometheus and deploy/alertmanager,
#               and the tests check their configuration and run them.
#   curl        the README's examples (and the test that runs them against `make run`).
#   nodejs, npm the AsyncAPI parser that validates schemas/asyncapi.yaml
#               (tools/asyncapi; only when node or npm is missing).
#
# Note: Debian's postgresql package may create a default cluster ("main",
# port 5432) and, where an init system runs, start it. We never use port
# 5432 (pg.sh starts its own servers on explicit ports), so it is left alone.
# Likewise, where systemd runs, Debian starts its own Prometheus (9090) and
# Alertmanager (9093) services, which `make run` needs the ports of (the tests use
# free ports): when this script installed them, it disables them again.
set -euo pipefail

log() { printf 'system-deps: %s\n' "$*" >&2; }

# --- detection -------------------------------------------------------------
have_pg_server() {
    local d
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    done
    if command -v pg_config >/dev/null 2>&1; then
        d="$(pg_config --bindir 2>/dev/null || true)"
        [[ -n "$d" && -x "$d/initdb" && -x "$d/pg_ctl" && -x "$d/postgres" ]] && return 0
    fi
    return 1
}

have_cmd() { command -v "$1" >/dev/null 2>&1; }

missing_packages() {
    # Add new requirements here: "check || echo package".
    have_pg_server || echo postgresql
    have_cmd kcat || echo kcat
    have_cmd prometheus && have_cmd promtool || echo prometheus
    have_cmd prometheus-alertmanager && have_cmd amtool || echo prometheus-alertmanager
    have_cmd curl || echo curl
    have_cmd node || echo nodejs
    have_cmd npm || echo npm
}

# --- fast path ---------------------------------------------------------------
mapfile -t missing < <(missing_packages)
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

# --- install path ------------------------------------------------------------
if [[ $(id -u) -eq 0 ]]; then
    as_root=()
elif have_cmd sudo; then
    as_root=(sudo)
else
    log "missing Debian packages: ${missing[*]}"
    log "not root and sudo is not available; please install them, e.g.:"
    log "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
    exit 1
fi

# Serialise concurrent runs (e.g. parallel test workers) so only one of them
# drives apt; the others wait and then find everything installed.
lock_file="${TMPDIR:-/tmp}/normwacht-system-deps.lock"
if have_cmd flock && { exec 9>>"$lock_file"; } 2>/dev/null; then
    flock 9
    mapfile -t missing < <(missing_packages)
    [[ ${#missing[@]} -eq 0 ]] && exit 0
fi

log "installing missing Debian packages: ${missing[*]}"
apt_env=(env DEBIAN_FRONTEND=noninteractive)
"${as_root[@]}" "${apt_env[@]}" apt-get update -q
"${as_root[@]}" "${apt_env[@]}" apt-get install -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"

mapfile -t still_missing < <(missing_packages)
if [[ ${#still_missing[@]} -ne 0 ]]; then
    log "still missing after install: ${still_missing[*]}"
    exit 1
fi

# Where systemd runs, Debian has just started its own Prometheus and Alertmanager on the
# ports `make run` needs. Only the ones installed here are stopped: a Prometheus that was
# on the machine before is the owner's, and run.sh says which port is taken.
if [[ -d /run/systemd/system ]] && have_cmd systemctl; then
    for package in prometheus prometheus-alertmanager; do
        if [[ " ${missing[*]} " == *" $package "* ]]; then
            log "disabling Debian's $package service (make run starts its own)"
            "${as_root[@]}" systemctl disable --now "$package" || true
        fi
    done
fi
log "done"
