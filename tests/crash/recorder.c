/*
 * The write recorder: an LD_PRELOAD shim for payhook.fcgi and payhook that
 * logs, in one file shared by every process, what reaches the store's
 * files and what the program answers, in the order it happened:
 *
 *   - every write to a store file (write, pwrite, writev, pwritev), with
 *     its offset and bytes, marked when the descriptor was opened with
 *     O_DSYNC (such a write is on disk when it returns);
 *   - every ftruncate, mmap and msync of a store file;
 *   - every fsync and fdatasync of a store file, or of the folder that
 *     holds one, as a start and a done record: a flush covers what was
 *     written before it started;
 *   - every name given to or taken from a store file: created by open,
 *     link, rename, unlink;
 *   - every request read from, and every answer written to, a connection
 *     the program accepted (the FastCGI socket), and with
 *     PH_REC_STDOUT=1 what it prints on its standard output (the answer
 *     of a command such as `payhook events`).
 *
 * Environment:
 *   PH_REC_LOG     the log file (appended to; created when missing)
 *   PH_REC_FILES   the store's files: absolute paths or fnmatch(3)
 *                  patterns, separated by ':'
 *   PH_REC_STDOUT  1: standard output is an answer, too
 *
 * Order: one lock (a mutex in the process, flock(2) on the log across
 * processes) is held from the start of a write to the store until its
 * record is in the log, so a flush that another process starts after the
 * bytes are in the page cache is logged after them.  An answer is written
 * and logged under the same lock: nothing the program does to the store
 * falls between an answer and its record.  When a record cannot be
 * written the process aborts: a log with a hole would make every crash
 * state built from it a lie.
 *
 * The log is a sequence of records: a 56-byte little-endian header
 * (struct rec_hdr) and len bytes of payload.  tests/crash/crashstates.py
 * reads it.
 */
#undef _FORTIFY_SOURCE
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define REC_MAGIC	0x43524850u	/* "PHRC" */
#define REC_FD_MAX	4096
#define REC_PATTERNS_MAX 8
#define REC_MAPS_MAX	64
#define REC_IOV_MAX	64	/* pieces of one write logged without a copy */

/* Record types; the numbers are the log format (crashstates.py). */
enum rec_type {
	REC_PROC = 1,		/* payload: the command line, NUL-separated */
	REC_OPEN = 2,		/* ino, dir; off: size; aux: open flags;
				 * flags: CREATED; payload: path */
	REC_WRITE = 3,		/* ino, off; flags: DSYNC; payload: bytes */
	REC_TRUNC = 4,		/* ino; off: the new length */
	REC_SYNC_START = 5,	/* ino; aux: enum rec_sync; flags: DIR */
	REC_SYNC_DONE = 6,	/* as SYNC_START; off: 0, or errno */
	REC_MMAP = 7,		/* ino; off: offset; aux: prot | flags << 16;
				 * payload: the length (8 bytes) */
	REC_MSYNC = 8,		/* ino; aux: msync flags */
	REC_ACCEPT = 9,		/* conn */
	REC_REQUEST = 10,	/* conn; payload: bytes read */
	REC_ANSWER = 11,	/* conn; payload: bytes written */
	REC_CONN_CLOSE = 12,	/* conn */
	REC_LINK = 13,		/* ino, dir; payload: old path NUL new path */
	REC_RENAME = 14,	/* ino, dir; payload: old path NUL new path */
	REC_UNLINK = 15,	/* ino, dir; payload: path */
	REC__MAX
};

enum rec_sync {
	REC_SYNC_FSYNC = 1,
	REC_SYNC_FDATASYNC = 2,
	REC_SYNC_MSYNC = 3,
	REC_SYNC__MAX
};

#define REC_F_DSYNC	0x1	/* a write through an O_DSYNC descriptor */
#define REC_F_CREATED	0x2	/* the open created the file */
#define REC_F_DIR	0x4	/* a flush of a folder */

