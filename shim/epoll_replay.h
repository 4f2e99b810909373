/*
 * epoll_replay.h — keep epoll registrations across the dup3 in connect().
 *
 * connect() replaces the application's socket with one end of a socket
 * pair under the same fd number.  An epoll set that watched the old socket
 * silently loses it (epoll keys on the open file).  Rather than hook every
 * epoll_ctl (a cost every program would pay), connect() reads the
 * registrations of that socket from /proc/self/fdinfo of each epoll fd and
 * adds them again, with the same events and data, on the new file.  The
 * epoll fds are known from the create, close and dup hooks, so a process
 * with none (Python makes one at import and closes it) reads nothing.  An
 * epoll fd inherited across exec from an earlier program image is not
 * known; it would have to watch a socket also inherited and connected
 * only now.
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

/* The application made, closed or duplicated epoll fds. */
void epoll_replay_created(int epfd);
void epoll_replay_closed(unsigned first, unsigned last);
/* fd2 now names what fd names (any fd: cheap when no epoll fd is known). */
void epoll_replay_duped(int fd, int fd2);
/* Registrations of fd (whose open file has inode ino) in any epoll set of
 * this process.  Returns how many were written to regs. */
int epoll_replay_collect(int fd, ino_t ino, struct epoll_reg *regs, int max);
/* Register fd again in each set. */
void epoll_replay_apply(int fd, const struct epoll_reg *regs, int n);

#endif
