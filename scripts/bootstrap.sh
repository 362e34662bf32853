#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian machine: system packages, then a virtualenv with the
# project installed in it. Safe to run again; it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "conntrack-harness: must run as root (it builds network namespaces and changes sysctls); re-run with sudo" >&2
  exit 2
fi

# Debian packages the netns backend and the benches drive. Checked one by one so a
# second run costs nothing.
PKGS=(iproute2 iptables nftables conntrack dnsmasq-base nginx-light tcpdump dnsperf wrk procps util-linux chromium
      docker.io debootstrap gcc libc6-dev openssl)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  # nginx's maintainer script would start a host-wide nginx on :80; the harness only ever
  # runs nginx inside pod namespaces, so deny service starts for the duration of the install.
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && made_policy=1
  fi
  trap '[ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi

# The pinned upstream Kubernetes parts (harness/upstream/versions.toml) in the cache outside
# the checkout: only what is missing is built, with progress. The first build from source
# takes a while (bench: upstream_cold_build_s); later runs cost a second.
# UPSTREAM_SOURCE=go|download|auto (default auto: official releases, else the Go build).
.venv/bin/conntrack-harness upstream build --source "${UPSTREAM_SOURCE:-auto}"
