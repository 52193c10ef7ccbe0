/* The contract between the BPF program, the shim and Python (cffi reads this
 * file too, so it holds only #define constants, structs and plain C types). */
#pragma once

#define EXEC_PATH_SIZE 256
#define EXEC_COUNT_DEFAULT_ENTRIES 16384

/* One key per binary. Zeroed in full before the path is copied in, so bytes
 * left over from a longer path never make two keys of one path. */
struct exec_key {
	char path[EXEC_PATH_SIZE];
};

/* What the BPF program could not count exactly; one copy per CPU. */
struct exec_stats {
	unsigned long long dropped;   /* exec_count was full: the update failed */
	unsigned long long truncated; /* the path did not fit in exec_key.path */
	unsigned long long errors;    /* reading the path from the kernel failed */
};
