/* The C API that every pyexec BPF program's loader shares, as Python sees it:
 * libbpf's log and version, and the maps of pyexec's programs on this host.
 * cffi reads this file as part of its cdef. Every int-returning function
 * returns 0 or a negative errno. */
#pragma once
#include <stdbool.h>
#include "contract.h"

/* libbpf messages up to this level (0 warn, 1 info, 2 debug) are passed to
 * pyexec_libbpf_log; the rest are not even formatted. */
void pyexec_set_log_level(int level);
const char *pyexec_libbpf_version(void);

/* What the kernel keeps of a program's runs, summed over its attached programs. */
struct pyexec_program_totals {
	unsigned long long run_time_ns;      /* 0 unless kernel.bpf_stats_enabled is 1 */
	unsigned long long run_count;        /* likewise */
	unsigned long long recursion_misses; /* runs it skipped (0 before Linux 5.12, which does not count them) */
};

/* The kernel's id of the map pinned at dir/name; -ENOENT if none is. */
int pyexec_pinned_map_id(const char *dir, const char *name, unsigned int *id);

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
 * objects, from any pyexec process: up to capacity of them. */
int pyexec_list_maps(struct pyexec_map_info *out, unsigned int capacity, unsigned int *found);
const char *pyexec_map_type_name(unsigned int type);