struct rec_hdr {
	uint32_t magic;
	uint16_t type;
	uint16_t flags;
	int32_t pid;
	uint32_t conn;		/* connection number in this process */
	uint64_t ino;		/* the file (or folder) */
	uint64_t dir;		/* the folder of a name */
	uint64_t off;
	uint64_t aux;
	uint32_t len;		/* payload bytes after the header */
	uint32_t pad;
};
_Static_assert(sizeof(struct rec_hdr) == 56, "the log format's header");

enum rec_kind {
	REC_FD_NONE = 0,
	REC_FD_STORE,		/* a store file */
	REC_FD_DIR,		/* a folder that holds store files */
	REC_FD_ANSWER		/* a connection accepted, or stdout */
};

struct rec_fd {
	unsigned char kind;
	unsigned char dsync;
	uint32_t conn;
	uint64_t ino;
};

struct rec_map {
	uintptr_t start;
	size_t len;
	uint64_t ino;
};

struct rec_real {
	int (*open)(const char *, int, ...);
	int (*openat)(int, const char *, int, ...);
	int (*close)(int);
	ssize_t (*read)(int, void *, size_t);
	ssize_t (*write)(int, const void *, size_t);
	ssize_t (*pwrite)(int, const void *, size_t, off_t);
	ssize_t (*writev)(int, const struct iovec *, int);
	ssize_t (*pwritev)(int, const struct iovec *, int, off_t);
	ssize_t (*send)(int, const void *, size_t, int);
	int (*ftruncate)(int, off_t);
	int (*fsync)(int);
	int (*fdatasync)(int);
	void *(*mmap)(void *, size_t, int, int, int, off_t);
	int (*munmap)(void *, size_t);
	int (*msync)(void *, size_t, int);
	int (*accept)(int, struct sockaddr *, socklen_t *);
	int (*accept4)(int, struct sockaddr *, socklen_t *, int);
	int (*link)(const char *, const char *);
	int (*rename)(const char *, const char *);
	int (*unlink)(const char *);
};

static struct rec_real rec_real;
static int rec_logfd = -1;
static struct rec_fd rec_fds[REC_FD_MAX];
/* Static copies: nothing the shim keeps is on the heap, so a leak checker
 * in the program sees nothing of it. */
static char rec_patterns[REC_PATTERNS_MAX][PATH_MAX];
static size_t rec_npatterns;
static struct rec_map rec_maps[REC_MAPS_MAX];
static uint32_t rec_conns;
static pthread_mutex_t rec_mtx = PTHREAD_MUTEX_INITIALIZER;

static void
rec_die(const char *what)
{
	char msg[256];
	int n;

	n = snprintf(msg, sizeof(msg), "payhook recorder (pid %ld): %s: %s\n",
	    (long)getpid(), what, strerror(errno));
	if (n > 0 && rec_real.write != NULL)
		(void)rec_real.write(2, msg, (size_t)n < sizeof(msg) ?
		    (size_t)n : sizeof(msg) - 1);
	abort();
}

static void *
rec_sym(const char *name)
{
	return dlsym(RTLD_NEXT, name);
}

/* The real functions, looked up once (before the constructor, when
 * another library's constructor calls one of them first). */
static void
rec_resolve(void)
{
	rec_real.open = rec_sym("open");
	rec_real.openat = rec_sym("openat");
	rec_real.close = rec_sym("close");
	rec_real.read = rec_sym("read");
	rec_real.pwrite = rec_sym("pwrite");
	rec_real.writev = rec_sym("writev");
	rec_real.pwritev = rec_sym("pwritev");
	rec_real.send = rec_sym("send");
	rec_real.ftruncate = rec_sym("ftruncate");
	rec_real.fsync = rec_sym("fsync");
	rec_real.fdatasync = rec_sym("fdatasync");
	rec_real.mmap = rec_sym("mmap");
	rec_real.munmap = rec_sym("munmap");
	rec_real.msync = rec_sym("msync");
	rec_real.accept = rec_sym("accept");
	rec_real.accept4 = rec_sym("accept4");
	rec_real.link = rec_sym("link");
	rec_real.rename = rec_sym("rename");
	rec_real.unlink = rec_sym("unlink");
	rec_real.write = rec_sym("write");
	if (rec_real.open == NULL || rec_real.writev == NULL ||
	    rec_real.write == NULL || rec_real.read == NULL ||
	    rec_real.close == NULL)
		abort();
}

