// SPDX-License-Identifier: BSD-2-Clause
/* An exec storm for the benchmark: WORKERS processes each posix_spawn and
 * reap SPAWNS children, cycling through the binaries given (or listed, one
 * per line, in @FILE). Exits non-zero if any spawn failed. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char **read_list(const char *file, int *count)
{
	FILE *in = fopen(file, "r");
	char **paths = NULL, *line = NULL;
	size_t size = 0;
	ssize_t len;
	int n = 0;

	if (!in) {
		perror(file);
		exit(2);
	}
	while ((len = getline(&line, &size, in)) > 0) {
		if (line[len - 1] == '\n')
			line[len - 1] = '\0';
		paths = realloc(paths, (n + 1) * sizeof(*paths));
		paths[n++] = strdup(line);
	}
	free(line);
	fclose(in);
	*count = n;
	return paths;
}

static int spawn_all(char **paths, int count, long first, long spawns)
{
	int failures = 0, status;
	pid_t pid;

	for (long i = first; i < first + spawns; i++) {
		char *path = paths[i % count];
		char *argv[] = {path, NULL};

		if (posix_spawn(&pid, path, NULL, NULL, argv, environ) ||
		    waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status))
			failures++;
	}
	return failures;
}

int main(int argc, char **argv)
{
	int workers, count, failed = 0, status;
	long spawns;
	char **paths;

	if (argc < 4) {
		fprintf(stderr, "usage: %s WORKERS SPAWNS BINARY... | @LIST\n", argv[0]);
		return 2;
	}
	workers = atoi(argv[1]);
	spawns = atol(argv[2]);
	if (argv[3][0] == '@')
		paths = read_list(argv[3] + 1, &count);
	else
		paths = &argv[3], count = argc - 3;
	for (int w = 0; w < workers; w++) {
		if (fork() == 0)
			_exit(spawn_all(paths, count, w * spawns, spawns) ? 1 : 0);
	}
	while (wait(&status) > 0)
		failed |= !WIFEXITED(status) || WEXITSTATUS(status);
	return failed;
}
