// SPDX-License-Identifier: BSD-2-Clause
/* Reads an exec counter's maps by file descriptor: the loader's own, or those
 * a pyexec start pinned, opened by any later process. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "execcount_reader.h"

_Static_assert(sizeof(struct exec_losses) % sizeof(__u64) == 0, "struct exec_losses is u64 counts alone");

/* Where the skeleton's .rodata holds the settings: they are its only global. */
#define SETTINGS_OFFSET 0

void pyexec_count_reader_settings(const struct pyexec_count_reader *reader, struct exec_settings *out)
{
	*out = reader->settings;
}

void pyexec_count_reader_use_per_key_reads(struct pyexec_count_reader *reader)
{
	reader->per_key_reads = true;
}

int pyexec_count_reader_totals(const struct pyexec_count_reader *reader, struct pyexec_program_totals *out)
{
	return pyexec_program_totals(reader->prog_fds, reader->prog_count, out);
}

int pyexec_count_reader_open_pinned(const char *dir, struct pyexec_count_reader **out)
{
	struct pyexec_count_reader *reader = calloc(1, sizeof(*reader));
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int settings_fd = -1, err;

	if (!reader)
		return -ENOMEM;
	reader->count_fd = reader->losses_fd = reader->uid_fd = -1;
	reader->owns_fds = true;
	err = pyexec_open_pin(dir, EXEC_PIN_COUNT, &reader->count_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_LOSSES, &reader->losses_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_UIDS, &reader->uid_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_SETTINGS, &settings_fd);
	if (!err)
		err = pyexec_read_pinned_rodata(settings_fd, SETTINGS_OFFSET, &reader->settings,
						sizeof(reader->settings));
	if (!err)
		err = bpf_map_get_info_by_fd(reader->count_fd, &info, &info_len);
	/* Another layout: pinned by another version of pyexec, which this one would misread. */
	if (!err && (reader->settings.layout != EXEC_LAYOUT || info.key_size != sizeof(struct exec_count_key) ||
		     info.max_entries != reader->settings.max_entries))
		err = -EPROTO;
	/* An older pyexec's pins (its maps had other names) are another layout too. */
	if (err == -ENOENT && reader->count_fd >= 0)
		err = -EPROTO;
	if (settings_fd >= 0)
		close(settings_fd);
	if (!err)
		err = pyexec_open_pinned_programs(dir, reader->prog_fds, PYEXEC_MAX_PROGRAMS, &reader->prog_count);
	if (err) {
		pyexec_count_reader_close(reader);
		return err;
	}
	*out = reader;
	return 0;
}