static void
rec_ready(void)
{
	if (rec_real.write == NULL)
		rec_resolve();
}

static void
rec_lock(void)
{
	pthread_mutex_lock(&rec_mtx);
	if (rec_logfd != -1 && flock(rec_logfd, LOCK_EX) == -1)
		rec_die("flock of the log");
}

static void
rec_unlock(void)
{
	if (rec_logfd != -1)
		(void)flock(rec_logfd, LOCK_UN);
	pthread_mutex_unlock(&rec_mtx);
}

/* Writes all of out[0..k) to the log, whatever the short writes. */
static void
rec_put_all(struct iovec *out, int k)
{
	ssize_t n;

	while (k > 0) {
		n = rec_real.writev(rec_logfd, out, k);
		if (n <= 0) {
			if (n == -1 && errno == EINTR)
				continue;
			rec_die("write to the log");
		}
		while (k > 0 && n > 0) {
			if ((size_t)n >= out[0].iov_len) {
				n -= (ssize_t)out[0].iov_len;
				memmove(out, out + 1, (size_t)(k - 1) *
				    sizeof(out[0]));
				k--;
			} else {
				out[0].iov_base = (char *)out[0].iov_base + n;
				out[0].iov_len -= (size_t)n;
				n = 0;
			}
		}
	}
}

/*
 * Appends one record whose payload is the first len bytes gathered from
 * iov.  h holds everything else.  The caller holds the lock; with
 * O_APPEND and the lock, one record is one piece of the log.
 */
static void
rec_put_iov(struct rec_hdr *h, const struct iovec *iov, int iovcnt,
    size_t len)
{
	struct iovec out[REC_IOV_MAX + 1];
	unsigned char *flat = NULL;
	size_t left = len;
	int i, k = 1;

	if (rec_logfd == -1)
		return;
	h->magic = REC_MAGIC;
	h->pid = (int32_t)getpid();
	h->len = (uint32_t)len;
	out[0].iov_base = h;
	out[0].iov_len = sizeof(*h);
	if (iovcnt > REC_IOV_MAX) {
		/* More pieces than fit: one copy of the payload. */
		if ((flat = malloc(len > 0 ? len : 1)) == NULL)
			rec_die("out of memory");
		for (i = 0; i < iovcnt && left > 0; i++) {
			size_t take = iov[i].iov_len < left ? iov[i].iov_len :
			    left;

			memcpy(flat + (len - left), iov[i].iov_base, take);
			left -= take;
		}
		out[1].iov_base = flat;
		out[1].iov_len = len - left;
		k = 2;
	} else
		for (i = 0; i < iovcnt && left > 0; i++) {
			size_t take = iov[i].iov_len < left ? iov[i].iov_len :
			    left;

			out[k].iov_base = iov[i].iov_base;
			out[k].iov_len = take;
			left -= take;
			k++;
		}
	if (left != 0)
		rec_die("payload shorter than its length");
	rec_put_all(out, k);
	free(flat);
}

static void
rec_put(struct rec_hdr *h, const void *data, size_t len)
{
	struct iovec v;

	v.iov_base = (void *)data;
	v.iov_len = len;
	rec_put_iov(h, &v, 1, len);
}

/* A header of type t, everything else zero. */
static struct rec_hdr
rec_hdr(enum rec_type t)
{
	struct rec_hdr h;

	memset(&h, 0, sizeof(h));
	h.type = (uint16_t)t;
	return h;
}

static struct rec_fd *
rec_fd(int fd)
{
	return fd >= 0 && fd < REC_FD_MAX ? &rec_fds[fd] : NULL;
}

/* ---- Which files are the store's ---------------------------------------- */

