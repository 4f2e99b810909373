/*
 * cmd_run.c — srmudp run [--] CMD ARGS...: CMD with libsrmudp.so preloaded.
 *
 * Everything is checked before exec, so a mistake is one clear line here
 * rather than a half-working program: the whole configuration (as the
 * preload will read it), the key file, and whether the dynamic loader will
 * honour LD_PRELOAD for CMD at all.  It does not for setuid/setgid programs
 * or programs with file capabilities (secure-execution mode), nor for
 * statically linked ones (no loader), nor for another ELF class or machine;
 * and Go programs make their socket system calls directly.  All of those
 * would silently send their connections around srmudp, so they are refused.
 */
#include <errno.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "cli.h"

#define EXIT_CANNOT_EXEC 126 /* as the shell: found but not runnable */
#define EXIT_NOT_FOUND 127
/* "#!interp" chains deeper than this are refused by the kernel too. */
#define MAX_SCRIPT_DEPTH 4
/* Section-name tables are a few hundred bytes; anything huge is not one. */
#define SHSTRTAB_MAX (1u << 20)

static void help(FILE *f)
{
	fprintf(f,
		"Usage: srmudp run [--] CMD [ARGS...]\n\n"
		"Run CMD with libsrmudp.so preloaded: its TCP connections to the peers named in\n"
		"SRMUDP_PEERS travel over srmudp, everything else stays on the kernel.  The\n"
		"configuration is checked first; a bad one is reported in one line, exit 1.\n\n"
		"Refused (exit 126): setuid/setgid programs and programs with file capabilities\n"
		"(the loader ignores LD_PRELOAD for them), statically linked programs and Go\n"
		"programs (they bypass libc); use `srmudp serve` or `srmudp connect` for those.\n\n"
		"libsrmudp.so is taken from SRMUDP_PRELOAD, else next to the srmudp binary,\n"
		"else from ../lib relative to it.\n");
}

/* What the loader will do with a file. */
enum exec_kind { EXEC_DYNAMIC, EXEC_STATIC, EXEC_GO, EXEC_OTHER_ELF, EXEC_SCRIPT, EXEC_UNKNOWN };

struct elf_info {
	unsigned char cls;
	uint16_t machine;
};

static int rd(int fd, uint64_t off, void *buf, size_t n)
{
	ssize_t got;

	if (off > (uint64_t)INT64_MAX)
		return -1;
	do
		got = pread(fd, buf, n, (off_t)off);
	while (got < 0 && errno == EINTR);
	return got == (ssize_t)n ? 0 : -1;
}

/* Does the section-name table name a Go section?  Go keeps .go.buildinfo
 * (and .note.go.buildid) even in stripped binaries. */
static int has_go_section(int fd, uint64_t shoff, unsigned shnum, unsigned shentsize,
			  unsigned shstrndx)
{
	Elf64_Shdr strs;
	char *names;
	int go = 0;

	if (shstrndx >= shnum || shentsize < sizeof(Elf64_Shdr) ||
	    rd(fd, shoff + (uint64_t)shstrndx * shentsize, &strs, sizeof(strs)) != 0 ||
	    strs.sh_size == 0 || strs.sh_size > SHSTRTAB_MAX)
		return 0;
	names = malloc(strs.sh_size + 1);
	if (names == NULL)
		return 0;
	if (rd(fd, strs.sh_offset, names, strs.sh_size) == 0) {
		names[strs.sh_size] = '\0';
		for (size_t i = 0; i < strs.sh_size && !go; i += strlen(names + i) + 1)
			go = strcmp(names + i, ".go.buildinfo") == 0 ||
			     strcmp(names + i, ".note.go.buildid") == 0;
	}
	free(names);
	return go;
}

static enum exec_kind classify_elf(int fd, const unsigned char *ident, struct elf_info *info)
{
	int interp = 0;

