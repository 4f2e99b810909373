/*
 * rdv_control.h — the control socket of `srmudp rendezvous` (rdv_control.c),
 * read by `srmudp status`.  All three run on the server's event-loop thread.
 */
#ifndef SRMUDP_RDV_CONTROL_H
#define SRMUDP_RDV_CONTROL_H

#include <stdint.h>

#include "rendezvous.h"
#include "rdv_ws.h"

/* Create RUNDIR/PID.sock and add it to epfd with data.u64 = tag; udp_fd
 * (a listening UDP socket) names the port shown.  Returns the socket, or
 * -1 (no usable runtime directory: the server runs on without it). */
int rdv_control_open(int epfd, uint64_t tag, int udp_fd);
/* Answer the status clients waiting on fd (call when tag is ready); ws
 * (NULL without --ws-listen) adds the WebSocket counters and clients. */
void rdv_control_answer(int fd, const struct rdv_server *s, const char *store_name,
			const struct rdv_ws *ws);
/* Close fd (if >= 0) and remove the socket. */
void rdv_control_close(int fd);

#endif
