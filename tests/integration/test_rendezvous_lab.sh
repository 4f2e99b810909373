#!/usr/bin/env bash
# test_rendezvous_lab.sh: the rendezvous server across real NATs (the
# tests/lab/lab.sh topology: a behind cone NAT nata, b behind symmetric
# NAT natb, the servers on the public host rdv):
#
#      rdv: redis-server 127.0.0.1:6390 (inside rdv only)
#           S1 198.18.0.2:3478 + [2001:db8::2]:3478   S2 198.18.0.2:3479
#            |                                         |
#      a --(nata, cone)--+                  +--(natb, symmetric)-- b
#
# Checks:
#   - the reflexive address a peer learns is its NAT's public address
#     (STUN-like), and its global IPv6 address over IPv6;
#   - two servers share their records through Redis: a (on S1) finds b (on
#     S2), and b, whose symmetric NAT only lets S2 in, is told to punch by
#     S2 (the note S1 left in Redis);
#   - the relay carries a packet from a to b through both NATs.
# Peers are `srmudp rendezvous probe` clients; the engine-level lab tests
# (punching, relay fallback with real sessions) belong to the engine.
#
# Exit 0 pass, 1 fail, 77 skipped (not root / no namespaces / no redis).
set -uo pipefail

source "$(dirname "$0")/../lib.sh"
srm_lab
srm_require_tools redis-server

lab_up --nat-a cone --nat-b symmetric
keys=$(mktemp -d /tmp/srm-rdvlab.XXXXXX)
lab_on_exit "rm -rf '$keys'"
for k in a b; do "$SRMUDP" keygen "$keys/$k.key" >"$keys/$k.pub"; done
A=$(<"$keys/a.pub") B=$(<"$keys/b.pub")
RDV4=$(lab_addr rdv v4) RDV6=$(lab_addr rdv v6)

lab_bg rdv redis-server --port 6390 --bind 127.0.0.1 --save '' --appendonly no --dir "$keys"
lab_wait_port rdv tcp 6390 || { echo "FAIL: redis-server did not start"; exit 1; }
lab_bg rdv "$SRMUDP" rendezvous --listen "$RDV4:3478" --listen "[$RDV6]:3478" \
	--store redis://127.0.0.1:6390
s1_log=$LAB_LAST_LOG
lab_bg rdv "$SRMUDP" rendezvous --listen "$RDV4:3479" --store redis://127.0.0.1:6390
s2_log=$LAB_LAST_LOG
check "server 1 up" lab_wait_log "$s1_log" "listening on \[$RDV6\]:3478"
check "server 2 up" lab_wait_log "$s2_log" "listening on $RDV4:3479"

echo "-- reflexive addresses through NAT"
lab_bg b "$SRMUDP" rendezvous probe --server "$RDV4:3479" --key "$keys/b.key" \
	--candidate "$(lab_addr b v4):4000" --stay 8 --allow "$A"
b_log=$LAB_LAST_LOG
check "b registers on S2" lab_wait_log "$b_log" "^registered" 5
natb=$(lab_addr natb v4)
check "b's reflexive address is natb's public address" \
	has "$b_log" "^registered reflexive=${natb//./\\.}:[0-9]+$"
lab_exec a "$SRMUDP" rendezvous probe --server "$RDV4:3478" --key "$keys/a.key" \
	--lookup "$B" >"$keys/a.out" 2>&1
nata=$(lab_addr nata v4)
check "a's reflexive address is nata's public address" \
	has "$keys/a.out" "^registered reflexive=${nata//./\\.}:[0-9]+$"

echo "-- two servers sharing Redis"
check "a (S1) gets b's (S2) public and host candidates" \
	has "$keys/a.out" "^peer $B candidates=${natb//./\\.}:[0-9]+,$(lab_addr b v4 | sed 's/\./\\./g'):4000$"
check "b is told to punch towards a's public address, through its symmetric NAT" \
	lab_wait_log "$b_log" "^punch-request $A candidates=${nata//./\\.}:[0-9]+$" 5

echo "-- IPv6: the global address, untranslated"
lab_exec a "$SRMUDP" rendezvous probe --server "[$RDV6]:3478" --key "$keys/a.key" \
	>"$keys/a6.out" 2>&1
check "a's reflexive IPv6 address is its own" \
	has "$keys/a6.out" "^registered reflexive=\[$(lab_addr a v6)\]:[0-9]+$"

echo "-- relay through both NATs"
lab_bg b "$SRMUDP" rendezvous probe --server "$RDV4:3478" --key "$keys/b.key" --stay 6 --allow "$A"
b2_log=$LAB_LAST_LOG
check "b registers on S1" lab_wait_log "$b2_log" "^registered" 5
lab_exec a "$SRMUDP" rendezvous probe --server "$RDV4:3478" --key "$keys/a.key" \
	--relay-to "$B" --message "relayed across two NATs" >"$keys/a2.out" 2>&1
check "b receives a's relayed packet" \
	lab_wait_log "$b2_log" "^relayed $A bytes=27 text=relayed across two NATs$" 5

srm_finish "$s1_log" "$s2_log" "$b_log" "$b2_log" "$keys/a.out"
