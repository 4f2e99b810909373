/*
 * listen.h — TCP listeners the engine forwards peer streams to.
 */
#ifndef SHIM_LISTEN_H
#define SHIM_LISTEN_H

#include "state.h"

/* Register every listener port of this process with engine e (a forked
 * child's new engine).  Returns how many were registered. */
int listen_register_all(srm_engine *e);
/* The last fd of a listener is gone: stop forwarding its port unless
 * another listening fd still uses it. */
void listen_release(struct shim_sock *s);

#endif
