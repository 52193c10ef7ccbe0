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
	unsigned int mnt_ns;           /* EXEC_BY_PATH, resolved: 0 for a file of the host's mount
	                                * namespace; else the inode number of the one its mount is
	                                * in, where path is that namespace's view, not the host's */
};

/* --key: what the path in the key is. */
enum exec_path_key {
	EXEC_KEY_RESOLVED = 0, /* the file executed, as /proc/PID/exe names it */
	EXEC_KEY_INVOKED = 1,  /* the file name as given to exec */
};

/* --mode: what counts. */
enum exec_mode {
	EXEC_MODE_EXEC = 0,     /* successful executions */
	EXEC_MODE_ATTEMPTS = 1, /* every exec call, with its outcome */
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

/* Changes whenever struct exec_settings or struct exec_key does: a pinned
 * counter of another layout is refused, not misread. */
#define EXEC_LAYOUT 3

/* How a counter counts: the options of pyexec run, each under its name there,
 * as the BPF program reads them (its .rodata, set once before load, where a
 * pinned counter's readers find them again). Filters are off when 0 or "". */
struct exec_settings {
	unsigned int layout;            /* EXEC_LAYOUT of the pyexec that loaded it */
	unsigned int key;               /* enum exec_path_key */
	unsigned int mode;              /* enum exec_mode */
	unsigned int by;                /* enum exec_by: the fields of the key filled in */
	unsigned int uid_count;         /* --uid: only the real uids in the uid_filter map */
	unsigned int cgroup_level;      /* --cgroup: the depth of... */
	unsigned long long cgroup;      /* ...this cgroup v2 id: only it and those below it */
	char comm[EXEC_COMM_SIZE];      /* --comm: only this command name (after exec) */
	char path_prefix[EXEC_PATH_SIZE]; /* --path-prefix: only paths that start so (the key's) */
	unsigned int path_prefix_len;
	unsigned int exclude_self;      /* --exclude-self: the process (tgid) left out, with its children */
	bool debug;                     /* --debug: bpf_printk each key counted */
	struct exec_features features;  /* --avoid: the kernel features to use where present */
	unsigned long long started_at;  /* wall clock at load, in ns since the epoch */
	unsigned int max_entries;       /* exec_count's capacity, as loaded */
	unsigned int root_reserve;      /* of it, the keys only root's (uid 0) executions may take:
	                                 * no other user can fill the map for root */
};

/* What the BPF program could not count exactly; one copy per CPU. */
struct exec_stats {
	unsigned long long dropped;   /* exec_count was full: the update failed */
	unsigned long long truncated; /* the path did not fit in exec_key.path */
	unsigned long long errors;    /* reading the path failed */
};
