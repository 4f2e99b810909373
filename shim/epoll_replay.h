/*
 * epoll_replay.h — keep epoll registrations across the dup3 in connect().
 *
 * connect() replaces the application's socket with one end of a socket
 * pair under the same fd number.  An epoll set that watched the old socket
 * silently loses it (epoll keys on the open file).  Rather than hook every
 * epoll_ctl (a cost every program would pay), connect() reads the
 * registrations of that socket from /proc/self/fdinfo of each epoll fd and
 * adds them again, with the same events and data, on the new file.
 */
#ifndef SHIM_EPOLL_REPLAY_H
#define SHIM_EPOLL_REPLAY_H

#include <sys/types.h>

#define EPOLL_REPLAY_MAX 16

struct epoll_reg {
	int epfd;
	unsigned events;
	unsigned long long data;
};

/* Registrations of fd (whose open file has inode ino) in any epoll set of
 * this process.  Returns how many were written to regs. */
int epoll_replay_collect(int fd, ino_t ino, struct epoll_reg *regs, int max);
/* Register fd again in each set. */
void epoll_replay_apply(int fd, const struct epoll_reg *regs, int n);

#endif
