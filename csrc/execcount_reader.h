/* The exec counter's reader, as its loader fills one in (not seen by cffi). */
#pragma once
#include "execcount_api.h"
#include "program_impl.h"

/* Entries read per syscall: small enough for the buffers to stay in cache
 * between the kernel's copy and ours. */
#define READ_CHUNK 512

struct pyexec_count_reader {
	int count_fd, losses_fd, uid_fd;
	int prog_fds[PYEXEC_MAX_PROGRAMS]; /* the attached programs, for their run time */
	unsigned int prog_count;
	bool owns_fds; /* opened from pins: closed with the reader */
	struct exec_settings settings; /* as the BPF program reads them */
	bool per_key_reads; /* batch lookups unsupported here, or turned off */
	struct exec_count_key chunk_keys[READ_CHUNK];
	unsigned long long chunk_counts[READ_CHUNK];
};
