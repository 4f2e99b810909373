/*
 * compress.h — stream-level zstd inside the reliable byte stream.
 *
 * Every byte a stream carries is framed in records (docs/TRANSPORT.md):
 *
 *   u8 kind (COMPRESS_RAW = 0, COMPRESS_ZSTD = 1) | varint length | payload
 *
 * A RAW payload is application bytes (1 .. COMPRESS_RECORD_MAX).  A ZSTD
 * payload is what one streaming ZSTD_CCtx emitted for one record with
 * ZSTD_e_flush: it decodes, given every earlier ZSTD record of the stream,
 * to at most COMPRESS_RECORD_MAX application bytes.  So the history spans
 * records (whole-stream ratios, not per-packet ones) while each record
 * stays decodable as soon as it arrives.  RAW records bypass zstd on both
 * sides, so a sender may switch per record without telling the receiver.
 *
 * Receiver bounds: a record's output never exceeds COMPRESS_RECORD_MAX
 * (anything more is a bomb and fails the stream), the zstd window is at
 * most 2^COMPRESS_WINDOW_LOG_MAX, and a ZSTD payload is at most
 * COMPRESS_PAYLOAD_MAX bytes.
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
 * same stream and watch packet sizes can recover the secret (CRIME,
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

/* Raw bytes per record: bounds the receiver's output per record. */
#define COMPRESS_RECORD_MAX (64u << 10)
/* Largest ZSTD payload (ZSTD_COMPRESSBOUND(64 KiB) = 65824, plus a frame
 * epilogue and slack). */
#define COMPRESS_PAYLOAD_MAX (COMPRESS_RECORD_MAX + 1024)
/* kind + a 4-byte varint. */
#define COMPRESS_HEADER_MAX 5
/* Bytes compress_tx_record may write for one record of COMPRESS_RECORD_MAX. */
#define COMPRESS_TX_BOUND (2 * COMPRESS_HEADER_MAX + COMPRESS_PAYLOAD_MAX)
/* zstd level 1: ~500 MB/s at ~6x on text here; higher levels cost CPU
 * that a 2-core machine needs for the AEAD. */
#define COMPRESS_LEVEL 1
/* 64 KiB of history per stream direction: most of the ratio of a large
 * window at a fraction of the memory (zstd 1.5: one streaming CCtx ~ 530 KB,
 * one DCtx ~ 420 KB; at 2^19 they are 1.4 MB and 1 MB).  conn.c also caps
 * how many contexts one peer may hold. */
#define COMPRESS_WINDOW_LOG 16
/* Receivers accept up to 1 MiB windows, never more (memory bound). */
#define COMPRESS_WINDOW_LOG_MAX 20
#define COMPRESS_MIN_RECORD 64
#define COMPRESS_OFF_RATIO_PERMILLE 900
#define COMPRESS_SAMPLE_BYTES (256u << 10)
/* CPU throughput is judged over this much input. */
#define COMPRESS_CPU_SAMPLE_BYTES (1u << 20)
#define COMPRESS_RETRY_BYTES (8u << 20)

enum compress_off_reason { COMPRESS_OFF_NONE, COMPRESS_OFF_RATIO, COMPRESS_OFF_CPU,
			   COMPRESS_OFF_CONFIG };

struct compress_tx {
	enum srm_compress mode;
	void *cctx;              /* ZSTD_CCtx, created on first use */
	bool active;             /* compress the next record (AUTO) */
	bool frame_open;         /* a zstd frame is in progress */
	bool no_new_ctx;         /* set by the caller: no context may be created
				  * now (records go raw until one may) */
	enum compress_off_reason off_reason;
	uint64_t sample_in, sample_out;  /* ratio window */
	uint64_t cpu_in, cpu_us;         /* throughput window */
	uint64_t raw_since_off;
	/* totals, for stats and tests */
	uint64_t bytes_in, bytes_out, records_raw, records_zstd;
};

struct compress_rx {
	void *dctx;              /* ZSTD_DCtx, created on first ZSTD record */
	int phase;               /* compress.c */
	uint8_t hdr[COMPRESS_HEADER_MAX];
	size_t hdr_len;
	uint8_t kind;
	uint64_t remaining;      /* payload bytes of the current record left */
	size_t produced;         /* output of the current ZSTD record */
	bool frame_done;         /* zstd reported the frame complete */
	bool no_new_ctx;         /* set by the caller: a ZSTD record that needs a
				  * new context fails the stream */
	bool failed;
};

void compress_tx_init(struct compress_tx *t, enum srm_compress mode);
void compress_tx_free(struct compress_tx *t);
/* Frame n (1 .. COMPRESS_RECORD_MAX) application bytes as one record (or
 * two: ending the zstd frame when AUTO just switched off) into out, which
 * must hold compress_tx_bound(n) bytes.  Returns the bytes written, or
 * SRM_ERR_NOMEM / SRM_ERR_INVALID. */
ssize_t compress_tx_record(struct compress_tx *t, const uint8_t *in, size_t n,
			   uint8_t *out, size_t cap);
/* Bytes compress_tx_record may write for n input bytes. */
size_t compress_tx_bound(size_t n);
/* Would the next record of n bytes be compressed? (conn times those.) */
bool compress_tx_wants(const struct compress_tx *t, size_t n);
/* End the zstd frame (if one is open) and free the context: an idle
 * stream stops holding compressor memory, and the receiver frees its own
 * when it reads this record.  Writes at most COMPRESS_HEADER_MAX + 32
 * bytes into out; returns the bytes written (0: no frame was open). */
ssize_t compress_tx_end(struct compress_tx *t, uint8_t *out, size_t cap);
/* AUTO: zstd took cpu_us of CPU for n input bytes while the link carries
 * link_bytes_per_s (0: unknown).  May switch compression off. */
void compress_tx_note_cpu(struct compress_tx *t, size_t n, uint64_t cpu_us,
			  uint64_t link_bytes_per_s);

void compress_rx_init(struct compress_rx *r);
void compress_rx_free(struct compress_rx *r);
/* Decode records from the in-order stream bytes in[0..n) into out[0..cap).
 * *used gets the input consumed; returns the output bytes (0: need more
 * input or more output room), or SRM_ERR_INVALID for a malformed record,
 * an unknown kind, a corrupt zstd payload or a record that decodes to
 * more than COMPRESS_RECORD_MAX (after which every call fails). */
ssize_t compress_rx_decode(struct compress_rx *r, const uint8_t *in, size_t n, size_t *used,
			   uint8_t *out, size_t cap);
/* Between records (nothing partial is held): a FIN here is clean. */
bool compress_rx_idle(const struct compress_rx *r);
/* Bytes of zstd state held (0 when no context is live). */
size_t compress_tx_memory(const struct compress_tx *t);
size_t compress_rx_memory(const struct compress_rx *r);

#ifdef __cplusplus
}
#endif
#endif
