#!/usr/bin/env bash
# A single-node Kafka broker (KRaft, broker and controller in one JVM) for
# development and tests, run from jars that Maven resolves from Maven Central.
#
# Usage: kafka.sh install|start|stop|status|run
#   install  resolve the broker's jars into $KAFKA_LIBS (once per pom.xml)
#   start    format $KAFKA_DATA if new, start the broker in the background and
#            wait until it accepts clients; a no-op if it already runs there
#   stop     SIGTERM, wait for a clean shutdown, SIGKILL after the timeout
#   status   exit 0 if a broker runs on $KAFKA_DATA, 1 if not
#   run      like start, but the broker replaces this shell in the foreground
#            (for a supervisor); its log goes to stdout
#
# Environment (defaults in brackets; every path may be overridden so that
# tests can run their own brokers side by side in temporary folders):
#   KAFKA_LIBS             jar folder                [<repo>/.run/kafka-libs]
#   KAFKA_DATA             data dir: rendered config, pid file, kafka.log,
#                          partitions under data/    [<repo>/.run/kafka]
#   KAFKA_PORT             client (PLAINTEXT) port   [9092]
#   KAFKA_CONTROLLER_PORT  KRaft controller port     [9094; 9093 is Alertmanager's]
#   KAFKA_HEAP             JVM heap, -Xms and -Xmx   [1G, as Kafka's scripts]
#   KAFKA_START_TIMEOUT    seconds to wait for ready [60]
#   KAFKA_STOP_TIMEOUT     seconds before SIGKILL    [30]
#   KAFKA_JVM_OPTS         extra JVM options, split on spaces
#   JAVA                   java executable  [$JAVA_HOME/bin/java, else java]
#   MVN                    maven executable          [mvn]
#   KAFKA_SECURE           1: a broker that lets no one in without credentials
#                          and allows only what ACLs allow (below)  [0]
#   KAFKA_ADMIN_PASSWORD   with KAFKA_SECURE=1: the admin user's password, used
#                          when the data dir is formatted  [random, written to
#                          $KAFKA_DATA/admin.password]
#
# KAFKA_SECURE=1 renders server-secure.properties instead of server.properties:
# clients connect to KAFKA_PORT with SASL_SSL (SCRAM-SHA-512) and must trust
# $KAFKA_DATA/certs/ca.pem, made by certs.sh on the first start (a CA of its own
# and a certificate for 127.0.0.1/localhost); the controller port takes only
# mutual TLS with that CA's certificate. The SCRAM user `admin` is created when
# the data dir is formatted and is a super user; everyone else gets a SCRAM user
# and ACLs from an admin through the Admin API (services/shared/kafka_access.py;
# which ACLs each service needs: "Securing Kafka" in docs/ARCHITECTURE.md). The
# authorizer allows nothing that no ACL allows. A data dir keeps the mode it was
# formatted in: a secure one is refused by a plain start and the other way round.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

KAFKA_LIBS=${KAFKA_LIBS:-$repo/.run/kafka-libs}
KAFKA_DATA=${KAFKA_DATA:-$repo/.run/kafka}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9094}
KAFKA_HEAP=${KAFKA_HEAP:-1G}
KAFKA_START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
KAFKA_STOP_TIMEOUT=${KAFKA_STOP_TIMEOUT:-30}
KAFKA_JVM_OPTS=${KAFKA_JVM_OPTS:-}
if [[ -n ${JAVA_HOME:-} ]]; then JAVA=${JAVA:-$JAVA_HOME/bin/java}; fi
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}

pom=$here/pom.xml
KAFKA_SECURE=${KAFKA_SECURE:-0}
if [[ $KAFKA_SECURE == 1 ]]; then
  template=$here/server-secure.properties
else
  template=$here/server.properties
fi
log4j_config=$here/log4j2.properties

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

say() {
  echo "kafka.sh: $*"
}

# Jar folder is complete when its stamp holds the hash of the pom it came from.
pom_hash() {
  sha256sum "$pom" | cut -d' ' -f1
}

libs_current() {
  [[ -f $KAFKA_LIBS/.stamp && $(<"$KAFKA_LIBS/.stamp") == "$(pom_hash)" ]]
}

cmd_install() {
  libs_current && return 0
  command -v "$MVN" >/dev/null || die "maven ($MVN) not found: apt-get install maven"
  mkdir -p "$(dirname "$KAFKA_LIBS")"
  # Parallel test runs may all call install on a fresh machine: one resolves,
  # the others wait and then find the stamp.
  exec 9>"$KAFKA_LIBS.lock"
  flock 9
  if ! libs_current; then
    say "resolving broker jars into $KAFKA_LIBS"
    local tmp
    tmp=$(mktemp -d "$KAFKA_LIBS.tmp.XXXXXX")
    # Into a fresh folder and then renamed, so a failed or interrupted run
    # never leaves a half-filled $KAFKA_LIBS that looks complete.
    # Output only on failure: with -q, Debian's maven prints nothing else
    # but stray colour codes.
    local out
    if ! out=$("$MVN" -B -q -f "$pom" dependency:copy-dependencies \
      -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1); then
      printf '%s\n' "$out" >&2
      rm -rf "$tmp"
      die "maven could not resolve the broker jars"
    fi
    pom_hash >"$tmp/.stamp"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
  fi
  exec 9>&-
}

