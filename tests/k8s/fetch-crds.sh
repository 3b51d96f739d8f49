#!/usr/bin/env bash
# Fetches the prometheus-operator CRDs (ServiceMonitor, PrometheusRule) that
# validate.py checks deploy/kubernetes/ against, from the Go module proxy, into a cache
# outside the repo. Prints the folder holding them.
set -euo pipefail
version=v0.77.1
cache="${PIPEWATCH_CACHE:-$HOME/.cache/pipewatch}"
out="$cache/prometheus-operator-crds-$version"
if [ ! -f "$out/monitoring.coreos.com_prometheusrules.yaml" ]; then
  command -v go >/dev/null || { echo "go is needed to fetch the CRDs (Debian: apt-get install golang)" >&2; exit 1; }
  dir=$(GOMODCACHE="$cache/gomod" GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$out"
  cp "$dir"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$out/"
fi
echo "$out"
