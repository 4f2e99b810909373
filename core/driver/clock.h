/*
 * clock.h — the one place the time is read.  Protocol modules never read
 * a clock: the driver (and the tools' own loops) pass the time in.
 */
#ifndef SRMUDP_CLOCK_H
#define SRMUDP_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC: the time base of every now_us/now_ms in core/. */
uint64_t clock_now_us(void);
uint64_t clock_now_ms(void);
/* CLOCK_REALTIME - CLOCK_MONOTONIC in ms: a wall time from a monotonic one
 * (session_config.wall_offset_ms, rendezvous timestamps). */
int64_t clock_wall_offset_ms(void);
/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition variable set to that clock. */
struct timespec clock_deadline_in_ms(int ms);

#endif
