#!/usr/bin/env bash
# Apache Kafka for pipewatch's tests: a single KRaft node on 127.0.0.1, from jars that
# Maven fetches from Maven Central into a cache outside the repo.
#
#   kafka.sh fetch                                  # fetch the jars (idempotent)
#   kafka.sh run PORT CONTROLLER_PORT DIR [PID]     # format DIR (unless it is already),
#                                                   # run the broker in the foreground;
#                                                   # stop when PID exits
#   kafka.sh run-secure PORT SECURE_PORT CONTROLLER_PORT DIR [PID]
#       the same, plus a SASL_SSL listener on SECURE_PORT (SCRAM-SHA-512 and PLAIN; a CA
#       and broker certificate made with openssl: DIR/ca.pem) and the StandardAuthorizer
#       with no ACL: user `pipewatch` (password $PIPEWATCH_SECURE_PASSWORD, default
#       pipewatch-secret) may do nothing until ACLs allow it. PORT stays PLAINTEXT for the
#       tests' own set-up (its anonymous principal is a super user).
#   kafka.sh acls ARGS…                             # kafka-acls (AclCommand) with the jars
# Environment: PIPEWATCH_CACHE (default ~/.cache/pipewatch), JAVA (default java).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$here/pom.xml")
cache=${PIPEWATCH_CACHE:-$HOME/.cache/pipewatch}
libs=$cache/kafka-$version/libs
java=${JAVA:-java}

fetch() {
  # the marker names the pom it was fetched for: a changed pom fetches again
  local marker
  marker="$libs/.complete-$(sha256sum "$here/pom.xml" | cut -c1-16)"
  if [ -f "$marker" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "kafka.sh: mvn not found: apt-get install maven" >&2; exit 1; }
  mkdir -p "$libs"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$libs" -DincludeScope=runtime >&2
  touch "$marker"
}

secure_password=${PIPEWATCH_SECURE_PASSWORD:-pipewatch-secret}

# A CA and a broker certificate for 127.0.0.1 / localhost (certificates.sh).
certificates() {
  bash "$here/certificates.sh" "$1"
}

run() {
  local port=$1 cport=$2 dir=$3 watch=${4:-} sport=${5:-}
  fetch
  mkdir -p "$dir/data"
  local listeners="PLAINTEXT://127.0.0.1:$port" map="PLAINTEXT:PLAINTEXT"
  if [ -n "$sport" ]; then
    listeners="$listeners,SASL_SSL://127.0.0.1:$sport"
    map="$map,SASL_SSL:SASL_SSL"
  fi
  cat > "$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners,CONTROLLER://127.0.0.1:$cport
advertised.listeners=$listeners
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map,CONTROLLER:PLAINTEXT
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
  local scram=()
  if [ -n "$sport" ]; then
    certificates "$dir"
    cat >> "$dir/server.properties" <<PROPS
sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_pipewatch="$secure_password";
ssl.keystore.type=PEM
ssl.keystore.location=$dir/broker.pem
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:ANONYMOUS
PROPS
    scram=(--add-scram "SCRAM-SHA-512=[name=pipewatch,password=$secure_password]")
  fi
  local jvm=(-Xms256m -Xmx2g -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true)
  local id
  # a base64url UUID; it may start with "-", hence --cluster-id=
  id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
  # a restart on a formatted DIR keeps its data (and its cluster id)
  if [ ! -f "$dir/data/meta.properties" ]; then
    "$java" "${jvm[@]}" -cp "$libs/*" kafka.tools.StorageTool format --cluster-id="$id" \
        -c "$dir/server.properties" "${scram[@]}" > "$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; exit 1; }
  fi
  "$java" "${jvm[@]}" -cp "$libs/*" kafka.Kafka "$dir/server.properties" > "$dir/kafka.log" 2>&1 &
  jpid=$!
  trap 'kill $jpid 2>/dev/null; wait $jpid 2>/dev/null; exit 0' EXIT TERM INT
  while kill -0 "$jpid" 2>/dev/null; do
    if [ -n "$watch" ] && ! kill -0 "$watch" 2>/dev/null; then break; fi
    sleep 0.5
  done
}

acls() {
  fetch
  "$java" -Xmx256m -XX:TieredStopAtLevel=1 -cp "$libs/*" org.apache.kafka.tools.AclCommand "$@"
}

case "${1:-}" in
  fetch) fetch ;;
  run) shift; run "$@" ;;
  run-secure) shift; run "$1" "$3" "$4" "${5:-}" "$2" ;;
  acls) shift; acls "$@" ;;
  *) echo "usage: kafka.sh fetch | kafka.sh run PORT CONTROLLER_PORT DIR [PID] | kafka.sh run-secure PORT SECURE_PORT CONTROLLER_PORT DIR [PID] | kafka.sh acls ARGS…" >&2; exit 2 ;;
esac
