/* The contract between the BPF program, the shim and Python (cffi reads this
 * file too, so it holds only #define constants, enums, structs and plain C types). */
#pragma once

#define EXEC_PATH_SIZE 256
#define EXEC_COMM_SIZE 16
#define EXEC_COUNT_DEFAULT_ENTRIES 16384
#define EXEC_UID_FILTER_SIZE 64 /* how many uids --uid may name */

/* The fields of exec_key that are filled in; the others stay 0. */
enum exec_by {
	EXEC_BY_PATH = 1,
	EXEC_BY_UID = 2,
	EXEC_BY_COMM = 4,
	EXEC_BY_PARENT = 8,
	EXEC_BY_CGROUP = 16,
};

/* One key per binary (and per uid, comm, ... when counted by those). Zeroed in
 * full before it is filled, so leftover bytes never make two keys of one. */
struct exec_key {
	char path[EXEC_PATH_SIZE];     /* EXEC_BY_PATH: the file executed, or the name given */
	char comm[EXEC_COMM_SIZE];     /* EXEC_BY_COMM: the command name after exec */
	char parent[EXEC_COMM_SIZE];   /* EXEC_BY_PARENT: the parent's command name */
	unsigned long long cgroup;     /* EXEC_BY_CGROUP: the cgroup v2 id */
	unsigned int uid;              /* EXEC_BY_UID: the real uid */
	int outcome;                   /* 0: executed; else the errno of a failed exec call */
	unsigned int truncated;        /* EXEC_BY_PATH: 1 if path was cut to fit (a resolved
	                                * path loses its start, a name given to exec its end) */
};

/* Kernel features pyexec uses where the running kernel has them, each with
 * a fallback that counts the same. Before load: which ones to use if present
 * (in the BPF program's .rodata); after load: which ones it uses. */
struct exec_features {
	bool task_btf;   /* bpf_get_current_task_btf: failed exec calls read the task by plain loads */
	bool iterators;  /* open-coded iterators, bpf_rdonly_cast: the resolved walk by plain loads */
	bool name_loads; /* loads through a char * of a BTF-typed struct: invoked names by plain loads */
	bool ancestor_cgroup; /* bpf_get_current_ancestor_cgroup_id in tracing programs: --cgroup by it */
};

/* What the BPF program could not count exactly; one copy per CPU. */
struct exec_stats {
	unsigned long long dropped;   /* exec_count was full: the update failed */
	unsigned long long truncated; /* the path did not fit in exec_key.path */
	unsigned long long errors;    /* reading the path failed */
};
