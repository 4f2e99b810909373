/*
 * fork.h — install the fork handlers (once, on the first designated use:
 * before that there is nothing to protect).
 */
#ifndef SHIM_FORK_H
#define SHIM_FORK_H

void fork_install(void);

#endif
