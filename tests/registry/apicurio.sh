#!/usr/bin/env bash
# Apicurio Registry for pipewatch's tests: its Confluent-compatible API (ccompat v7), in
# memory, on 127.0.0.1, from the app's tarball on Maven Central, cached outside the repo.
# It is a Quarkus app that needs Java 21 or newer (the machine's default may be older).
#
#   apicurio.sh fetch                      # fetch and unpack the app (idempotent)
#   apicurio.sh java                       # print the Java (>= 21) it runs with
#   apicurio.sh run PORT MANAGEMENT_PORT [PID]
#       run it in the foreground (stop when PID exits): the API at
#       http://127.0.0.1:PORT/apis/ccompat/v7, ready at
#       http://127.0.0.1:MANAGEMENT_PORT/health/ready; its log on stdout
# Environment: PIPEWATCH_CACHE (default ~/.cache/pipewatch), JAVA21 (a java binary >= 21).
set -euo pipefail
# shellcheck source=../watched.sh
. "$(dirname "$0")/../watched.sh"
version=3.3.3
cache=${PIPEWATCH_CACHE:-$HOME/.cache/pipewatch}
home=$cache/apicurio-registry-$version

fetch() {
  if [ -f "$home/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "apicurio.sh: mvn not found: apt-get install maven" >&2; exit 1; }
  mkdir -p "$home"
  mvn -q -B dependency:copy -Dartifact="io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
      -DoutputDirectory="$home" >&2
  tar -xzf "$home/apicurio-registry-app-$version-all.tar.gz" -C "$home"
  rm -f "$home/apicurio-registry-app-$version-all.tar.gz"
  [ -n "$(find "$home" -name quarkus-run.jar -print -quit)" ] \
      || { echo "apicurio.sh: no quarkus-run.jar in the app's tarball" >&2; exit 1; }
  touch "$home/.complete"
}

# The major version of a java binary (0 when it does not run).
major() {
  "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 | grep . || echo 0
}

find_java() {
  local candidates=()
  [ -n "${JAVA21:-}" ] && candidates+=("$JAVA21")
  command -v java >/dev/null && candidates+=("$(command -v java)")
  for j in /usr/lib/jvm/*/bin/java; do [ -x "$j" ] && candidates+=("$j"); done
  for j in "${candidates[@]}"; do
    if [ "$(major "$j")" -ge 21 ]; then echo "$j"; return 0; fi
  done
  echo "apicurio.sh: Apicurio Registry needs Java 21 or newer and none was found" \
       "(set JAVA21, or apt-get install openjdk-21-jre-headless)" >&2
  exit 1
}

run() {
  local port=$1 mport=$2 watch=${3:-}
  fetch
  local java jar
  java=$(find_java)
  jar=$(find "$home" -name quarkus-run.jar -print -quit)
  watched "$watch" "$java" -Xmx512m -XX:TieredStopAtLevel=1 \
      -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$port" \
      -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$mport" \
      -jar "$jar"
}

case "${1:-}" in
  fetch) fetch ;;
  java) find_java ;;
  run) shift; run "$@" ;;
  *) echo "usage: apicurio.sh fetch | java | run PORT MANAGEMENT_PORT" >&2; exit 2 ;;
esac