# Paths that the data dir implies. Absolute, because the broker and the pid
# check compare them as strings.
resolve_data_dir() {
  mkdir -p "$KAFKA_DATA"
  KAFKA_DATA=$(cd "$KAFKA_DATA" && pwd)
  set_paths
}

# For stop and status: like resolve_data_dir, but never creates the folder.
existing_data_dir() {
  if [[ -d $KAFKA_DATA ]]; then
    KAFKA_DATA=$(cd "$KAFKA_DATA" && pwd)
  fi
  set_paths
}

set_paths() {
  props=$KAFKA_DATA/server.properties
  log_dir=$KAFKA_DATA/data
  pid_file=$KAFKA_DATA/kafka.pid
  log_file=$KAFKA_DATA/kafka.log
  certs_dir=$KAFKA_DATA/certs
  admin_password_file=$KAFKA_DATA/admin.password
  secure_marker=$KAFKA_DATA/formatted-secure
}

# Prints the pid of the broker that runs on this data dir, or fails. The
# command line must name this data dir's config: a stale pid file whose pid
# was reused by another process does not count, nor does a zombie (whose
# command line is empty).
running_pid() {
  [[ -f $pid_file ]] || return 1
  local pid
  pid=$(<"$pid_file")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF "$props" || return 1
  echo "$pid"
}

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

check_settings() {
  local name
  for name in KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_START_TIMEOUT KAFKA_STOP_TIMEOUT; do
    [[ ${!name} =~ ^[0-9]+$ ]] || die "$name must be a number, not '${!name}'"
  done
  [[ $KAFKA_PORT != "$KAFKA_CONTROLLER_PORT" ]] ||
    die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ"
  [[ $KAFKA_SECURE == 0 || $KAFKA_SECURE == 1 ]] || die "KAFKA_SECURE must be 0 or 1"
}

# With KAFKA_SECURE=1: the certificates and the admin password, made once per data
# dir. Passwords are letters and digits only, so they need no quoting anywhere.
prepare_secrets() {
  [[ $KAFKA_SECURE == 1 ]] || return 0
  bash "$here/certs.sh" "$certs_dir" || die "making certificates in $certs_dir failed"
  if [[ ! -s $admin_password_file ]]; then
    local password=${KAFKA_ADMIN_PASSWORD:-}
    if [[ -z $password ]]; then
      password=$(head -c 18 /dev/urandom | base64 | tr -d '+/=\n')
    fi
    [[ $password =~ ^[A-Za-z0-9]+$ ]] || die "KAFKA_ADMIN_PASSWORD: letters and digits only"
    (umask 077 && printf '%s' "$password" >"$admin_password_file")
  fi
}

jvm_options() {
  jvm=(
    -Xms"$KAFKA_HEAP" -Xmx"$KAFKA_HEAP"
    # The GC settings of Kafka's own kafka-run-class.sh.
    -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35
    -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true
    -Dlog4j2.configurationFile="$log4j_config"
    -Dkafka.logs.dir="$KAFKA_DATA"
  )
  if [[ -n $KAFKA_JVM_OPTS ]]; then
    local extra
    read -r -a extra <<<"$KAFKA_JVM_OPTS"
    jvm+=("${extra[@]}")
  fi
  jvm+=(-cp "$KAFKA_LIBS/*")
}

