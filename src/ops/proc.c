/* What a process knows of itself: see proc.h. */
#include <pthread.h>
#include <unistd.h>

#include "ops/proc.h"

/* Starts at 1, so that a state made under generation 0 is always new. */
static unsigned proc_gen = 1;
static pid_t proc_cached;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

/* In the child of a fork: whatever was cached is the parent's. */
static void
proc_forked(void)
{
	proc_gen++;
	proc_cached = 0;
}

static void
proc_watch(void)
{
	pthread_atfork(NULL, NULL, proc_forked);
}

unsigned
proc_generation(void)
{
	pthread_once(&proc_once, proc_watch);
	return proc_gen;
}

pid_t
proc_pid(void)
{
	pthread_once(&proc_once, proc_watch);
	if (proc_cached == 0)
		proc_cached = getpid();
	return proc_cached;
}