/* path made absolute (relative to dirfd, or the working folder) in buf. */
static const char *
rec_abs(int dirfd, const char *path, char *buf, size_t cap)
{
	char base[PATH_MAX], link[64];
	ssize_t n;

	if (path[0] == '/')
		return path;
	if (dirfd == AT_FDCWD) {
		if (getcwd(base, sizeof(base)) == NULL)
			return path;
	} else {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
		if ((n = readlink(link, base, sizeof(base) - 1)) <= 0)
			return path;
		base[n] = '\0';
	}
	if ((size_t)snprintf(buf, cap, "%s/%s", base, path) >= cap)
		return path;
	return buf;
}

static int
rec_matches(const char *abspath)
{
	size_t i;

	for (i = 0; i < rec_npatterns; i++)
		if (fnmatch(rec_patterns[i], abspath, 0) == 0)
			return 1;
	return 0;
}

/* The inode of the folder that holds abspath, or 0. */
static uint64_t
rec_dir_ino(const char *abspath)
{
	char tmp[PATH_MAX];
	struct stat st;

	if (strlen(abspath) >= sizeof(tmp))
		return 0;
	memcpy(tmp, abspath, strlen(abspath) + 1);
	return stat(dirname(tmp), &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* Is the folder fd is open on one that holds store files? */
static int
rec_is_store_dir(const struct stat *st)
{
	char tmp[PATH_MAX];
	struct stat want;
	size_t i;

	for (i = 0; i < rec_npatterns; i++) {
		memcpy(tmp, rec_patterns[i], sizeof(tmp));
		if (stat(dirname(tmp), &want) == 0 &&
		    want.st_dev == st->st_dev && want.st_ino == st->st_ino)
			return 1;
	}
	return 0;
}

/*
 * Around a real open: notes a store file or its folder.  existed: the
 * path was there before the open (under the lock, so no recorded process
 * created it in between).  The caller holds the lock.
 */
static void
rec_opened(int fd, const char *abspath, int flags, int existed)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;
	struct stat st;

	if (r == NULL)
		return;
	memset(r, 0, sizeof(*r));
	if (fstat(fd, &st) == -1)
		return;
	if (S_ISDIR(st.st_mode)) {
		if (rec_is_store_dir(&st)) {
			r->kind = REC_FD_DIR;
			r->ino = (uint64_t)st.st_ino;
		}
		return;
	}
	if (!S_ISREG(st.st_mode) || !rec_matches(abspath))
		return;
	r->kind = REC_FD_STORE;
	r->ino = (uint64_t)st.st_ino;
	r->dsync = (flags & O_DSYNC) == O_DSYNC;
	h = rec_hdr(REC_OPEN);
	h.ino = r->ino;
	h.dir = rec_dir_ino(abspath);
	h.off = (uint64_t)st.st_size;
	h.aux = (uint64_t)(unsigned)flags;
	h.flags = existed ? 0 : REC_F_CREATED;
	rec_put(&h, abspath, strlen(abspath));
}

static int
rec_open(int dirfd, const char *path, int flags, mode_t mode)
{
	char buf[PATH_MAX];
	const char *abspath;
	struct stat st;
	int fd, existed;

	if (rec_logfd == -1 || path == NULL)
		return rec_real.openat(dirfd, path, flags, mode);
	abspath = rec_abs(dirfd, path, buf, sizeof(buf));
	rec_lock();
	existed = stat(abspath, &st) == 0;
	fd = rec_real.openat(dirfd, path, flags, mode);
	if (fd != -1)
		rec_opened(fd, abspath, flags, existed);
	rec_unlock();
	return fd;
}

static void
rec_accepted(int fd)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;

	if (r == NULL || rec_logfd == -1)
		return;
	rec_lock();
	memset(r, 0, sizeof(*r));
	r->kind = REC_FD_ANSWER;
	r->conn = ++rec_conns;
	h = rec_hdr(REC_ACCEPT);
	h.conn = r->conn;
	rec_put(&h, NULL, 0);
	rec_unlock();
}

static void
rec_cmdline(void)
{
	char buf[2048];
	ssize_t n = 0, got;
	struct rec_hdr h = rec_hdr(REC_PROC);
	int fd;

	fd = rec_real.open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
	if (fd != -1) {
		while (n < (ssize_t)sizeof(buf) && (got = rec_real.read(fd,
		    buf + n, sizeof(buf) - (size_t)n)) > 0)
			n += got;
		rec_real.close(fd);
	}
	rec_lock();
	rec_put(&h, buf, (size_t)n);
	rec_unlock();
}