# Writes the template with this run's ports and paths. Quoted replacements:
# bash 5.2 would otherwise expand '&' in them.
render_config() {
  local text
  text=$(<"$template")
  text=${text//@KAFKA_PORT@/"$KAFKA_PORT"}
  text=${text//@KAFKA_CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}
  text=${text//@KAFKA_LOG_DIR@/"$log_dir"}
  if [[ $KAFKA_SECURE == 1 ]]; then
    text=${text//@KAFKA_CERTS_DIR@/"$certs_dir"}
    text=${text//@KAFKA_STORE_PASSWORD@/"$(<"$certs_dir/store.password")"}
    text=${text//@KAFKA_ADMIN_PASSWORD@/"$(<"$admin_password_file")"}
  fi
  # Mode 600: a secure broker's config holds its passwords.
  (umask 077 && printf '%s\n' "$text" >"$props.tmp")
  mv "$props.tmp" "$props"
}

# 16 random bytes as unpadded base64url: the 22-character form of Kafka's
# Uuid. Kafka never hands out ids that start with '-' (they read as options).
new_cluster_id() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ $id == -* ]] || break
  done
  echo "$id"
}

format_if_new() {
  if [[ -f $log_dir/meta.properties ]]; then
    if [[ $KAFKA_SECURE == 1 && ! -f $secure_marker ]]; then
      die "$KAFKA_DATA was formatted without KAFKA_SECURE=1 (it has no admin user)"
    elif [[ $KAFKA_SECURE == 0 && -f $secure_marker ]]; then
      die "$KAFKA_DATA was formatted with KAFKA_SECURE=1; start it so"
    fi
    return 0
  fi
  local id scram=()
  id=$(new_cluster_id)
  if [[ $KAFKA_SECURE == 1 ]]; then
    # The admin's SCRAM credential goes into the metadata log at format time: the
    # broker needs it to log in to itself before anyone could create it.
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(<"$admin_password_file")]")
  fi
  say "formatting $log_dir (cluster id $id)"
  if ! "$JAVA" "${jvm[@]}" kafka.tools.StorageTool format \
    --cluster-id="$id" --config "$props" "${scram[@]}" >>"$log_file" 2>&1; then
    tail -n 40 "$log_file" >&2
    die "formatting storage failed; log: $log_file"
  fi
  if [[ $KAFKA_SECURE == 1 ]]; then : >"$secure_marker"; fi
}

# Everything start and run share up to the moment the broker is launched.
# The caller has checked that no broker runs on this data dir.
prepare() {
  rm -f "$pid_file"
  local port
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
    ! port_open "$port" || die "port $port on 127.0.0.1 is already in use"
  done
  cmd_install
  jvm_options
  prepare_secrets
  render_config
  # One log per start, the previous one kept: the readiness check only sees
  # this start's lines, and the file cannot grow without bound.
  if [[ -f $log_file ]]; then mv -f "$log_file" "$log_file.1"; fi
  format_if_new
}

kill_broker() {
  local pid=$1 timeout=$2 deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + timeout))
  while running_pid >/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if running_pid >/dev/null; then
    say "no clean shutdown within ${timeout}s; sending SIGKILL to $pid"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while running_pid >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
  fi
  rm -f "$pid_file"
}

startup_failed() {
  local pid=$1
  echo "----- last lines of $log_file -----" >&2
  tail -n 60 "$log_file" >&2 || true
  if [[ -n $pid ]] && running_pid >/dev/null; then
    kill_broker "$pid" 10
  fi
  die "$2"
}

cmd_start() {
  check_settings
  resolve_data_dir
  local pid
  if pid=$(running_pid); then
    say "already running on $KAFKA_DATA (pid $pid)"
    return 0
  fi
  prepare
  # setsid: a session of its own, so the broker outlives this script and no
  # terminal's Ctrl-C or hangup reaches it. The wrapper writes the pid that
  # exec then turns into the JVM.
  # shellcheck disable=SC2016 # expanded by the wrapper, not here
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pid_file" \
    "$JAVA" "${jvm[@]}" kafka.Kafka "$props" >>"$log_file" 2>&1 </dev/null &

  local deadline=$((SECONDS + KAFKA_START_TIMEOUT))
  pid=""
  while :; do
    # The wrapper writes the pid file first thing, so a pid file without a
    # live broker behind it means the JVM has already exited.
    if [[ -s $pid_file ]] && ! pid=$(running_pid); then
      startup_failed "" "the broker exited during startup"
    fi
    # The log line says the broker finished starting; the open port that
    # clients can connect now.
    if [[ -n $pid ]] &&
      grep -qE 'Kafka Server started|Transitioning from RECOVERY to RUNNING' "$log_file" &&
      port_open "$KAFKA_PORT"; then
      say "broker ready on 127.0.0.1:$KAFKA_PORT (pid $pid, data $KAFKA_DATA)"
      return 0
    fi
    if ((SECONDS >= deadline)); then
      startup_failed "$pid" "broker not ready within ${KAFKA_START_TIMEOUT}s"
    fi
    sleep 0.2
  done
}

cmd_run() {
  check_settings
  resolve_data_dir
  local pid
  if pid=$(running_pid); then
    die "already running on $KAFKA_DATA (pid $pid)"
  fi
  prepare
  # exec keeps this pid, so status and stop work on a foreground broker too.
  echo $$ >"$pid_file"
  exec "$JAVA" "${jvm[@]}" kafka.Kafka "$props"
}

cmd_stop() {
  check_settings
  existing_data_dir
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pid_file"
    say "not running on $KAFKA_DATA"
    return 0
  fi
  say "stopping broker (pid $pid)"
  kill_broker "$pid" "$KAFKA_STOP_TIMEOUT"
  say "stopped"
}

cmd_status() {
  existing_data_dir
  local pid
  if pid=$(running_pid); then
    say "running on $KAFKA_DATA (pid $pid)"
    return 0
  fi
  say "not running on $KAFKA_DATA"
  return 1
}

case ${1:-} in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  run) cmd_run ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