void pyexec_count_reader_close(struct pyexec_count_reader *reader)
{
	if (!reader || !reader->owns_fds)
		return;
	int fds[] = {reader->count_fd, reader->losses_fd, reader->uid_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (unsigned int i = 0; i < reader->prog_count; i++)
		close(reader->prog_fds[i]);
	free(reader);
}

void pyexec_count_reader_memory(const struct pyexec_count_reader *reader, unsigned long long out[3])
{
	out[0] = pyexec_map_memlock(reader->count_fd);
	out[1] = pyexec_map_memlock(reader->losses_fd);
	out[2] = pyexec_map_memlock(reader->uid_fd);
}

int pyexec_count_reader_map_id(const struct pyexec_count_reader *reader, unsigned int *id)
{
	return pyexec_map_id(reader->count_fd, id);
}

int pyexec_count_reader_uids(const struct pyexec_count_reader *reader, unsigned int *out,
			     unsigned int capacity, unsigned int *found)
{
	return pyexec_read_uids(reader->uid_fd, out, capacity, found);
}

/* Where a read of exec_count has got to. */
struct map_cursor {
	bool started, finished;
	unsigned long long token;         /* batch reads: the bucket the kernel resumes at */
	struct exec_count_key last_key;   /* per-key reads: the key to go on from */
};

static int read_chunk_per_key(int fd, struct map_cursor *cursor, struct exec_count_key *keys,
			      unsigned long long *counts, unsigned int room, unsigned int *got)
{
	unsigned int n = 0;
	int err;

	while (n < room) {
		err = bpf_map_get_next_key(fd, cursor->started ? &cursor->last_key : NULL, &keys[n]);
		if (err == -ENOENT) {
			cursor->finished = true;
			break;
		}
		if (err)
			return err;
		cursor->started = true;
		cursor->last_key = keys[n];
		err = bpf_map_lookup_elem(fd, &keys[n], &counts[n]);
		if (err == -ENOENT) /* deleted meanwhile: keys[n] is reused */
			continue;
		if (err)
			return err;
		n++;
	}
	*got = n;
	return 0;
}

static bool batch_unsupported(int err)
{
	return err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUP || err == -EXEC_ENOTSUPP;
}

/* Reads up to room entries into the reader's chunk buffers. */
static int read_chunk(struct pyexec_count_reader *reader, struct map_cursor *cursor,
		      unsigned int room, unsigned int *got)
{
	int fd = reader->count_fd;
	int err;

	if (reader->per_key_reads)
		return read_chunk_per_key(fd, cursor, reader->chunk_keys, reader->chunk_counts,
					  room, got);
	*got = room;
	err = bpf_map_lookup_batch(fd, cursor->started ? &cursor->token : NULL, &cursor->token,
				   reader->chunk_keys, reader->chunk_counts, got, NULL);
	if (err && !cursor->started && batch_unsupported(err)) {
		reader->per_key_reads = true; /* remembered: no batch ops on this kernel */
		return read_chunk(reader, cursor, room, got);
	}
	cursor->started = true;
	if (err == -ENOENT) { /* the last batch: the whole map is read */
		cursor->finished = true;
		return 0;
	}
	return err;
}

/* Appends a chunk to the columns, each path followed by a NUL. */
static void append_chunk(struct pyexec_count_columns *out, const struct exec_count_key *keys,
			 const unsigned long long *counts, unsigned int n)
{
	char *end = out->paths + out->paths_size;

	for (unsigned int i = 0; i < n; i++) {
		size_t len = strnlen(keys[i].path, sizeof(keys[i].path));

		memcpy(end, keys[i].path, len);
		end[len] = '\0';
		end += len + 1;
	}
	memcpy(out->counts + out->found, counts, n * sizeof(*counts));
	for (unsigned int c = 0; c < out->column_count; c++) {
		const struct pyexec_column *column = &out->columns[c];
		char *to = (char *)column->out + (size_t)out->found * column->size;

		for (unsigned int i = 0; i < n; i++, to += column->size)
			memcpy(to, (const char *)&keys[i] + column->offset, column->size);
	}
	out->found += n;
	out->paths_size = end - out->paths;
}

int pyexec_count_reader_read(struct pyexec_count_reader *reader, struct pyexec_count_columns *out)
{
	struct map_cursor cursor = {0};
	unsigned int room, got;
	int err;

	for (unsigned int c = 0; c < out->column_count; c++)
		if (out->columns[c].offset + out->columns[c].size > sizeof(struct exec_count_key))
			return -EINVAL;
	out->found = 0;
	out->paths_size = 0;
	while (!cursor.finished && out->found < out->capacity) {
		room = out->capacity - out->found;
		if (room > READ_CHUNK)
			room = READ_CHUNK;
		err = read_chunk(reader, &cursor, room, &got);
		if (err)
			return err;
		append_chunk(out, reader->chunk_keys, reader->chunk_counts, got);
	}
	return 0;
}

int pyexec_count_reader_losses(struct pyexec_count_reader *reader, struct exec_losses *out)
{
	int cpus = libbpf_num_possible_cpus();
	struct exec_losses *per_cpu;
	struct pyexec_program_totals totals;
	unsigned int zero = 0;
	int err, cpu;

	if (cpus < 0)
		return cpus;
	per_cpu = calloc(cpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	err = bpf_map_lookup_elem(reader->losses_fd, &zero, per_cpu);
	if (err)
		goto out;
	memset(out, 0, sizeof(*out));
	/* Field by field, whichever fields struct exec_losses has: each is a u64 count. */
	for (cpu = 0; cpu < cpus; cpu++)
		for (size_t i = 0; i < sizeof(*out) / sizeof(__u64); i++)
			((__u64 *)out)[i] += ((const __u64 *)&per_cpu[cpu])[i];
	err = pyexec_program_totals(reader->prog_fds, reader->prog_count, &totals);
	out->missed = totals.recursion_misses;
out:
	free(per_cpu);
	return err;
}
