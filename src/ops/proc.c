/* What a process knows of itself: see proc.h. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ops/proc.h"

/* Starts at 1, so that a state made under generation 0 is always new. */
static unsigned proc_gen = 1;
static pid_t proc_cached;
static unsigned long long proc_start_cached;
static pthread_once_t proc_once = PTHREAD_ONCE_INIT;

/* In the child of a fork: whatever was cached is the parent's. */
static void
proc_forked(void)
{
	proc_gen++;
	proc_cached = 0;
	proc_start_cached = 0;
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

unsigned long long
proc_start_of(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	FILE *f;
	size_t n;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command's name, which may hold anything but ends at the
	 * last ')': the state is field 3, the start time field 22. */
	if ((p = strrchr(buf, ')')) == NULL)
		return 0;
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p != NULL)
		start = strtoull(p + 1, NULL, 10);
	return start;
}

unsigned long long
proc_start(void)
{
	pthread_once(&proc_once, proc_watch);
	if (proc_start_cached == 0)
		proc_start_cached = proc_start_of(proc_pid());
	return proc_start_cached;
}

int
proc_alive(pid_t pid, unsigned long long start)
{
	unsigned long long now;

	if (pid <= 0)
		return 0;
	if (start != 0 && (now = proc_start_of(pid)) != 0)
		return now == start;
	return kill(pid, 0) == 0 || errno != ESRCH;
}
