/* timed - run one command and print what the benchmark's tables need:
 *
 *   timed OUT CMD [ARG]...
 *
 * CMD's stdout and stderr go to the file OUT; one line goes to stdout:
 *
 *   wall_s cpu_s maxrss_kib exit
 *
 * wall: CLOCK_MONOTONIC from just before the fork to the child's exit; cpu:
 * the child's user + system time from wait4 (microseconds); maxrss: its peak
 * resident set from wait4 (the kernel carries this small process's own peak
 * into the child across exec, under 2 MiB: below any checker's); exit: its
 * status, 128 + N when killed by signal N.
 *
 * Why a C helper and not python with /usr/bin/time: on a machine where a page
 * fault is dear (~13 us each on the benchmark's VM), forking python (its heap
 * copied on write) and starting time added ~20 ms to every run, as much as a
 * whole check of a small image, to both checkers alike: every ratio was pulled
 * towards 1.
 *
 * Standalone: depends on libc only. Exit 0, or 1 when CMD could not be run.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: timed OUT CMD [ARG]...\n");
		return 1;
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	double t0 = now_s();
	pid_t pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		execvp(argv[2], argv + 2);
		_exit(127);
	}
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		perror("wait4");
		return 1;
	}
	double wall = now_s() - t0;
	double cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	printf("%.4f %.4f %ld %d\n", wall, cpu, ru.ru_maxrss, code);
	return 0;
}
