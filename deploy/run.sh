#!/usr/bin/env bash
# `make run`: the broker, then processor, ingest and api; Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")/.."

# Prometheus and Alertmanager keep their usual ports; where Debian's own services hold
# them (systemd starts them on install), say so instead of failing in a log file.
for port in 9090 9093; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "run.sh: port $port is taken: another \`make run\`, or Debian's prometheus or" \
      "prometheus-alertmanager service (systemctl disable --now prometheus" \
      "prometheus-alertmanager)" >&2
    exit 1
  fi
done

pids=()
stop_all() {
  # Stopping takes seconds: neither a second Ctrl-C nor a closed terminal or pipe may
  # keep it from stopping the broker (ignored first, so none comes in between).
  trap '' INT TERM PIPE
  trap - EXIT
  echo "stopping normwacht ..." 2>/dev/null || exec >/dev/null 2>&1
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  deploy/kafka/kafka.sh stop
}
# Before the broker starts: a Ctrl-C while it starts stops it too (kafka.sh starts it in
# a session of its own, out of the terminal's reach). A signal ends the script wherever
# it is, and the end stops everything.
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
deploy/kafka/kafka.sh start

# The services create no topics and check theirs at start: made here, as a deployment does.
.venv/bin/normwacht kafka create-topics

mkdir -p .run/logs .run/prometheus .run/alertmanager
# The previous run's logs stay beside this run's, as NAME.log.1.
for log in .run/logs/*.log; do
  if [ -e "$log" ]; then mv -f "$log" "$log.1"; fi
done
# The processor signs the due-records it writes into the events topic and acts on no
# others: one secret per installation, made on the first run and kept.
if [ ! -s .run/due-record.key ]; then
  (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' > .run/due-record.key)
fi
export NORMWACHT_PROCESSOR_DUE_RECORD_KEY="${NORMWACHT_PROCESSOR_DUE_RECORD_KEY:-$(cat .run/due-record.key)}"
# Development mode: ingest and the API take the development token (the README's examples).
# Both default to production, which needs `normwacht partners add` first.
export NORMWACHT_INGEST_ENVIRONMENT=development NORMWACHT_API_ENVIRONMENT=development
for service in processor ingest api notifier; do
  .venv/bin/normwacht "$service" 2> >(tee ".run/logs/$service.log" >&2) &
  pids+=($!)
done
# Debian's binaries with the project's configuration; their logs only to files (they are chatty).
# 40 days of data: the overview dashboard shows this month's compliance.
prometheus --config.file=deploy/prometheus/prometheus.yml --storage.tsdb.path=.run/prometheus \
  --storage.tsdb.retention.time=40d --web.listen-address=127.0.0.1:9090 --web.enable-lifecycle \
  >.run/logs/prometheus.log 2>&1 &
pids+=($!)
# No cluster gossip: one Alertmanager, and no port 9094 taken from the broker's controller.
prometheus-alertmanager --config.file=deploy/alertmanager/alertmanager.yml \
  --storage.path=.run/alertmanager --web.listen-address=127.0.0.1:9093 \
  --cluster.listen-address= >.run/logs/alertmanager.log 2>&1 &
pids+=($!)

cat <<'TXT'
Normwacht is starting:
  ingest      http://127.0.0.1:8000/v1/events   (docs: /docs, token: normwacht-dev-token)
  processor   http://127.0.0.1:6066/metrics
  api         http://127.0.0.1:8001/v1/breaches  (docs: /docs, token: normwacht-dev-token)
  notifier    http://127.0.0.1:8002/metrics      (outcomes to Alertmanager)
  prometheus  http://127.0.0.1:9090/classic/alerts (rules: deploy/prometheus)
  alertmanager http://127.0.0.1:9093/api/v2/alerts (routes: deploy/alertmanager; or amtool)
  kafka       127.0.0.1:9092
Logs: .run/logs/. Ctrl-C stops everything.
TXT
# Any service that dies takes the rest down: a half-running system hides breaches.
wait -n "${pids[@]}"
