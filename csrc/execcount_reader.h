/* The exec counter's reader, as its loader fills one in (not seen by cffi). */
#pragma once
#include "execcount_api.h"
#include "program_impl.h"

/* Entries read per syscall: small enough for the buffers to stay in cache
 * between the kernel's copy and ours. */
#define READ_CHUNK 512
/* The bytes of path records read per syscall. */
#define RECORD_CHUNK_BYTES (256 * 1024)

/* The capacity of exec_paths_N for a counter of max_entries. */
static inline unsigned int pyexec_paths_entries(unsigned int max_entries, int n)
{
	unsigned int entries = max_entries >> (n * EXEC_PATHS_SHIFT);

	return entries < EXEC_PATHS_MIN_ENTRIES ? EXEC_PATHS_MIN_ENTRIES : entries;
}

/* A growing array of size-byte items, its memory the reader's. */
struct growing {
	void *items;
	size_t count, room;
};

struct pyexec_count_reader {
	int count_fd, losses_fd, uid_fd;
	int paths_fds[EXEC_PATH_CLASSES];
	int files_fd, keys_fd;          /* the file and key caches' slots */
	int flushes_fd;                 /* how often each CPU moved a slot's count */
	int prog_fds[PYEXEC_MAX_PROGRAMS]; /* the attached programs, for their run time */
	unsigned int prog_count;
	bool owns_fds; /* opened from pins: closed with the reader */
	struct exec_settings settings; /* as the BPF program reads them */
	bool per_key_reads; /* batch lookups unsupported here, or turned off */
	struct exec_count_key chunk_keys[READ_CHUNK];
	unsigned long long chunk_counts[READ_CHUNK];
	/* The last read: each entry's path id, and the table of their paths. */
	struct growing ids;             /* struct exec_path_id */
	struct growing path_bytes;      /* char */
	struct growing path_truncated;  /* unsigned char */
	struct growing path_mnt_ns;     /* unsigned int */
	struct growing slots;           /* struct path_slot: path ids to their index, open addressing */
	struct growing counted;         /* struct slot_count: what the caches' slots counted, by key */
	struct exec_file_slot *files;   /* a read of exec_files: EXEC_FILE_SLOTS for each CPU */
	struct exec_key_slot *keys;     /* a read of exec_keys: EXEC_KEY_SLOTS for each CPU */
	unsigned long long *flushes;    /* a read of exec_slot_flushes, one for each CPU */
	unsigned char *record_chunk;    /* RECORD_CHUNK_BYTES of records and their keys */
};

/* Frees what a reader allocated as it read. */
void pyexec_count_reader_free_buffers(struct pyexec_count_reader *reader);
