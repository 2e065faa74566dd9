/* What a process knows of itself without asking the kernel each time. */
#ifndef PH_PROC_H
#define PH_PROC_H

#include <sys/types.h>

/* This process's id: asked of the kernel once (getpid() is a system call,
 * and every log line carries it), again in a child of a fork. */
pid_t proc_pid(void);

/* A number that changes in every child of a fork: state kept per process
 * (a random start, a cached id) remembers the one it was made under and
 * makes itself again when it differs. */
unsigned proc_generation(void);

#endif
