/* A small file that every process of a store maps and shares. */
#ifndef PH_SHMFILE_H
#define PH_SHMFILE_H

#include <stddef.h>

/*
 * Maps size bytes of the file at path (made 0600 the first time, its
 * blocks allocated: a full disk refuses the map, it does not kill a later
 * write through it), shared.
 * setup(p) runs on the mapping under an exclusive flock of the file, so
 * that one process at a time looks at its header: it makes the contents
 * its own when they are not (a new file, another version) and returns 0,
 * or -1 to give up.  The mapping, or NULL with errno set.  With fdp the
 * open file is kept there (for later flocks), else closed: the mapping
 * does not need it.
 */
void *shmfile_map(const char *path, size_t size, int (*setup)(void *p),
    int *fdp);

#endif
