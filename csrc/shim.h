/* The C API of pyexec's extension: a thin layer over libbpf and the
 * execcount skeleton. cffi reads this file as its cdef. Every int-returning
 * function returns 0 or a negative errno. */
#pragma once
#include <stdbool.h>
#include "execcount.h"

struct pyexec_counter;

/* Settings applied between opening and loading the BPF object. */
struct pyexec_config {
	unsigned int max_entries; /* capacity of exec_count; 0 keeps the default */
	bool resolve_paths;       /* key on the file executed, not the name given to exec */
	unsigned int key_fields;  /* enum exec_by: what the key holds */
	bool count_attempts;      /* failed exec calls too (syscall tracepoints: tracefs) */
	bool debug;               /* bpf_printk each counted key to the trace pipe */
	/* Filters; each is off when 0, NULL or "". */
	unsigned int excluded_tgid;        /* not this process, nor its children */
	const unsigned int *uids;          /* only these real uids... */
	unsigned int uid_count;            /* ...up to EXEC_UID_FILTER_SIZE of them */
	unsigned long long cgroup;         /* only this cgroup v2 id and below... */
	unsigned int cgroup_level;         /* ...which is this deep (root: 0) */
	char comm[EXEC_COMM_SIZE];         /* only this command name */
	char path_prefix[EXEC_PATH_SIZE];  /* only paths that start so */
	struct exec_features features;     /* the kernel features to use where present */
};

/* Opens, configures and loads the BPF program; counting starts on attach. */
int pyexec_counter_load(const struct pyexec_config *config, struct pyexec_counter **out);
int pyexec_counter_attach(struct pyexec_counter *counter);
/* Detaches, unloads and frees; NULL is fine. */
void pyexec_counter_destroy(struct pyexec_counter *counter);

unsigned int pyexec_counter_max_entries(const struct pyexec_counter *counter);
/* The kernel features the loaded program uses (those its settings need). */
void pyexec_counter_features(const struct pyexec_counter *counter, struct exec_features *out);

/* A snapshot of exec_count as columns, allocated by the caller with room
 * for capacity entries. */
struct pyexec_snapshot {
	unsigned int capacity;
	unsigned int found;        /* entries written */
	char *paths;               /* capacity * EXEC_PATH_SIZE bytes; each path is followed by a NUL */
	unsigned long paths_size;  /* bytes written to paths */
	unsigned long long *counts;
	/* Columns written only when not NULL, capacity entries each. */
	unsigned int *uids;
	char *comms;                 /* EXEC_COMM_SIZE bytes each */
	char *parents;               /* EXEC_COMM_SIZE bytes each */
	unsigned long long *cgroups;
	int *outcomes;
	unsigned char *truncated;    /* 1 where the path was cut */
};

/* Reads the whole of exec_count into out, in as few syscalls as the kernel
 * allows (batches, or key by key where batch operations are missing). */
int pyexec_counter_snapshot(struct pyexec_counter *counter, struct pyexec_snapshot *out);
/* Reads key by key from now on, as on kernels without batch map operations. */
void pyexec_counter_use_per_key_reads(struct pyexec_counter *counter);
/* Sums exec_stats over all CPUs. */
int pyexec_counter_stats(struct pyexec_counter *counter, struct exec_stats *out);

/* A map of pyexec's, as bpftool map list shows it, and how full it is. */
struct pyexec_map_info {
	unsigned int id;
	char name[16];
	unsigned int type;         /* enum bpf_map_type: see pyexec_map_type_name */
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int flags;
	unsigned int btf_id;
	unsigned long long memlock; /* bytes, from the map's fdinfo */
	long long entries;          /* keys in use; -1 for arrays, which are always full */
};

/* Lists the maps loaded on this host whose names are those of pyexec's BPF
 * object, from any pyexec process: up to capacity of them. */
int pyexec_list_maps(struct pyexec_map_info *out, unsigned int capacity, unsigned int *found);
const char *pyexec_map_type_name(unsigned int type);

/* libbpf messages up to this level (0 warn, 1 info, 2 debug) are passed to
 * pyexec_libbpf_log; the rest are not even formatted. */
void pyexec_set_log_level(int level);
const char *pyexec_libbpf_version(void);
