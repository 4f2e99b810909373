/*
 * exec.c — exec keeps the identity of inherited peer sockets.
 *
 * A stream fd or a peer's accepted connection that survives exec keeps
 * working by itself (it is a kernel socket served by this process's
 * engine, or by the parent's).  What the new image would lose is our
 * table: getpeername would show an AF_UNIX or loopback address instead of
 * the peer's virtual address (sshd re-executes itself for every
 * connection).  So every exec passes SRMUDP_INHERIT, naming those sockets
 * by inode, and state.c reads it back in the new image.
 *
 * Nothing here allocates: execve may run in a vfork child.  A program with
 * no such socket pays one counter test.
 */
#include <errno.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "real.h"
#include "state.h"

#define INHERIT_VAR "SRMUDP_INHERIT="
#define INHERIT_MAX 4096 /* about 60 sockets; the rest are passed without names */
#define ENV_MAX 1024     /* entries; a larger environment passes unchanged */
#define ARGV_MAX 1024    /* execl-family arguments */

extern char **environ;

typedef int (*execve_fn)(const char *, char *const[], char *const[]);

/* envp plus our variable in out (which must hold ENV_MAX + 2 pointers);
 * returns envp itself when there is nothing to add or it does not fit. */
static char *const *with_inherit(char *const *envp, char **out, char *var)
{
	size_t n = 0, k = 0, len;

	if (!state_live())
		return envp;
	memcpy(var, INHERIT_VAR, sizeof(INHERIT_VAR) - 1);
	len = state_export(var + sizeof(INHERIT_VAR) - 1, INHERIT_MAX - sizeof(INHERIT_VAR));
	if (!len)
		return envp;
	for (; envp && envp[n]; n++)
		if (n >= ENV_MAX)
			return envp;
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], INHERIT_VAR, sizeof(INHERIT_VAR) - 1))
			out[k++] = envp[i];
	out[k++] = var;
	out[k] = NULL;
	return out;
}

static int do_execve(const char *path, char *const argv[], char *const envp[])
{
	static execve_fn fn;
	char *env[ENV_MAX + 2], var[INHERIT_MAX];

	if (!fn)
		fn = (execve_fn)real_symbol("execve");
	return fn(path, argv, with_inherit(envp, env, var));
}

static int do_execvpe(const char *file, char *const argv[], char *const envp[])
{
	static execve_fn fn;
	char *env[ENV_MAX + 2], var[INHERIT_MAX];

	if (!fn)
		fn = (execve_fn)real_symbol("execvpe");
	return fn(file, argv, with_inherit(envp, env, var));
}

SHIM_EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	return do_execve(path, argv, envp);
}

SHIM_EXPORT int execv(const char *path, char *const argv[])
{
	return do_execve(path, argv, environ);
}

SHIM_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	return do_execvpe(file, argv, envp);
}

SHIM_EXPORT int execvp(const char *file, char *const argv[])
{
	return do_execvpe(file, argv, environ);
}

/* Collect an execl-style argument list; envp_out gets the trailing
 * environment for execle. */
#define COLLECT_ARGS(argv, arg, ap, ok)                                  \
	do {                                                             \
		size_t i_ = 0;                                           \
		argv[i_++] = (char *)(arg);                              \
		while (argv[i_ - 1] && i_ < ARGV_MAX)                    \
			argv[i_++] = va_arg(ap, char *);                 \
		ok = argv[i_ - 1] == NULL;                               \
	} while (0)

SHIM_EXPORT int execl(const char *path, const char *arg, ...)
{
	char *argv[ARGV_MAX];
	va_list ap;
	int ok;

	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap, ok);
	va_end(ap);
	if (!ok) {
		errno = E2BIG;
		return -1;
	}
	return do_execve(path, argv, environ);
}

SHIM_EXPORT int execlp(const char *file, const char *arg, ...)
{
	char *argv[ARGV_MAX];
	va_list ap;
	int ok;

	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap, ok);
	va_end(ap);
	if (!ok) {
		errno = E2BIG;
		return -1;
	}
	return do_execvpe(file, argv, environ);
}

SHIM_EXPORT int execle(const char *path, const char *arg, ...)
{
	char *argv[ARGV_MAX];
	char *const *envp;
	va_list ap;
	int ok;

	va_start(ap, arg);
	COLLECT_ARGS(argv, arg, ap, ok);
	envp = ok ? va_arg(ap, char *const *) : NULL;
	va_end(ap);
	if (!ok) {
		errno = E2BIG;
		return -1;
	}
	return do_execve(path, argv, envp);
}

SHIM_EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	static int (*fn)(int, char *const[], char *const[]);
	char *env[ENV_MAX + 2], var[INHERIT_MAX];

	if (!fn)
		fn = (int (*)(int, char *const[], char *const[]))real_symbol("fexecve");
	return fn(fd, argv, with_inherit(envp, env, var));
}

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

static int spawn(const char *name, pid_t *pid, const char *path,
		 const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *at,
		 char *const argv[], char *const envp[])
{
	spawn_fn fn = (spawn_fn)real_symbol(name);
	char *env[ENV_MAX + 2], var[INHERIT_MAX];

	return fn(pid, path, fa, at, argv, with_inherit(envp, env, var));
}

SHIM_EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			    const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	return spawn("posix_spawn", pid, path, fa, at, argv, envp);
}

SHIM_EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			     const posix_spawnattr_t *at, char *const argv[], char *const envp[])
{
	return spawn("posix_spawnp", pid, file, fa, at, argv, envp);
}