static ssize_t rec_write_stdout(void *, const char *, size_t);

/*
 * Standard output as an answer (connection 0).  stdio writes through
 * libc's internal write, which no preload sees; a cookie stream in place
 * of stdout brings every flush of what the program prints to write().
 */
static void
rec_stdout(void)
{
	cookie_io_functions_t io = { NULL, rec_write_stdout, NULL, NULL };
	FILE *f;

	if ((f = fopencookie(NULL, "w", io)) == NULL)
		rec_die("fopencookie");
	rec_fds[1].kind = REC_FD_ANSWER;
	rec_fds[1].conn = 0;
	stdout = f;
}

__attribute__((constructor)) static void
rec_init(void)
{
	const char *log = getenv("PH_REC_LOG"), *files = getenv("PH_REC_FILES");
	const char *out = getenv("PH_REC_STDOUT");
	char *list, *p, *save = NULL;

	rec_ready();
	if (log == NULL || *log == '\0')
		return;		/* loaded, but not asked to record */
	if (files != NULL && (list = strdup(files)) != NULL) {
		for (p = strtok_r(list, ":", &save); p != NULL &&
		    rec_npatterns < REC_PATTERNS_MAX;
		    p = strtok_r(NULL, ":", &save))
			if (strlen(p) < sizeof(rec_patterns[0]))
				memcpy(rec_patterns[rec_npatterns++], p,
				    strlen(p) + 1);
		free(list);
	}
	rec_logfd = rec_real.open(log, O_WRONLY | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0600);
	if (rec_logfd == -1)
		rec_die(log);
	/* The log's descriptor must not be taken for anything else. */
	if (rec_logfd < 3) {
		int fd = fcntl(rec_logfd, F_DUPFD_CLOEXEC, 100);

		if (fd == -1)
			rec_die("dup of the log");
		rec_real.close(rec_logfd);
		rec_logfd = fd;
	}
	rec_cmdline();
	if (out != NULL && strcmp(out, "1") == 0)
		rec_stdout();
}

/* ---- Opening and closing ------------------------------------------------ */

static mode_t
rec_mode(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

/* Sets mode to the mode argument an open call with flags was given after
 * them (0 when flags create nothing); used in the call itself, whose
 * "..." it reads. */
#define REC_MODE_ARG(flags, mode) do {					\
	va_list ap_;							\
									\
	va_start(ap_, flags);						\
	(mode) = rec_mode((flags), ap_);				\
	va_end(ap_);							\
} while (0)

int
open(const char *path, int flags, ...)
{
	mode_t mode;

	rec_ready();
	REC_MODE_ARG(flags, mode);
	return rec_open(AT_FDCWD, path, flags, mode);
}

int
openat(int dirfd, const char *path, int flags, ...)
{
	mode_t mode;

	rec_ready();
	REC_MODE_ARG(flags, mode);
	return rec_open(dirfd, path, flags, mode);
}

int
close(int fd)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;

	rec_ready();
	if (r != NULL && r->kind == REC_FD_ANSWER && rec_logfd != -1) {
		rec_lock();
		h = rec_hdr(REC_CONN_CLOSE);
		h.conn = r->conn;
		rec_put(&h, NULL, 0);
		memset(r, 0, sizeof(*r));
		rec_unlock();
	} else if (r != NULL)
		memset(r, 0, sizeof(*r));
	return rec_real.close(fd);
}

int
accept(int s, struct sockaddr *addr, socklen_t *len)
{
	int fd;

	rec_ready();
	fd = rec_real.accept(s, addr, len);
	if (fd != -1)
		rec_accepted(fd);
	return fd;
}

int
accept4(int s, struct sockaddr *addr, socklen_t *len, int flags)
{
	int fd;

	rec_ready();
	fd = rec_real.accept4(s, addr, len, flags);
	if (fd != -1)
		rec_accepted(fd);
	return fd;
}

/* ---- Names ---------------------------------------------------------------- */

