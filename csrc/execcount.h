/* The exec counter's contract between its BPF program, its loader and Python
 * (cffi reads this file too: only #define constants, enums, structs and plain
 * C types). */
#pragma once
#include "contract.h"

#define EXEC_COUNT_DEFAULT_ENTRIES 16384
#define EXEC_PIN_COUNT "exec_count"

/* --by: the fields of exec_count_key that are filled in; the others stay 0. */
enum exec_by {
	EXEC_BY_PATH = 1,
	EXEC_BY_UID = 2,
	EXEC_BY_COMM = 4,
	EXEC_BY_PARENT = 8,
	EXEC_BY_CGROUP = 16,
};

/* What a counted path is known by: a 128-bit hash of its record (struct
 * exec_path_header and the path), keyed with settings.secret, so no one who
 * does not know the secret can make two paths share one. 0: no path. */
struct exec_path_id {
	unsigned long long hash[2];
};

/* The key of the exec_count map: one per binary (and per uid, comm, ... when
 * counted by those). Zeroed in full before it is filled, so leftover bytes
 * never make two keys of one. */
struct exec_count_key {
	struct exec_path_id path;      /* EXEC_BY_PATH: the path's id, in the exec_paths maps */
	char comm[EXEC_COMM_SIZE];     /* EXEC_BY_COMM: the command name after exec */
	char parent[EXEC_COMM_SIZE];   /* EXEC_BY_PARENT: the parent's command name */
	unsigned long long cgroup;     /* EXEC_BY_CGROUP: the cgroup v2 id */
	unsigned int uid;              /* EXEC_BY_UID: the real uid */
	int outcome;                   /* 0: executed; else the errno of a failed exec call */
};

/* Each counted path is kept once, in the first of the exec_paths maps whose
 * value holds its record: the header, then its bytes (no NUL). The maps' value
 * sizes grow by four, so a path takes memory in proportion to its length. */
struct exec_path_header {
	unsigned short length;         /* of the path, in bytes */
	unsigned char truncated;       /* 1 if it was cut to fit (a resolved path loses its start) */
	unsigned char reserved;
	unsigned int mnt_ns;           /* resolved: 0 for a file of the host's mount namespace; else
	                                * the inode number of the one its mount is in, where the
	                                * path is that namespace's view, not the host's */
};

#define EXEC_PATH_CLASSES 4
#define EXEC_PATH_RECORD_MAX 4104 /* the header (8 bytes) and the longest path, EXEC_PATH_SIZE bytes with room */
/* The value size of each exec_paths map, and the share of max_entries it
 * holds (max_entries >> shift, at least EXEC_PATHS_MIN_ENTRIES). */
#define EXEC_PATHS_0_SIZE 64
#define EXEC_PATHS_1_SIZE 256
#define EXEC_PATHS_2_SIZE 1024
#define EXEC_PATHS_3_SIZE 4104 /* EXEC_PATH_RECORD_MAX */
#define EXEC_PATHS_SHIFT 2 /* each map holds a fourth of the one before it */
#define EXEC_PATHS_MIN_ENTRIES 64
#define EXEC_PIN_PATHS "exec_paths_" /* and the map's number */

/* The files (or, for --key invoked, the names) executed last on each CPU, and
 * their path ids: a direct-mapped cache, so an execution of a file seen before
 * costs a few loads, neither a walk nor a hash, and of a name seen before, its
 * hash but no lookup in exec_count, nor a count shared with other CPUs. Where
 * the key is the path alone, its first execution is counted in exec_count, the
 * next ones in its slot until another takes the slot, when they are added to
 * exec_count; a file's slot also gives its path's id where the key holds more
 * (--by), which saves the walk. A file's slot is its name hash's; a name short
 * enough is kept in its slot itself, found by a cheap hash of it and compared
 * whole (no keyed hash to compute), a longer one is found by its path id. */
#define EXEC_SLOTS_COUNT(s) ((s)->by == EXEC_BY_PATH && !(s)->debug)
#define EXEC_SLOTS_USED(s) (EXEC_SLOTS_COUNT(s) || ((s)->key == EXEC_KEY_RESOLVED && ((s)->by & EXEC_BY_PATH) && !(s)->debug))
#define EXEC_FILE_SLOTS_USED(s) (EXEC_SLOTS_USED(s) && (s)->key == EXEC_KEY_RESOLVED) /* files': renames watched */
#define EXEC_FILE_SLOTS 512
#define EXEC_PIN_FILES "exec_files"
/* How many times each CPU began and ended moving a slot's count (of either
 * kind) to exec_count: odd while it moves one. */
