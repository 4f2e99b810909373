/*
 * compress.h — stream-level zstd inside the reliable byte stream.
 *
 * Every byte a stream carries is framed in records (docs/TRANSPORT.md):
 *
 *   u8 kind (COMPRESS_RAW = 0, COMPRESS_ZSTD = 1) | varint length | payload
 *
 * A RAW payload is 1 .. COMPRESS_RECORD_MAX application bytes.  A ZSTD
 * payload is one complete zstd frame, with its content size, of at most
 * COMPRESS_RECORD_MAX application bytes.  The sender cuts the stream into
 * records as it is written (bulk writes make 64 KiB records), so the ratio
 * is that of 64 KiB blocks, far above per-packet compression, while no
 * zstd state outlives a record: one compression and one decompression
 * context per peer serve all its streams, and neither side's memory grows
 * with the number of compressing streams.  RAW records bypass zstd, so a
 * sender may switch per record without telling the receiver.
 *
 * Receiver bounds: a frame that declares no content size or more than
 * COMPRESS_RECORD_MAX, that decodes to anything but its declared size, or
 * that asks for a window above 2^COMPRESS_WINDOW_LOG_MAX fails the stream
 * (a decompression bomb never gets an output buffer larger than 64 KiB);
 * a ZSTD payload is at most COMPRESS_PAYLOAD_MAX bytes.
 *
 * Adaptive mode (SRM_COMPRESS_AUTO) turns compression off for a stream
 *  - when the ZSTD records of the last COMPRESS_SAMPLE_BYTES input did not
 *    shrink below COMPRESS_OFF_RATIO_PERMILLE of their size, or
 *  - when zstd's measured input throughput (CPU time given by the caller)
 *    is below the link's bandwidth estimate: the CPU, not the link, is
 *    then the bottleneck, and sending raw is faster;
 * and retries after COMPRESS_RETRY_BYTES were sent raw.  Records shorter
 * than COMPRESS_MIN_RECORD go raw in AUTO mode (nothing to gain).
 *
 * Length leak: compressed sizes depend on content, and the AEAD does not
 * hide sizes, so an attacker who can inject data next to a secret in the
 * same record and watch packet sizes can recover the secret (CRIME,
 * VORACLE).  See docs/TRANSPORT.md; SRMUDP_COMPRESS=off avoids it.
 */
#ifndef SRMUDP_COMPRESS_H
#define SRMUDP_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "srmudp.h"

#ifdef __cplusplus
extern "C" {
#endif

enum compress_kind { COMPRESS_RAW = 0, COMPRESS_ZSTD = 1 };

/* Application bytes per record: bounds the receiver's output per record. */
#define COMPRESS_RECORD_MAX (64u << 10)
/* Largest ZSTD payload (ZSTD_COMPRESSBOUND(64 KiB) = 65824, plus slack). */
#define COMPRESS_PAYLOAD_MAX (COMPRESS_RECORD_MAX + 1024)
/* kind + a 4-byte varint. */
#define COMPRESS_HEADER_MAX 5
/* zstd level 1: ~500 MB/s here; higher levels cost CPU that a 2-core
 * machine needs for the AEAD. */
#define COMPRESS_LEVEL 1
/* A 64 KiB record never needs more than a 128 KiB window; refuse frames
 * that ask for more (memory bound of the shared decoder). */
#define COMPRESS_WINDOW_LOG_MAX 17
#define COMPRESS_MIN_RECORD 64
#define COMPRESS_OFF_RATIO_PERMILLE 900
#define COMPRESS_SAMPLE_BYTES (256u << 10)
/* CPU throughput is judged over this much input. */
#define COMPRESS_CPU_SAMPLE_BYTES (1u << 20)
#define COMPRESS_RETRY_BYTES (8u << 20)

enum compress_off_reason { COMPRESS_OFF_NONE, COMPRESS_OFF_RATIO, COMPRESS_OFF_CPU,
			   COMPRESS_OFF_CONFIG };

/* The zstd contexts one peer's streams share (created on first use). */
struct compress_ctx {
	void *cctx; /* ZSTD_CCtx */
	void *dctx; /* ZSTD_DCtx */
};

/* Per stream, sending side: the adaptive decision. */
struct compress_tx {
	enum srm_compress mode;
	bool active;             /* compress the next record (AUTO) */
	enum compress_off_reason off_reason;
	uint64_t sample_in, sample_out;  /* ratio window */
	uint64_t cpu_in, cpu_us;         /* throughput window */
	uint64_t raw_since_off;
	/* totals, for stats and tests */
	uint64_t bytes_in, bytes_out, records_raw, records_zstd;
};

/* Per stream, receiving side: the record parser and what a ZSTD record
 * decoded to that the reader has not taken yet. */
struct compress_rx {
	int phase;               /* compress.c */
	uint8_t hdr[COMPRESS_HEADER_MAX];
	size_t hdr_len;
	uint8_t kind;
	uint64_t remaining;      /* payload bytes of the current record left */
	uint8_t *stage;          /* a ZSTD payload split by the ring, gathered */
	size_t stage_len, stage_cap;
	uint8_t *out;            /* decoded, not yet delivered */
	size_t out_len, out_off;
	bool failed;
};

void compress_ctx_free(struct compress_ctx *z);
size_t compress_ctx_memory(const struct compress_ctx *z);

void compress_tx_init(struct compress_tx *t, enum srm_compress mode);
/* Bytes compress_tx_record may write for n input bytes. */
size_t compress_tx_bound(size_t n);
/* Would the next record of n bytes be compressed? (conn times those.) */
bool compress_tx_wants(const struct compress_tx *t, size_t n);
/* Frame n (1 .. COMPRESS_RECORD_MAX) application bytes as one record into
 * out, which must hold compress_tx_bound(n) bytes.  Returns the bytes
 * written, or SRM_ERR_NOMEM / SRM_ERR_INVALID. */
ssize_t compress_tx_record(struct compress_tx *t, struct compress_ctx *z, const uint8_t *in,
			   size_t n, uint8_t *out, size_t cap);
/* The header of a RAW record of n bytes (when compress_tx_wants says no),
 * so the caller can write the payload without an extra copy; counts it
 * like compress_tx_record.  Returns the header length. */
size_t compress_tx_raw_header(struct compress_tx *t, size_t n, uint8_t *hdr);
/* AUTO: zstd took cpu_us of CPU for n input bytes while the link carries
 * link_bytes_per_s (0: unknown).  May switch compression off. */
void compress_tx_note_cpu(struct compress_tx *t, size_t n, uint64_t cpu_us,
			  uint64_t link_bytes_per_s);

void compress_rx_init(struct compress_rx *r);
void compress_rx_free(struct compress_rx *r);
/* Decode records from the in-order stream bytes in[0..n) into out[0..cap).
 * *used gets the input consumed; returns the output bytes (0: need more
 * input or more output room), or SRM_ERR_INVALID for a malformed record,
 * an unknown kind or a bad zstd frame (after which every call fails), or
 * SRM_ERR_NOMEM. */
ssize_t compress_rx_decode(struct compress_rx *r, struct compress_ctx *z, const uint8_t *in,
			   size_t n, size_t *used, uint8_t *out, size_t cap);
/* Between records, nothing held: a FIN here is clean. */
bool compress_rx_idle(const struct compress_rx *r);
/* Heap bytes the receiver state holds (staging and decoded output). */
size_t compress_rx_memory(const struct compress_rx *r);

#ifdef __cplusplus
}
#endif
#endif
