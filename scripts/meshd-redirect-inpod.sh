#!/bin/sh
# Install Istio's in-pod traffic capture rules in the current network namespace (a pod's), the
# REDIRECT-based rules istio-cni installs for ambient mode, so `meshd ztunnel --capture` receives
# the pod's traffic:
#
#   outbound TCP, not to 127.0.0.1, not leaving through lo, not marked 0x539 -> REDIRECT 15001
#   inbound TCP, not to 127.0.0.1, not to 15008, not marked 0x539             -> REDIRECT 15006
#
# Sockets the daemon opens in the pod carry mark 0x539 (1337), so they are never redirected.
# Connections the daemon opens to the app with the client's IP as source (IP_TRANSPARENT) get
# connmark 0x111; the app's replies take that mark back and are routed locally (table 100) to the
# daemon instead of out of the pod. IPv4 only. Not installed (no kubelet here): istio-cni's
# exemption for kubelet probes SNAT'ed to 169.254.7.127.
#
# Usage:  ip netns exec <pod-netns> scripts/meshd-redirect-inpod.sh          install
#         ip netns exec <pod-netns> scripts/meshd-redirect-inpod.sh --delete remove
# Ports can be changed with MESHD_OUTBOUND_PORT, MESHD_INBOUND_PLAINTEXT_PORT, MESHD_HBONE_PORT.
set -eu

OUTBOUND_PORT=${MESHD_OUTBOUND_PORT:-15001}
INBOUND_PORT=${MESHD_INBOUND_PLAINTEXT_PORT:-15006}
HBONE_PORT=${MESHD_HBONE_PORT:-15008}
MARK=0x539/0xfff      # on every socket meshd opens in the pod
CONNMARK=0x111/0xfff  # connections meshd opened with a spoofed (transparent) source
TABLE=100

remove() {
  for table in mangle nat; do
    iptables -w -t "$table" -D PREROUTING -j ISTIO_PRERT 2>/dev/null || true
    iptables -w -t "$table" -D OUTPUT -j ISTIO_OUTPUT 2>/dev/null || true
    for chain in ISTIO_PRERT ISTIO_OUTPUT; do
      iptables -w -t "$table" -F "$chain" 2>/dev/null || true
      iptables -w -t "$table" -X "$chain" 2>/dev/null || true
    done
  done
  while ip rule del fwmark "$CONNMARK" lookup "$TABLE" 2>/dev/null; do :; done
  ip route flush table "$TABLE" 2>/dev/null || true
}

if [ "${1:-}" = "--delete" ]; then
  remove
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "usage: $0 [--delete]" >&2
  exit 2
fi

# Idempotent: start from a clean slate.
remove

iptables-restore -w --noflush <<RULES
*mangle
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_PRERT -m mark --mark $MARK -j CONNMARK --set-xmark $CONNMARK
-A ISTIO_OUTPUT -m connmark --mark $CONNMARK -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff
COMMIT
*nat
:ISTIO_PRERT - [0:0]
:ISTIO_OUTPUT - [0:0]
-A PREROUTING -j ISTIO_PRERT
-A OUTPUT -j ISTIO_OUTPUT
-A ISTIO_PRERT ! -d 127.0.0.1/32 -p tcp -m tcp ! --dport $HBONE_PORT -m mark ! --mark $MARK -j REDIRECT --to-ports $INBOUND_PORT
-A ISTIO_OUTPUT -p tcp -m mark --mark $CONNMARK -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -o lo -j ACCEPT
-A ISTIO_OUTPUT ! -d 127.0.0.1/32 -p tcp -m mark ! --mark $MARK -j REDIRECT --to-ports $OUTBOUND_PORT
COMMIT
RULES

ip rule add fwmark "$CONNMARK" pref 32764 lookup "$TABLE"
ip route add local 0.0.0.0/0 dev lo table "$TABLE"
