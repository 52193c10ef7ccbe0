/* The C API of pyexec's extension: a thin layer over libbpf and the
 * execcount skeleton. cffi reads this file as its cdef. Every int-returning
 * function returns 0 or a negative errno. */
#pragma once
#include <stdbool.h>
#include "execcount.h"

struct pyexec_counter;
/* Reads a counter's maps: the loader's (pyexec_counter_reader), or a pinned
 * counter's (pyexec_reader_open_pinned). */
struct pyexec_reader;

/* Opens, configures (settings; the uid_count uids of --uid; exec_count's
 * capacity, 0 for the default) and loads the BPF program; counting starts on attach. */
int pyexec_counter_load(const struct exec_settings *settings, const unsigned int *uids,
			unsigned int max_entries, struct pyexec_counter **out);
int pyexec_counter_attach(struct pyexec_counter *counter);
/* Detaches, unloads and frees; NULL is fine. Pinned objects stay. */
void pyexec_counter_destroy(struct pyexec_counter *counter);
/* The kernel features the loaded program uses (those its settings need). */
void pyexec_counter_features(const struct pyexec_counter *counter, struct exec_features *out);
/* The counter's own reader, freed with it. */
struct pyexec_reader *pyexec_counter_reader(struct pyexec_counter *counter);
/* Pins the maps a reader needs and the attached links under dir (on bpffs):
 * the kernel goes on counting with no process holding them. */
int pyexec_counter_pin(struct pyexec_counter *counter, const char *dir);

/* A reader of the counter pinned under dir; -EPROTO if another layout of
 * pyexec pinned it. Closed with pyexec_reader_close. */
int pyexec_reader_open_pinned(const char *dir, struct pyexec_reader **out);
/* Closes a pinned reader; does nothing to a counter's own. */
void pyexec_reader_close(struct pyexec_reader *reader);
unsigned int pyexec_reader_max_entries(const struct pyexec_reader *reader);
/* The settings as the BPF program reads them. */
void pyexec_reader_settings(const struct pyexec_reader *reader, struct exec_settings *out);
/* The run time and count of the counter's attached programs, summed (both 0
 * unless kernel.bpf_stats_enabled is 1). */
int pyexec_reader_program_stats(const struct pyexec_reader *reader, unsigned long long *run_time_ns,
				unsigned long long *run_count);
/* The kernel's id of the counter's exec_count map: what tells one counter from
 * another, such as the one pinned at a directory now from the one opened there. */
int pyexec_reader_map_id(const struct pyexec_reader *reader, unsigned int *id);
/* The id of the exec_count map pinned under dir; -ENOENT if none is. */
int pyexec_pinned_map_id(const char *dir, unsigned int *id);
/* The uids of --uid, up to capacity of them. */
int pyexec_reader_uids(const struct pyexec_reader *reader, unsigned int *out, unsigned int capacity,
		       unsigned int *found);

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
	unsigned int *mnt_ns;        /* exec_key.mnt_ns */
};

/* Reads the whole of exec_count into out, in as few syscalls as the kernel
 * allows (batches, or key by key where batch operations are missing). */
int pyexec_reader_snapshot(struct pyexec_reader *reader, struct pyexec_snapshot *out);
/* Reads key by key from now on, as on kernels without batch map operations. */
void pyexec_reader_use_per_key_reads(struct pyexec_reader *reader);
/* Sums exec_stats over all CPUs. */
int pyexec_reader_stats(struct pyexec_reader *reader, struct exec_stats *out);

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
