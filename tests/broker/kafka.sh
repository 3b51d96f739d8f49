#!/usr/bin/env bash
# Apache Kafka for pipewatch's tests: a single KRaft node on 127.0.0.1, from jars that
# Maven fetches from Maven Central into a cache outside the repo.
#
#   kafka.sh fetch                                  # fetch the jars (idempotent)
#   kafka.sh run PORT CONTROLLER_PORT DIR [PID]     # format DIR, run the broker in the
#                                                   # foreground; stop when PID exits
# Environment: PIPEWATCH_CACHE (default ~/.cache/pipewatch), JAVA (default java).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
cache=${PIPEWATCH_CACHE:-$HOME/.cache/pipewatch}
libs=$cache/kafka-$version/libs
java=${JAVA:-java}

fetch() {
  if [ -f "$libs/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found: apt-get install maven" >&2; exit 1; }
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  touch "$libs/.complete"
}

run() {
  local port=$1 cport=$2 dir=$3 watch=${4:-}
  fetch
  mkdir -p "$dir/data"
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.flush.interval.messages=1000000
PROPS
  local jvm=(-Xms256m -Xmx2g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
  local id
  # a base64url UUID; it may start with "-", hence --cluster-id=
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  "$java" "${jvm[@]}" -cp "$libs/*" kafka.tools.StorageTool format --cluster-id="$id" \
      -c "$dir/server.properties" > "$dir/format.log" 2>&1 \
    || { cat "$dir/format.log" >&2; exit 1; }
  "$java" "${jvm[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" > "$dir/kafka.log" 2>&1 &
  jpid=$!
  trap 'kill $jpid 2>/dev/null; wait $jpid 2>/dev/null; exit 0' EXIT TERM INT
  while kill -0 "$jpid" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then break; fi
    sleep 0.5
  done
}

case "${1:-}" in
  fetch) fetch ;;
  run) shift; run "$@" ;;
  *) echo "usage: kafka.sh fetch | kafka.sh run PORT CONTROLLER_PORT DIR [PID]" >&2; exit 2 ;;
esac