/*
 * A name given or taken (link, rename, unlink) where either path is a
 * store file's: the real call and its record under the lock.
 */
static int
rec_name_op(enum rec_type t, const char *from, const char *to)
{
	char b1[PATH_MAX], b2[PATH_MAX], both[2 * PATH_MAX];
	const char *a1, *a2 = NULL;
	struct rec_hdr h;
	struct stat st;
	size_t n1, n2 = 0;
	int rc, have;

	a1 = rec_abs(AT_FDCWD, from, b1, sizeof(b1));
	if (to != NULL)
		a2 = rec_abs(AT_FDCWD, to, b2, sizeof(b2));
	if (rec_logfd == -1 || !(rec_matches(a1) ||
	    (a2 != NULL && rec_matches(a2)))) {
		if (t == REC_LINK)
			return rec_real.link(from, to);
		if (t == REC_RENAME)
			return rec_real.rename(from, to);
		return rec_real.unlink(from);
	}
	rec_lock();
	have = lstat(a1, &st) == 0;
	if (t == REC_LINK)
		rc = rec_real.link(from, to);
	else if (t == REC_RENAME)
		rc = rec_real.rename(from, to);
	else
		rc = rec_real.unlink(from);
	if (rc == 0) {
		int err = errno;

		h = rec_hdr(t);
		h.ino = have ? (uint64_t)st.st_ino : 0;
		h.dir = rec_dir_ino(a2 != NULL ? a2 : a1);
		n1 = strlen(a1);
		memcpy(both, a1, n1 + 1);
		if (a2 != NULL) {
			n2 = strlen(a2);
			memcpy(both + n1 + 1, a2, n2);
			n2++;
		}
		rec_put(&h, both, n1 + n2);
		errno = err;
	}
	rec_unlock();
	return rc;
}

int
link(const char *from, const char *to)
{
	rec_ready();
	return rec_name_op(REC_LINK, from, to);
}

int
rename(const char *from, const char *to)
{
	rec_ready();
	return rec_name_op(REC_RENAME, from, to);
}

int
unlink(const char *path)
{
	rec_ready();
	return rec_name_op(REC_UNLINK, path, NULL);
}

/* ---- Requests and answers ----------------------------------------------- */

ssize_t
read(int fd, void *buf, size_t n)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;
	ssize_t got;

	rec_ready();
	got = rec_real.read(fd, buf, n);
	if (got > 0 && r != NULL && r->kind == REC_FD_ANSWER &&
	    rec_logfd != -1) {
		rec_lock();
		h = rec_hdr(REC_REQUEST);
		h.conn = r->conn;
		rec_put(&h, buf, (size_t)got);
		rec_unlock();
	}
	return got;
}

/* ---- Writes ------------------------------------------------------------- */

/*
 * Where a write through fd's file position began, now that it wrote n
 * bytes.
 */
static uint64_t
rec_pos_before(int fd, ssize_t n)
{
	off_t end = lseek(fd, 0, SEEK_CUR);

	return end >= n ? (uint64_t)(end - n) : 0;
}

/* The real call of a wrapped write. */
enum rec_op {
	REC_OP_WRITE,
	REC_OP_WRITEV,
	REC_OP_PWRITE,
	REC_OP_PWRITEV,
	REC_OP_SEND,
	REC_OP__MAX
};

static ssize_t
rec_write_real(enum rec_op op, int fd, const struct iovec *iov, int cnt,
    off_t off, int flags)
{
	switch (op) {
	case REC_OP_WRITE:
		return rec_real.write(fd, iov[0].iov_base, iov[0].iov_len);
	case REC_OP_WRITEV:
		return rec_real.writev(fd, iov, cnt);
	case REC_OP_PWRITE:
		return rec_real.pwrite(fd, iov[0].iov_base, iov[0].iov_len,
		    off);
	case REC_OP_PWRITEV:
		return rec_real.pwritev(fd, iov, cnt, off);
	default:
		return rec_real.send(fd, iov[0].iov_base, iov[0].iov_len,
		    flags);
	}
}

