/* What every pyexec BPF program shares with its loader and with Python: sizes,
 * the filters, the kernel features with fallbacks, the names of pins. cffi
 * reads this file, and build.py writes its constants into pyexec/_contract.py,
 * so it holds only #define constants, enums, structs and plain C types. */
#pragma once

#define EXEC_PATH_SIZE 4096 /* PATH_MAX: a path of up to 4095 bytes and its NUL */
#define EXEC_NAME_MAX 255 /* the longest name of one component */
#define EXEC_COMM_SIZE 16
#define EXEC_UID_FILTER_SIZE 64 /* how many uids --uid may name */
#define EXEC_MAX_ENTRIES_LIMIT 2147483647 /* the most entries a BPF map takes */
#define EXEC_ENOTSUPP 524 /* the kernel's own "operation not supported", not in errno.h */

/* In a pin directory: each attached program's link, under this prefix and its name. */
#define EXEC_PIN_LINK_PREFIX "link_"
#define EXEC_PIN_UIDS "uid_filter"
#define EXEC_PIN_SETTINGS "settings" /* the .rodata map, where the settings are */
#define EXEC_PIN_LOSSES "exec_losses"

/* The filters of pyexec run, applied in the kernel before anything is stored:
 * each under its option's name; off when 0 or "". The prefix's bytes last:
 * what every execution reads shares its first cache lines. */
struct exec_filters {
	unsigned int uid_count;         /* --uid: only the real uids in the uid_filter map */
	unsigned int cgroup_level;      /* --cgroup: the depth of... */
	unsigned long long cgroup;      /* ...this cgroup v2 id: only it and those below it */
	char comm[EXEC_COMM_SIZE];      /* --comm: only this command name (after exec) */
	unsigned int path_prefix_len;
	unsigned int exclude_tgid;      /* --exclude-self: this process (tgid) left out, with its children */
	char path_prefix[EXEC_PATH_SIZE]; /* --path-prefix: only paths that start so */
};

/* Kernel features pyexec uses where the running kernel has them, each with a
 * fallback that counts the same (pyexec/kernel.py describes each). */
struct exec_features {
	bool task_btf;   /* bpf_get_current_task_btf: failed exec calls read the task by plain loads */
	bool iterators;  /* open-coded iterators, bpf_rdonly_cast: the resolved walk by plain loads */
	bool name_loads; /* loads through a char * of a BTF-typed struct: invoked names by plain loads */
	bool ancestor_cgroup; /* bpf_get_current_ancestor_cgroup_id in tracing programs: --cgroup by it */
	bool loop;       /* bpf_loop: without iterators, the resolved walk as deep as with them */
};

/* What a program could not record exactly (the exec_losses map); one copy per CPU. */
struct exec_losses {
	unsigned long long dropped;   /* a map was full: the update failed */
	unsigned long long truncated; /* the path did not fit */
	unsigned long long errors;    /* reading the path failed */
	unsigned long long missed;    /* the kernel did not run the program (it was running on
	                               * that CPU already): never written by a program, the
	                               * reader adds the kernel's own count (recursion_misses) */
	unsigned long long collisions; /* another path had the same identity already: not counted */
};
