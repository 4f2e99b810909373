/*
 * sockopt.h — socket options of a stream, kept as TCP would keep them.
 */
#ifndef SHIM_SOCKOPT_H
#define SHIM_SOCKOPT_H

#include "state.h"

/* Copy the TCP/IP options the application set on its TCP socket (oldfd,
 * before connect() replaces it) into s, so getsockopt still reads them. */
void sockopt_carry(int oldfd, struct shim_sock *s);

#endif