/*
 * Every write: the real call and, to a store file or as an answer, its
 * record, both under the lock.  A positional write is a store write only,
 * send(2) an answer only.
 */
static ssize_t
rec_write(enum rec_op op, int fd, const struct iovec *iov, int cnt,
    off_t off, int flags)
{
	struct rec_fd *r = rec_fd(fd);
	int at = op == REC_OP_PWRITE || op == REC_OP_PWRITEV;
	struct rec_hdr h;
	ssize_t done;

	rec_ready();
	if (r == NULL || rec_logfd == -1 || r->kind == REC_FD_NONE ||
	    r->kind == REC_FD_DIR || (at && r->kind != REC_FD_STORE) ||
	    (op == REC_OP_SEND && r->kind != REC_FD_ANSWER))
		return rec_write_real(op, fd, iov, cnt, off, flags);
	rec_lock();
	done = rec_write_real(op, fd, iov, cnt, off, flags);
	if (done > 0) {
		if (r->kind == REC_FD_ANSWER) {
			h = rec_hdr(REC_ANSWER);
			h.conn = r->conn;
		} else {
			h = rec_hdr(REC_WRITE);
			h.ino = r->ino;
			h.off = at ? (uint64_t)off : rec_pos_before(fd, done);
			h.flags = r->dsync ? REC_F_DSYNC : 0;
		}
		rec_put_iov(&h, iov, cnt, (size_t)done);
	}
	rec_unlock();
	return done;
}

ssize_t
write(int fd, const void *buf, size_t n)
{
	struct iovec v = { (void *)buf, n };

	return rec_write(REC_OP_WRITE, fd, &v, 1, 0, 0);
}

ssize_t
writev(int fd, const struct iovec *iov, int cnt)
{
	return rec_write(REC_OP_WRITEV, fd, iov, cnt, 0, 0);
}

ssize_t
pwrite(int fd, const void *buf, size_t n, off_t off)
{
	struct iovec v = { (void *)buf, n };

	return rec_write(REC_OP_PWRITE, fd, &v, 1, off, 0);
}

ssize_t
pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	return rec_write(REC_OP_PWRITEV, fd, iov, cnt, off, 0);
}

ssize_t
send(int fd, const void *buf, size_t n, int flags)
{
	struct iovec v = { (void *)buf, n };

	return rec_write(REC_OP_SEND, fd, &v, 1, 0, flags);
}

static ssize_t
rec_write_stdout(void *cookie, const char *buf, size_t n)
{
	ssize_t done;

	(void)cookie;
	done = write(1, buf, n);
	return done < 0 ? 0 : done;
}

int
ftruncate(int fd, off_t len)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;
	int rc;

	rec_ready();
	if (r == NULL || r->kind != REC_FD_STORE || rec_logfd == -1)
		return rec_real.ftruncate(fd, len);
	rec_lock();
	rc = rec_real.ftruncate(fd, len);
	if (rc == 0) {
		h = rec_hdr(REC_TRUNC);
		h.ino = r->ino;
		h.off = (uint64_t)len;
		rec_put(&h, NULL, 0);
	}
	rec_unlock();
	return rc;
}

/* ---- Flushes ------------------------------------------------------------ */

static void
rec_sync_put(enum rec_type t, uint64_t ino, int dir, enum rec_sync how,
    int err)
{
	struct rec_hdr h = rec_hdr(t);

	h.ino = ino;
	h.flags = dir ? REC_F_DIR : 0;
	h.aux = how;
	h.off = (uint64_t)err;
	rec_lock();
	rec_put(&h, NULL, 0);
	rec_unlock();
}

/*
 * A flush covers what was written before it started: the start record is
 * logged under the lock (after every write already in the page cache),
 * the flush runs without it, the done record follows.
 */
static int
rec_flush(int (*real)(int), int fd, enum rec_sync how)
{
	struct rec_fd *r = rec_fd(fd);
	int rc, err, dir;

	if (r == NULL || (r->kind != REC_FD_STORE && r->kind != REC_FD_DIR) ||
	    rec_logfd == -1)
		return real(fd);
	dir = r->kind == REC_FD_DIR;
	rec_sync_put(REC_SYNC_START, r->ino, dir, how, 0);
	rc = real(fd);
	err = rc == 0 ? 0 : errno;
	rec_sync_put(REC_SYNC_DONE, r->ino, dir, how, err);
	errno = err;
	return rc;
}