	info->cls = ident[EI_CLASS];
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	if (ident[EI_DATA] != ELFDATA2LSB)
		return EXEC_OTHER_ELF;
#else
	if (ident[EI_DATA] != ELFDATA2MSB)
		return EXEC_OTHER_ELF;
#endif
	if (ident[EI_CLASS] == ELFCLASS64) {
		Elf64_Ehdr eh;
		Elf64_Phdr ph;

		if (rd(fd, 0, &eh, sizeof(eh)) != 0)
			return EXEC_OTHER_ELF;
		info->machine = eh.e_machine;
		for (unsigned i = 0; i < eh.e_phnum && eh.e_phentsize >= sizeof(ph) && !interp; i++) {
			if (rd(fd, eh.e_phoff + (uint64_t)i * eh.e_phentsize, &ph, sizeof(ph)) != 0)
				break;
			interp = ph.p_type == PT_INTERP;
		}
		if (has_go_section(fd, eh.e_shoff, eh.e_shnum, eh.e_shentsize, eh.e_shstrndx))
			return EXEC_GO;
	} else if (ident[EI_CLASS] == ELFCLASS32) {
		Elf32_Ehdr eh;
		Elf32_Phdr ph;

		if (rd(fd, 0, &eh, sizeof(eh)) != 0)
			return EXEC_OTHER_ELF;
		info->machine = eh.e_machine;
		for (unsigned i = 0; i < eh.e_phnum && eh.e_phentsize >= sizeof(ph) && !interp; i++) {
			if (rd(fd, eh.e_phoff + (uint64_t)i * eh.e_phentsize, &ph, sizeof(ph)) != 0)
				break;
			interp = ph.p_type == PT_INTERP;
		}
	} else {
		return EXEC_OTHER_ELF;
	}
	return interp ? EXEC_DYNAMIC : EXEC_STATIC;
}

static enum exec_kind classify(const char *path, struct elf_info *info, char interp[PATH_MAX])
{
	unsigned char head[PATH_MAX + 8];
	enum exec_kind k = EXEC_UNKNOWN;
	ssize_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return EXEC_UNKNOWN;
	do
		len = pread(fd, head, sizeof(head) - 1, 0);
	while (len < 0 && errno == EINTR);
	if (len >= EI_NIDENT && memcmp(head, ELFMAG, SELFMAG) == 0) {
		k = classify_elf(fd, head, info);
	} else if (len > 2 && head[0] == '#' && head[1] == '!') {
		/* "#! /path/interp [arg]": the kernel runs interp, so check it. */
		const char *p = (const char *)head + 2;
		size_t n;

		head[len] = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		n = strcspn(p, " \t\r\n");
		if (n > 0 && n < PATH_MAX) {
			memcpy(interp, p, n);
			interp[n] = '\0';
			k = EXEC_SCRIPT;
		}
	}
	close(fd);
	return k;
}

