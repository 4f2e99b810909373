/*
 * epoll_create.c — epoll_create and epoll_create1 tell epoll_replay.c
 * about the application's epoll fds (close.c tells it when they go).
 * The engine's own instance does not count.
 */
#include <sys/epoll.h>

#include "engine_glue.h"
#include "epoll_replay.h"
#include "real.h"

static int created(int epfd)
{
	if (epfd >= 0 && !glue_busy())
		epoll_replay_created(epfd);
	return epfd;
}

SHIM_EXPORT int epoll_create(int size)
{
	static int (*fn)(int);

	if (!fn)
		fn = (int (*)(int))real_symbol("epoll_create");
	return created(fn(size));
}

SHIM_EXPORT int epoll_create1(int flags)
{
	static int (*fn)(int);

	if (!fn)
		fn = (int (*)(int))real_symbol("epoll_create1");
	return created(fn(flags));
}
