#!/usr/bin/env bash
# make demo: unmodified programs talk through the srmudp preload, between two
# hosts that each sit behind their own NAT (the lab in tests/lab/lab.sh).
#
#   a (10.1.0.2) -- NAT A --+-- internet --+-- NAT B -- b (10.2.0.2)
#
# b runs `python3 -m http.server` and `redis-server` under `srmudp run`;
# a runs `curl` and `redis-cli` under `srmudp run` and names b by its peer
# name.  Endpoints are exchanged by hand (both NATs' public addresses).
set -euo pipefail

# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
srm_build "${1:-build}"

if [[ $(id -u) -ne 0 ]]; then
	echo "make demo needs root: it builds a NAT lab from network namespaces." >&2
	exit 1
fi
# shellcheck source=lab/lab.sh
source "$root/tests/lab/lab.sh"
lab_require_root
say() { printf '  %s\n' "$*"; }

echo "Building the lab: two private hosts, each behind its own NAT..."
lab_up --nat-a cone --nat-b cone
srm_lab_keys
mkdir -p "$work/www"
nat_a=$(lab_addr nata v4)
nat_b=$(lab_addr natb v4)
say "host a: private 10.1.0.2, public $nat_a, key $pub_a"
say "host b: private 10.2.0.2, public $nat_b, key $pub_b"

env_b=(SRMUDP_KEY="$work/b.key" SRMUDP_LISTEN=4000 SRMUDP_PEERS="a=$pub_a@$nat_a:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/b.log")
env_a=(SRMUDP_KEY="$work/a.key" SRMUDP_PEERS="b=$pub_b@$nat_b:4000"
       SRMUDP_LOG=info SRMUDP_LOG_FILE="$work/a.log")

head -c $((64 << 20)) /dev/urandom >"$work/www/blob"
lab_bg b env "${env_b[@]}" "$SRMUDP" run -- python3 -m http.server 8000 --bind 0.0.0.0 --directory "$work/www"
lab_wait_port b tcp 8000 10 || { echo "http.server did not start" >&2; cat "$LAB_LAST_LOG" >&2; exit 1; }

echo
echo "curl on a fetches 64 MiB from python3 http.server on b, both unmodified, through the shim:"
start=$(date +%s.%N)
lab_exec a env "${env_a[@]}" SRMUDP_LISTEN=4000 "$SRMUDP" run -- \
	curl -sS --max-time 120 -o "$work/got" http://b:8000/blob
end=$(date +%s.%N)
sum_b=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
sum_a=$(sha256sum <"$work/got" | cut -d' ' -f1)
bytes=$(stat -c %s "$work/got")
say "bytes moved: $bytes in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }') s"
say "sha256 on b: $sum_b"
say "sha256 on a: $sum_a"
[[ $sum_a == "$sum_b" ]] && say "checksum equal: yes" || { say "checksum equal: NO"; exit 1; }

echo
echo "redis-cli on a talks to redis-server on b, both unmodified, through the shim:"
lab_bg b env "${env_b[@]}" SRMUDP_LISTEN=4001 SRMUDP_PEERS="a=$pub_a@$nat_a:4001" \
	"$SRMUDP" run -- redis-server --port 6379 --save '' --appendonly no --protected-mode no
lab_wait_port b tcp 6379 10 || { echo "redis-server did not start" >&2; exit 1; }
lab_exec a env "${env_a[@]}" SRMUDP_LISTEN=4001 SRMUDP_PEERS="b=$pub_b@$nat_b:4001" \
	"$SRMUDP" run -- redis-cli -h b -p 6379 SET greeting "hello across two NATs" >/dev/null
got=$(lab_exec a env "${env_a[@]}" SRMUDP_LISTEN=4001 SRMUDP_PEERS="b=$pub_b@$nat_b:4001" \
	"$SRMUDP" run -- redis-cli -h b -p 6379 GET greeting)
say "GET greeting -> $got"
[[ $got == "hello across two NATs" ]] || exit 1

echo
echo "What the engines logged:"
grep -hE "session established|handshake answered" "$work/a.log" "$work/b.log" | sed 's/^/    /' | head -6
if grep -q "relay" "$work/a.log"; then say "path: relayed"; else say "path: direct (peer to peer through both NATs)"; fi
say "peer authenticated: yes (Noise IK, keys pinned in SRMUDP_PEERS)"
echo
echo "Demo finished; tearing the lab down."
