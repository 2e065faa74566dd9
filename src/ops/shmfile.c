/* Shared mapped files: see shmfile.h. */
#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops/shmfile.h"

void *
shmfile_map(const char *path, size_t size, int (*setup)(void *p), int *fdp)
{
	struct stat st;
	void *m = NULL, *p;
	int fd, saved, rc;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) == -1)
		return NULL;
	if (flock(fd, LOCK_EX) == -1 || fstat(fd, &st) == -1)
		goto out;
	if ((size_t)st.st_size < size && ftruncate(fd, (off_t)size) == -1)
		goto out;
	/* Blocks for every page now: a page of a sparse file first written
	 * through the mapping on a full disk kills the writer (SIGBUS). */
	if ((rc = posix_fallocate(fd, 0, (off_t)size)) != 0 &&
	    rc != EOPNOTSUPP && rc != EINVAL) {
		errno = rc;
		goto out;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		goto out;
	if (setup(p) == -1) {
		saved = errno;
		munmap(p, size);
		errno = saved;
		goto out;
	}
	m = p;
out:
	saved = errno;
	/* Unlocked by hand: the mapping keeps the open file, and with it an
	 * flock, alive after close(). */
	flock(fd, LOCK_UN);
	if (m != NULL && fdp != NULL)
		*fdp = fd;
	else
		close(fd);
	errno = saved;
	return m;
}