#define EXEC_PIN_FLUSHES "exec_slot_flushes"

#define EXEC_SLOT_NAME_WORDS 7 /* of a short name (EXEC_FILE_SHORT_NAME) */

struct exec_file_slot {
	union {
		struct {
			unsigned long long dentry;     /* the file's f_path */
			unsigned long long mnt;
			/* What else tells this file from one that took its dentry's or
			 * mount's memory: its inode, its name's hash and length (the
			 * hash salted with the parent dentry), and where its mount is
			 * mounted. */
			unsigned long long inode;
			unsigned long long name;
			unsigned long long mnt_parent;
			unsigned long long mountpoint;
			unsigned long long epoch;      /* rename_epoch when the path was found */
		};
		/* A short name's bytes, and zeros after its end. */
		unsigned long long name_words[EXEC_SLOT_NAME_WORDS];
	};
	unsigned int flags;            /* enum exec_file_flags */
	unsigned int name_length;      /* of a short name */
	struct exec_path_id path;
	unsigned long long count;      /* executions counted here, not yet in exec_count */
};

/* Where the key holds more than the path (--by), the keys executed last on
 * each CPU (as the file cache, direct-mapped, by a cheap hash of the key): an
 * execution of a key seen before is counted in its slot, neither a lookup in
 * exec_count nor a count the CPUs share; the slot's count goes to exec_count
 * when another key takes the slot. Used at sched_process_exec alone, where
 * nothing else on the CPU runs until the program ends (failed calls count in
 * exec_count). */
#define EXEC_KEY_SLOTS_USED(s) ((s)->by != EXEC_BY_PATH && !(s)->debug)
#define EXEC_KEY_SLOTS 512
#define EXEC_PIN_KEYS "exec_keys"

struct exec_key_slot {
	struct exec_count_key key;
	unsigned long long count;      /* executions counted here, not yet in exec_count */
};

enum exec_file_flags {
	EXEC_FILE_TRUNCATED = 1,       /* its path was cut: each execution counts as truncated */
	EXEC_FILE_LEFT_OUT = 2,        /* --path-prefix leaves it out */
	EXEC_FILE_UNLINKED = 4,        /* its dentry was unhashed (the path ends " (deleted)") */
	EXEC_FILE_SHORT_NAME = 8,      /* a name (--key invoked) kept in name_words */
};

/* --key: which path the key holds. */
enum exec_path_key {
	EXEC_KEY_RESOLVED = 0, /* the file executed, as /proc/PID/exe names it */
	EXEC_KEY_INVOKED = 1,  /* the file name as given to exec */
};

/* --mode: what counts. */
enum exec_mode {
	EXEC_MODE_EXEC = 0,     /* successful executions */
	EXEC_MODE_ATTEMPTS = 1, /* every exec call, with its outcome */
};

/* Changes whenever struct exec_settings or struct exec_count_key does: a
 * pinned counter of another layout is refused, not misread. */
#define EXEC_LAYOUT 7

/* How a counter counts: the options of pyexec run, each under its name there,
 * as the BPF program reads them (its .rodata, set once before load, where a
 * pinned counter's readers find them again). */
struct exec_settings {
	unsigned int layout;            /* EXEC_LAYOUT of the pyexec that loaded it */
	unsigned int key;               /* --key: enum exec_path_key */
	unsigned int mode;              /* --mode: enum exec_mode */
	unsigned int by;                /* --by: enum exec_by, the fields of the key filled in */
	bool debug;                     /* --debug: bpf_printk each key counted */
	struct exec_features allowed;   /* --avoid: the features the program may use where present */
	unsigned long long started_at;  /* wall clock at load, in ns since the epoch */
	unsigned int max_entries;       /* --max-entries: exec_count's capacity, as loaded */
	unsigned int root_reserve;      /* of it, the keys only root's (uid 0) executions may take:
	                                 * no other user can fill the map for root */
	unsigned long long secret[2];   /* the key of struct exec_path_id's hash: from getrandom */
	struct exec_filters filters;    /* last: its prefix's bytes are read only where it is set */
};
