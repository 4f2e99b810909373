/*
 * ends.c — see ends.h.
 *
 * One writer (the engine thread, under the engine lock) and lock-free
 * readers in any process: an entry's error is stored before its handle,
 * and a reader checks the handle again after reading the error, so a slot
 * being reused is never read as the wrong stream's end.  Readers only
 * write the taken flag, with an atomic exchange.
 */
#include "sys.h"
#include "ends.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srmudp.h"

#define ENDS_MAGIC 0x53524d45u /* "SRME" */

struct ends_slot {
	_Atomic uint64_t handle;
	_Atomic int32_t error;
	_Atomic uint32_t taken; /* reported once, by whichever process first */
};

struct ends_file {
	uint32_t magic;
	uint32_t slots;
	_Atomic uint64_t next;
	struct ends_slot slot[ENDS_RING];
};

struct ends_board {
	struct ends_file *file;
	char path[256]; /* set when we created the file */
	ino_t ino;      /* ...and which file that was */
};

static int board_path(pid_t pid, char *out, size_t len)
{
	char dir[200];
	if (srm_runtime_dir(dir, sizeof(dir)) != 0)
		return -1;
	int n = snprintf(out, len, "%s/%d.ends", dir, (int)pid);
	return n > 0 && (size_t)n < len ? 0 : -1;
}

static struct ends_file *map_file(int fd, int prot)
{
	void *m = mmap(NULL, sizeof(struct ends_file), prot, MAP_SHARED, fd, 0);
	return m == MAP_FAILED ? NULL : m;
}

struct ends_board *ends_create(void)
{
	struct ends_board *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	int fd = -1;
	if (board_path(getpid(), b->path, sizeof(b->path)) == 0) {
		/* A stale file of a dead process with our pid is replaced. */
		unlink(b->path);
		fd = open(b->path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	}
	struct stat st;
	if (fd >= 0 && ftruncate(fd, sizeof(struct ends_file)) == 0 && fstat(fd, &st) == 0) {
		b->ino = st.st_ino;
		b->file = map_file(fd, PROT_READ | PROT_WRITE);
	}
	if (fd >= 0)
		sys_close(fd);
	if (!b->file) {
		if (fd >= 0)
			unlink(b->path);
		b->path[0] = 0;
		/* Shared even so: a forked child still sees our later records. */
		void *m = mmap(NULL, sizeof(struct ends_file), PROT_READ | PROT_WRITE,
			       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		b->file = m == MAP_FAILED ? NULL : m;
	}
	if (!b->file) {
		free(b);
		return NULL;
	}
	b->file->slots = ENDS_RING;
	b->file->magic = ENDS_MAGIC;
	return b;
}

void ends_destroy(struct ends_board *b)
{
	if (!b)
		return;
	/* Another engine of this process may have taken the name since. */
	struct stat st;
	if (b->path[0] && stat(b->path, &st) == 0 && st.st_ino == b->ino)
		unlink(b->path);
	munmap(b->file, sizeof(struct ends_file));
	free(b);
}

void ends_record(struct ends_board *b, uint64_t handle, int error)
{
	uint64_t n = atomic_load_explicit(&b->file->next, memory_order_relaxed);
	struct ends_slot *s = &b->file->slot[n % ENDS_RING];
	atomic_store_explicit(&s->handle, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&s->error, error, memory_order_relaxed);
	atomic_store_explicit(&s->taken, 0, memory_order_relaxed);
	atomic_store_explicit(&s->handle, handle, memory_order_release);
	atomic_store_explicit(&b->file->next, n + 1, memory_order_release);
}

static struct ends_slot *find(const struct ends_board *b, uint64_t handle, int *error)
{
	struct ends_file *f = b->file;
	if (handle == 0 || f->magic != ENDS_MAGIC || f->slots != ENDS_RING)
		return NULL;
	/* Only the slots written so far: most engines end few streams. */
	uint64_t used = atomic_load_explicit(&f->next, memory_order_acquire);
	for (size_t i = 0; i < used && i < ENDS_RING; i++) {
		struct ends_slot *s = &f->slot[i];
		if (atomic_load_explicit(&s->handle, memory_order_acquire) != handle)
			continue;
		*error = atomic_load_explicit(&s->error, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&s->handle, memory_order_relaxed) == handle)
			return s;
	}
	return NULL;
}

int ends_lookup(const struct ends_board *b, uint64_t handle)
{
	int error = 0;
	return find(b, handle, &error) ? error : 0;
}

int ends_take(struct ends_board *b, uint64_t handle)
{
	int error = 0;
	struct ends_slot *s = find(b, handle, &error);
	return s && atomic_exchange(&s->taken, 1) == 0 ? error : 0;
}

struct ends_board *ends_attach(pid_t pid)
{
	char path[256];
	if (board_path(pid, path, sizeof(path)) != 0)
		return NULL;
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || (size_t)st.st_size < sizeof(struct ends_file)) {
		sys_close(fd); /* mapping past its end would fault */
		return NULL;
	}
	struct ends_board *b = calloc(1, sizeof(*b));
	if (b)
		b->file = map_file(fd, PROT_READ | PROT_WRITE);
	sys_close(fd);
	if (b && !b->file) {
		free(b);
		return NULL;
	}
	return b;
}
