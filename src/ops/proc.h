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

/* When process pid started, in clock ticks after boot (/proc/PID/stat):
 * with its pid, who a process is, where a pid alone may be another's (a
 * restarted container gives its processes the same small pids); 0 when
 * it cannot be read (no such process). */
unsigned long long proc_start_of(pid_t pid);
/* This process's start, read once (again in a child of a fork). */
unsigned long long proc_start(void);
/* Is process pid, started at start (0: not known), still there?  By its
 * start time where /proc tells it, else by kill(pid, 0). */
int proc_alive(pid_t pid, unsigned long long start);

/*
 * Where this process's pid means something, as text into buf (cap bytes,
 * at least 1): the host's name, the kernel's boot and the pid namespace
 * ("db1 (boot 3f2a9c1e, pid ns 4026531836)").  Two processes whose texts
 * are equal can check each other's pid; two hosts of one name, the same
 * host booted again, or two containers of one name on one kernel give
 * different texts.  What cannot be read is left out; "" when nothing
 * can.
 */
void proc_where(char *buf, size_t cap);

#endif