/* execvp's search, done here so that we check the file we will run. */
static int find_in_path(const char *cmd, char out[PATH_MAX])
{
	char def[256];
	const char *path = getenv("PATH");

	if (strchr(cmd, '/') != NULL) {
		if (snprintf(out, PATH_MAX, "%s", cmd) >= PATH_MAX)
			return -1;
		return access(out, F_OK) == 0 ? 0 : -1;
	}
	if (path == NULL) {
		size_t n = confstr(_CS_PATH, def, sizeof(def));

		path = n > 0 && n <= sizeof(def) ? def : "/bin:/usr/bin";
	}
	for (const char *p = path;; p++) {
		const char *end = strchr(p, ':');
		size_t dl = end ? (size_t)(end - p) : strlen(p);
		struct stat st;

		if (snprintf(out, PATH_MAX, "%.*s%s%s", (int)dl, p, dl ? "/" : "", cmd) < PATH_MAX &&
		    stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
			return 0;
		if (end == NULL)
			return -1;
		p = end;
	}
}

/* Refuse what the preload cannot reach.  Returns 0 or prints and fails. */
static int check_program(const char *path, const struct elf_info *lib, int depth)
{
	char q[QUOTE_BUF], interp[PATH_MAX];
	struct elf_info info = { 0, 0 };
	struct stat st;

	if (stat(path, &st) != 0) {
		cli_error("%s: %s", quote_str(q, path), strerror(errno));
		return -1;
	}
	if (st.st_mode & (S_ISUID | S_ISGID)) {
		cli_error("%s is set%cid: the dynamic loader ignores LD_PRELOAD for it, so srmudp "
			  "cannot carry its connections; refusing",
			  quote_str(q, path), (st.st_mode & S_ISUID) ? 'u' : 'g');
		return -1;
	}
	if (getxattr(path, "security.capability", NULL, 0) > 0) {
		cli_error("%s has file capabilities: the dynamic loader ignores LD_PRELOAD for it; "
			  "refusing",
			  quote_str(q, path));
		return -1;
	}
	switch (classify(path, &info, interp)) {
	case EXEC_STATIC:
		cli_error("%s is statically linked: LD_PRELOAD cannot reach it; refusing (use "
			  "srmudp serve or srmudp connect instead)",
			  quote_str(q, path));
		return -1;
	case EXEC_GO:
		cli_error("%s is a Go program: Go makes its socket calls without libc, so "
			  "LD_PRELOAD cannot reach them; refusing (use srmudp serve or srmudp "
			  "connect instead)",
			  quote_str(q, path));
		return -1;
	case EXEC_OTHER_ELF:
		cli_error("%s is an ELF file of another byte order or class; refusing",
			  quote_str(q, path));
		return -1;
	case EXEC_DYNAMIC:
		if (lib->cls != 0 && (info.cls != lib->cls || info.machine != lib->machine)) {
			cli_error("%s is built for another architecture (ELF class %d, machine %u) "
				  "than libsrmudp.so (class %d, machine %u); refusing",
				  quote_str(q, path), info.cls, info.machine, lib->cls,
				  lib->machine);
			return -1;
		}
		return 0;
	case EXEC_SCRIPT:
		if (depth >= MAX_SCRIPT_DEPTH) {
			cli_error("%s: too many levels of #! interpreters", quote_str(q, path));
			return -1;
		}
		return check_program(interp, lib, depth + 1);
	case EXEC_UNKNOWN:
		break;
	}
	return 0; /* not ELF, not #!: execv decides (ENOEXEC runs it with sh) */
}

/* libsrmudp.so: SRMUDP_PRELOAD, else next to this binary, else ../lib. */
static int find_preload(char out[PATH_MAX])
{
	char self[PATH_MAX], cand[PATH_MAX + 32], q[QUOTE_BUF];
	const char *env = getenv("SRMUDP_PRELOAD");
	ssize_t n;

	if (env != NULL && env[0] != '\0') {
		if (realpath(env, out) == NULL || access(out, R_OK) != 0) {
			cli_error("SRMUDP_PRELOAD: cannot use %s: %s", quote_str(q, env),
				  strerror(errno));
			return -1;
		}
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		cli_error("cannot find this program's path (/proc/self/exe): %s; set SRMUDP_PRELOAD",
			  strerror(errno));
		return -1;
	}
	self[n] = '\0';
	*strrchr(self, '/') = '\0';
	snprintf(cand, sizeof(cand), "%s/libsrmudp.so", self);
	if (realpath(cand, out) != NULL && access(out, R_OK) == 0)
		return 0;
	snprintf(cand, sizeof(cand), "%s/../lib/libsrmudp.so", self);
	if (realpath(cand, out) != NULL && access(out, R_OK) == 0)
		return 0;
	cli_error("cannot find libsrmudp.so in %s or %s/../lib; set SRMUDP_PRELOAD",
		  quote_str(q, self), self);
	return -1;
}

static int lib_info(const char *path, struct elf_info *info)
{
	char interp[PATH_MAX], q[QUOTE_BUF];
	enum exec_kind k = classify(path, info, interp);

	if (k == EXEC_UNKNOWN || k == EXEC_SCRIPT || k == EXEC_OTHER_ELF) {
		cli_error("%s is not a usable shared library", quote_str(q, path));
		return -1;
	}
	return 0;
}

/* LD_PRELOAD = lib, then whatever was there (unless it is there already). */
static int set_preload(const char *lib)
{
	const char *old = getenv("LD_PRELOAD");
	char q[QUOTE_BUF];

	if (strpbrk(lib, " :\t\n") != NULL) {
		cli_error("the path of libsrmudp.so %s contains a space or ':', which LD_PRELOAD "
			  "cannot express; set SRMUDP_PRELOAD to another path",
			  quote_str(q, lib));
		return -1;
	}
	if (old == NULL || old[0] == '\0')
		return setenv("LD_PRELOAD", lib, 1);
	size_t ll = strlen(lib);

	for (const char *p = old; (p = strstr(p, lib)) != NULL; p += ll) {
		int start = p == old || strchr(" :\t", p[-1]) != NULL;
		int end = p[ll] == '\0' || strchr(" :\t", p[ll]) != NULL;

		if (start && end)
			return 0;
	}
	size_t n = ll + strlen(old) + 2;
	char *v = malloc(n);

	if (v == NULL)
		return -1;
	snprintf(v, n, "%s:%s", lib, old);
	int rc = setenv("LD_PRELOAD", v, 1);

	free(v);
	return rc;
}

/* The preloaded program may chdir() before its engine starts (daemons do):
 * hand it absolute paths. */
static void absolutize_env(const struct srm_config *cfg)
{
	char abs[PATH_MAX];
	const char *c = getenv("SRMUDP_CONFIG");

	if (getenv("SRMUDP_KEY") != NULL && getenv("SRMUDP_KEY")[0] != '\0')
		setenv("SRMUDP_KEY", cfg->key_path, 1);
	if (getenv("SRMUDP_LOG_FILE") != NULL && getenv("SRMUDP_LOG_FILE")[0] != '\0')
		setenv("SRMUDP_LOG_FILE", cfg->log_file, 1);
	if (c != NULL && c[0] != '\0' && realpath(c, abs) != NULL)
		setenv("SRMUDP_CONFIG", abs, 1);
}

/* exec keeps our pid: the preload warms up the program that has it, not
 * the children a wrapper like `sh -c` starts (SRMUDP_WARMUP=auto). */
static int mark_program(void)
{
	char pid[24];

	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	return setenv("SRMUDP_RUN_PID", pid, 1);
}

int cmd_run(int argc, char **argv)
{
	char path[PATH_MAX], lib[PATH_MAX], q[QUOTE_BUF];
	struct elf_info li = { 0, 0 };
	struct srm_config cfg;
	uint8_t pub[SRM_KEY_BYTES];
	int first = 1;

	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		help(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--") == 0)
		first = 2;
	else if (argc >= 2 && argv[1][0] == '-') {
		cli_error("unknown option %s (put -- before a command that starts with '-')",
			  quote_str(q, argv[1]));
		return EXIT_USAGE;
	}
	if (first >= argc || argv[first][0] == '\0') {
		help(stderr);
		return EXIT_USAGE;
	}
	if (cli_load_config(&cfg, pub) != 0)
		return EXIT_CONFIG;
	if (cfg.peer_count == 0 && cfg.log_level >= SRM_LOG_WARN)
		fprintf(stderr, "%s: warning: SRMUDP_PEERS is empty; every connection stays on "
				"the kernel\n",
			cli_name);
	absolutize_env(&cfg);
	srm_config_free(&cfg);

	if (find_in_path(argv[first], path) != 0) {
		cli_error("%s: command not found", quote_str(q, argv[first]));
		return EXIT_NOT_FOUND;
	}
	if (find_preload(lib) != 0 || lib_info(lib, &li) != 0)
		return EXIT_CONFIG;
	if (check_program(path, &li, 0) != 0)
		return EXIT_CANNOT_EXEC;
	if (set_preload(lib) != 0 || mark_program() != 0)
		return EXIT_CONFIG;

	execv(path, argv + first);
	if (errno == ENOEXEC) {
		/* As execvp: a file without #! is a shell script. */
		size_t n = (size_t)(argc - first);
		char **sh = calloc(n + 2, sizeof(*sh));

		if (sh != NULL) {
			sh[0] = (char *)"sh";
			sh[1] = path;
			for (size_t i = 1; i < n; i++)
				sh[i + 1] = argv[first + (int)i];
			execv("/bin/sh", sh);
			free(sh);
		}
	}
	cli_error("cannot execute %s: %s", quote_str(q, path), strerror(errno));
	return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_EXEC;
}
