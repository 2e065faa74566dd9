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

/* The first 8 characters of the boot's id, into id (9 bytes); "" when
 * unread. */
static void
proc_boot_id(char id[9])
{
	FILE *f;
	size_t n = 0;

	if ((f = fopen("/proc/sys/kernel/random/boot_id", "re")) != NULL) {
		n = fread(id, 1, 8, f);
		fclose(f);
	}
	id[n == 8 ? 8 : 0] = '\0';
}

void
proc_where(char *buf, size_t cap)
{
	char host[256], boot[9], ns[64], *open, *close;
	ssize_t n;
	int len;

	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	proc_boot_id(boot);
	/* "pid:[4026531836]": the namespace's inode. */
	ns[0] = '\0';
	if ((n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1)) > 0) {
		ns[n] = '\0';
		if ((open = strchr(ns, '[')) != NULL &&
		    (close = strchr(open, ']')) != NULL) {
			*close = '\0';
			memmove(ns, open + 1, strlen(open + 1) + 1);
		} else
			ns[0] = '\0';
	}
	if (boot[0] == '\0' && ns[0] == '\0')
		len = snprintf(buf, cap, "%s", host);
	else
		len = snprintf(buf, cap, "%s (boot %s, pid ns %s)", host,
		    boot[0] != '\0' ? boot : "?", ns[0] != '\0' ? ns : "?");
	if (len < 0)
		buf[0] = '\0';
}
