/* The exec counter's C API, as Python sees it: its loader (execcount.c, over
 * the execcount skeleton) and its reader (execcount_reader.c, over the maps' file
 * descriptors). cffi reads this file as part of its cdef. Every int-returning
 * function returns 0 or a negative errno. */
#pragma once
#include <stdbool.h>
#include "execcount.h"
#include "program.h"

struct pyexec_counter;
/* Reads a counter's maps: the loader's (pyexec_counter_reader), or a pinned
 * counter's (pyexec_count_reader_open_pinned). */
struct pyexec_count_reader;

/* Opens, configures (the settings; the filters.uid_count uids of --uid) and
 * loads the BPF program; counting starts on attach. */
int pyexec_counter_load(const struct exec_settings *settings, const unsigned int *uids,
			struct pyexec_counter **out);
int pyexec_counter_attach(struct pyexec_counter *counter);
/* Detaches, unloads and frees; NULL is fine. Pinned objects stay. */
void pyexec_counter_destroy(struct pyexec_counter *counter);
/* The kernel features the loaded program uses (those its settings need). */
void pyexec_counter_features_used(const struct pyexec_counter *counter, struct exec_features *out);
/* The counter's own reader, freed with it. */
struct pyexec_count_reader *pyexec_counter_reader(struct pyexec_counter *counter);
/* Pins the maps a reader needs and the attached links under dir (on bpffs):
 * the kernel goes on counting with no process holding them. */
int pyexec_counter_pin(struct pyexec_counter *counter, const char *dir);

/* A reader of the counter pinned under dir; -EPROTO if another layout of
 * pyexec pinned it. Closed with pyexec_count_reader_close. */
int pyexec_count_reader_open_pinned(const char *dir, struct pyexec_count_reader **out);
/* Closes a pinned reader; does nothing to a counter's own. */
void pyexec_count_reader_close(struct pyexec_count_reader *reader);
/* The settings as the BPF program reads them. */
void pyexec_count_reader_settings(const struct pyexec_count_reader *reader, struct exec_settings *out);
/* The uids of --uid, up to capacity of them. */
int pyexec_count_reader_uids(const struct pyexec_count_reader *reader, unsigned int *out,
			     unsigned int capacity, unsigned int *found);
/* What the kernel keeps of the counter's attached programs' runs, summed. */
int pyexec_count_reader_totals(const struct pyexec_count_reader *reader, struct pyexec_program_totals *out);
/* The kernel memory of the counter's maps, in bytes, from their fdinfo: exec_count,
 * exec_paths_0 to _3, exec_files, exec_keys, exec_slot_flushes, exec_losses and
 * uid_filter, in that order. */
#define PYEXEC_COUNTER_MAPS 10 /* EXEC_PATH_CLASSES + 6 */
void pyexec_count_reader_memory(const struct pyexec_count_reader *reader, unsigned long long out[PYEXEC_COUNTER_MAPS]);
/* The kernel's id of the counter's exec_count map: what tells one counter from
 * another, such as the one pinned at a directory now from the one opened there. */
int pyexec_count_reader_map_id(const struct pyexec_count_reader *reader, unsigned int *id);

/* One member of exec_count_key, copied from each key read: size bytes from
 * offset, into out (capacity * size bytes). */
struct pyexec_column {
	unsigned int offset;
	unsigned int size;
	void *out;
};

#define PYEXEC_NO_PATH 4294967295U /* the path index of a key counted without one */

/* exec_count as columns, in buffers the caller allocated with room for
 * capacity entries. */
struct pyexec_count_columns {
	unsigned int capacity;
	unsigned int found;        /* entries written */
	unsigned long long *counts;
	unsigned int *paths;       /* each entry's path: its index in the path table, or PYEXEC_NO_PATH */
	struct pyexec_column *columns; /* the other members wanted */
	unsigned int column_count;
};

/* The paths of the entries a read found, each once: in the reader's own
 * buffers, good until its next read. */
struct pyexec_path_table {
	unsigned int count;
	const char *bytes;         /* the paths, each followed by a NUL */
	unsigned long size;        /* of bytes */
	const unsigned char *truncated; /* count flags: the path was cut (its start, if resolved) */
	const unsigned int *mnt_ns;     /* count namespaces: 0, or the mount namespace it is seen from */
};

/* Reads the whole of exec_count into out, with what the file cache counted not
 * yet in it, and the paths of its keys, in as few syscalls as the kernel allows
 * (batches, or key by key where batch operations are missing). */
int pyexec_count_reader_read(struct pyexec_count_reader *reader, struct pyexec_count_columns *out);
/* The paths of the last read's entries. */
void pyexec_count_reader_paths(const struct pyexec_count_reader *reader, struct pyexec_path_table *out);
/* Reads key by key from now on, as on kernels without batch map operations. */
void pyexec_count_reader_use_per_key_reads(struct pyexec_count_reader *reader);
/* Sums exec_losses over all CPUs, and the times the kernel skipped the programs. */
int pyexec_count_reader_losses(struct pyexec_count_reader *reader, struct exec_losses *out);