int
fsync(int fd)
{
	rec_ready();
	return rec_flush(rec_real.fsync, fd, REC_SYNC_FSYNC);
}

int
fdatasync(int fd)
{
	rec_ready();
	return rec_flush(rec_real.fdatasync, fd, REC_SYNC_FDATASYNC);
}

/* ---- Maps ----------------------------------------------------------------- */

void *
mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	struct rec_fd *r = rec_fd(fd);
	struct rec_hdr h;
	uint64_t len64 = len;
	void *p;
	size_t i;

	rec_ready();
	p = rec_real.mmap(addr, len, prot, flags, fd, off);
	if (p == MAP_FAILED || r == NULL || r->kind != REC_FD_STORE ||
	    rec_logfd == -1)
		return p;
	rec_lock();
	for (i = 0; i < REC_MAPS_MAX; i++)
		if (rec_maps[i].len == 0) {
			rec_maps[i].start = (uintptr_t)p;
			rec_maps[i].len = len;
			rec_maps[i].ino = r->ino;
			break;
		}
	h = rec_hdr(REC_MMAP);
	h.ino = r->ino;
	h.off = (uint64_t)off;
	h.aux = (uint64_t)(unsigned)prot | (uint64_t)(unsigned)flags << 16;
	rec_put(&h, &len64, sizeof(len64));
	rec_unlock();
	return p;
}

int
munmap(void *addr, size_t len)
{
	size_t i;

	rec_ready();
	pthread_mutex_lock(&rec_mtx);
	for (i = 0; i < REC_MAPS_MAX; i++)
		if (rec_maps[i].len != 0 && rec_maps[i].start ==
		    (uintptr_t)addr)
			rec_maps[i].len = 0;
	pthread_mutex_unlock(&rec_mtx);
	return rec_real.munmap(addr, len);
}

int
msync(void *addr, size_t len, int flags)
{
	struct rec_hdr h;
	uint64_t ino = 0;
	int rc, err, found = 0;
	size_t i;

	rec_ready();
	pthread_mutex_lock(&rec_mtx);
	for (i = 0; i < REC_MAPS_MAX; i++)
		if (rec_maps[i].len != 0 && (uintptr_t)addr >=
		    rec_maps[i].start && (uintptr_t)addr <
		    rec_maps[i].start + rec_maps[i].len) {
			ino = rec_maps[i].ino;
			found = 1;
		}
	pthread_mutex_unlock(&rec_mtx);
	if (!found || rec_logfd == -1)
		return rec_real.msync(addr, len, flags);
	h = rec_hdr(REC_MSYNC);
	h.ino = ino;
	h.off = (uint64_t)len;
	h.aux = (uint64_t)(unsigned)flags;
	rec_lock();
	rec_put(&h, NULL, 0);
	rec_unlock();
	rec_sync_put(REC_SYNC_START, ino, 0, REC_SYNC_MSYNC, 0);
	rc = rec_real.msync(addr, len, flags);
	err = rc == 0 ? 0 : errno;
	rec_sync_put(REC_SYNC_DONE, ino, 0, REC_SYNC_MSYNC, err);
	errno = err;
	return rc;
}

/*
 * The ...64 names: with a 64-bit off_t they are the same functions as the
 * plain ones (glibc makes them aliases too), so one wrapper serves both.
 */
_Static_assert(sizeof(off_t) == 8, "the recorder needs a 64-bit off_t");
int open64(const char *, int, ...) __attribute__((alias("open")));
int openat64(int, const char *, int, ...) __attribute__((alias("openat")));
ssize_t pwrite64(int, const void *, size_t, off_t)
    __attribute__((alias("pwrite")));
int ftruncate64(int, off_t) __attribute__((alias("ftruncate")));
void *mmap64(void *, size_t, int, int, int, off_t)
    __attribute__((alias("mmap")));
