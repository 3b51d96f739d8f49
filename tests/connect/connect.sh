#!/usr/bin/env bash
# Kafka Connect for pipewatch's tests: one worker in distributed mode against a test
# broker, its REST API on 127.0.0.1 behind basic auth (the user and password in
# CONNECT_USER / CONNECT_PASSWORD, default pipewatch / connect-secret), with Debezium's
# PostgreSQL connector and the tests' own sink (sink/: it discards what it reads) on its
# plugin path; the jars fetched by Maven from Maven Central into a cache outside the
# repo, the sink compiled with javac.
#
#   connect.sh fetch                               # the runtime and the plugin (idempotent)
#   connect.sh run REST_PORT BOOTSTRAP DIR [PID]   # run a worker in the foreground (its
#                                                  # group and internal topics named after
#                                                  # DIR's last part); stop when PID exits
# Environment: PIPEWATCH_CACHE (default ~/.cache/pipewatch), JAVA (default java).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../watched.sh
. "$here/../watched.sh"
version=$(sed -n 's:.*<connect.version>\(.*\)</connect.version>.*:\1:p' "$here/pom.xml")
cache=${PIPEWATCH_CACHE:-$HOME/.cache/pipewatch}
home=$cache/connect-$version
java=${JAVA:-java}

fetch() {
  local marker
  marker="$home/.complete-$(cat "$here/pom.xml" "$here/debezium-pom.xml" "$here"/sink/src/dev/pipewatch/test/*.java \
    | sha256sum | cut -c1-16)"
  if [ -f "$marker" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "connect.sh: mvn not found: apt-get install maven" >&2; exit 1; }
  command -v javac >/dev/null || { echo "connect.sh: javac not found: apt-get install openjdk-17-jdk-headless" >&2; exit 1; }
  rm -rf "$home"
  mkdir -p "$home/libs" "$home/plugins/debezium-postgres" "$home/plugins/discard-sink"
  mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$home/libs" -DincludeScope=runtime >&2
  mvn -q -B -f "$here/debezium-pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$home/plugins/debezium-postgres" -DincludeScope=runtime >&2
  local classes
  classes=$(mktemp -d)
  javac --release 17 -nowarn -cp "$home/libs/*" -d "$classes" "$here"/sink/src/dev/pipewatch/test/*.java >&2
  jar cf "$home/plugins/discard-sink/discard-sink.jar" -C "$classes" .
  rm -rf "$classes"
  touch "$marker"
}

run() {
  local port=$1 bootstrap=$2 dir=$3 watch=${4:-}
  fetch
  mkdir -p "$dir"
  local name
  name=$(basename "$dir")
  cat > "$dir/worker.properties" <<PROPS
bootstrap.servers=$bootstrap
group.id=$name
config.storage.topic=$name-configs
offset.storage.topic=$name-offsets
status.storage.topic=$name-status
config.storage.replication.factor=1
offset.storage.replication.factor=1
status.storage.replication.factor=1
offset.storage.partitions=1
status.storage.partitions=1
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$port
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$port
plugin.path=$home/plugins
scheduled.rebalance.max.delay.ms=0
rest.extension.classes=org.apache.kafka.connect.rest.basic.auth.extension.BasicAuthSecurityRestExtension
PROPS
  printf '%s: %s\n' "${CONNECT_USER:-pipewatch}" "${CONNECT_PASSWORD:-connect-secret}" > "$dir/credentials.properties"
  cat > "$dir/jaas.conf" <<JAAS
KafkaConnect {
  org.apache.kafka.connect.rest.basic.auth.extension.PropertyFileLoginModule required
  file="$dir/credentials.properties";
};
JAAS
  cat > "$dir/log4j2.properties" <<'LOG'
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
logger.reflections.name = org.reflections
logger.reflections.level = ERROR
LOG
  watched "$watch" "$java" -Xmx512m -XX:TieredStopAtLevel=1 -Dlog4j2.configurationFile="$dir/log4j2.properties" \
      -Djava.security.auth.login.config="$dir/jaas.conf" \
      -cp "$home/libs/*" org.apache.kafka.connect.cli.ConnectDistributed "$dir/worker.properties" \
      > "$dir/connect.log" 2>&1
}

case "${1:-}" in
  fetch) fetch ;;
  run) shift; run "$@" ;;
  *) echo "usage: connect.sh fetch | run REST_PORT BOOTSTRAP DIR [PID]" >&2; exit 2 ;;
esac
