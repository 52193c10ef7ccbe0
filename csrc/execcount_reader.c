// SPDX-License-Identifier: BSD-2-Clause
/* Reads an exec counter's maps by file descriptor: the loader's own, or those
 * a pyexec start pinned, opened by any later process. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "execcount_reader.h"

_Static_assert(sizeof(struct exec_losses) % sizeof(__u64) == 0, "struct exec_losses is u64 counts alone");
_Static_assert(PYEXEC_COUNTER_MAPS == EXEC_PATH_CLASSES + 6, "the memory of each map");
_Static_assert(EXEC_PATH_RECORD_MAX == sizeof(struct exec_path_header) + EXEC_PATH_SIZE &&
		       EXEC_PATHS_3_SIZE == EXEC_PATH_RECORD_MAX, "the last exec_paths map holds the longest record");

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
	reader->count_fd = reader->losses_fd = reader->uid_fd = reader->files_fd = reader->keys_fd =
		reader->flushes_fd = -1;
	for (int n = 0; n < EXEC_PATH_CLASSES; n++)
		reader->paths_fds[n] = -1;
	reader->owns_fds = true;
	err = pyexec_open_pin(dir, EXEC_PIN_COUNT, &reader->count_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_FILES, &reader->files_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_KEYS, &reader->keys_fd);
	if (!err)
		err = pyexec_open_pin(dir, EXEC_PIN_FLUSHES, &reader->flushes_fd);
	for (int n = 0; n < EXEC_PATH_CLASSES && !err; n++) {
		char name[sizeof(EXEC_PIN_PATHS) + 8];

		snprintf(name, sizeof(name), EXEC_PIN_PATHS "%d", n);
		err = pyexec_open_pin(dir, name, &reader->paths_fds[n]);
	}
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

void pyexec_count_reader_free_buffers(struct pyexec_count_reader *reader)
{
	struct growing *buffers[] = {&reader->ids, &reader->path_bytes, &reader->path_truncated,
				     &reader->path_mnt_ns, &reader->slots, &reader->counted};

	for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++) {
		free(buffers[i]->items);
		*buffers[i] = (struct growing){0};
	}
	free(reader->record_chunk);
	free(reader->files);
	free(reader->keys);
	free(reader->flushes);
	reader->record_chunk = NULL;
	reader->files = NULL;
	reader->keys = NULL;
	reader->flushes = NULL;
}

void pyexec_count_reader_close(struct pyexec_count_reader *reader)
{
	if (!reader || !reader->owns_fds)
		return;
	int fds[] = {reader->count_fd, reader->losses_fd, reader->uid_fd, reader->files_fd, reader->keys_fd,
		     reader->flushes_fd,
		     reader->paths_fds[0], reader->paths_fds[1], reader->paths_fds[2], reader->paths_fds[3]};

	_Static_assert(EXEC_PATH_CLASSES == 4, "each exec_paths map is closed");
	pyexec_count_reader_free_buffers(reader);
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (unsigned int i = 0; i < reader->prog_count; i++)
		close(reader->prog_fds[i]);
	free(reader);
}

void pyexec_count_reader_memory(const struct pyexec_count_reader *reader, unsigned long long out[PYEXEC_COUNTER_MAPS])
{
	out[0] = pyexec_map_memlock(reader->count_fd);
	for (int n = 0; n < EXEC_PATH_CLASSES; n++)
		out[1 + n] = pyexec_map_memlock(reader->paths_fds[n]);
	out[EXEC_PATH_CLASSES + 1] = pyexec_map_memlock(reader->files_fd);
	out[EXEC_PATH_CLASSES + 2] = pyexec_map_memlock(reader->keys_fd);
	out[EXEC_PATH_CLASSES + 3] = pyexec_map_memlock(reader->flushes_fd);
	out[EXEC_PATH_CLASSES + 4] = pyexec_map_memlock(reader->losses_fd);
	out[EXEC_PATH_CLASSES + 5] = pyexec_map_memlock(reader->uid_fd);
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

/* Where a read of a map has got to. */
struct map_cursor {
	bool started, finished;
	unsigned long long token;   /* batch reads: the bucket the kernel resumes at */
	struct exec_count_key last_key; /* per-key reads: the key to go on from (the largest key) */
};

static int read_chunk_per_key(int fd, struct map_cursor *cursor, size_t key_size, size_t value_size,
			      char *keys, char *values, unsigned int room, unsigned int *got)
{
	unsigned int n = 0;
	int err;

	while (n < room) {
		char *key = keys + n * key_size;

		err = bpf_map_get_next_key(fd, cursor->started ? &cursor->last_key : NULL, key);
		if (err == -ENOENT) {
			cursor->finished = true;
			break;
		}
		if (err)
			return err;
		cursor->started = true;
		memcpy(&cursor->last_key, key, key_size);
		err = bpf_map_lookup_elem(fd, key, values + n * value_size);
		if (err == -ENOENT) /* deleted meanwhile: its room is reused */
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

/* Reads up to room entries of the map fd into keys and values. */
static int read_chunk(struct pyexec_count_reader *reader, int fd, struct map_cursor *cursor, size_t key_size,
		      size_t value_size, void *keys, void *values, unsigned int room, unsigned int *got)
{
	int err;

	if (key_size > sizeof(cursor->last_key))
		return -EINVAL;
	if (reader->per_key_reads)
		return read_chunk_per_key(fd, cursor, key_size, value_size, keys, values, room, got);
	*got = room;
	err = bpf_map_lookup_batch(fd, cursor->started ? &cursor->token : NULL, &cursor->token, keys, values,
				   got, NULL);
	if (err && !cursor->started && batch_unsupported(err)) {
		reader->per_key_reads = true; /* remembered: no batch ops on this kernel */
		return read_chunk(reader, fd, cursor, key_size, value_size, keys, values, room, got);
	}
	cursor->started = true;
	if (err == -ENOENT) { /* the last batch: the whole map is read */
		cursor->finished = true;
		return 0;
	}
	return err;
}

/* Room in g for count more items of size bytes. */
static int grow(struct growing *g, size_t size, size_t count)
{
	size_t room = g->room ? g->room : 1024;
	void *items;

	if (g->count + count <= g->room)
		return 0;
	while (room < g->count + count)
		room *= 2;
	items = realloc(g->items, room * size);
	if (!items)
		return -ENOMEM;
	g->items = items;
	g->room = room;
	return 0;
}

/* What the slots counted, by key, summed over the CPUs: open addressing, a
 * power of two of entries, at least twice as many as the slots that count. */
struct slot_count {
	struct exec_count_key key;
	unsigned long long count; /* 0: a free entry */
};

static struct slot_count *slot_count_of(struct growing *table, const struct exec_count_key *key)
{
	const unsigned long long *words = (const unsigned long long *)key;
	struct slot_count *entries = table->items;
	size_t mask = table->room - 1, at = 0;

	for (size_t i = 0; i < sizeof(*key) / sizeof(*words); i++)
		at = (at ^ words[i]) * 0x9E3779B97F4A7C15ULL;
	for (at >>= 32;; at++)
		if (!entries[at & mask].count || !memcmp(&entries[at & mask].key, key, sizeof(*key)))
			return &entries[at & mask];
}

static void add_slot_count(struct growing *table, const struct exec_count_key *key, unsigned long long count)
{
	struct slot_count *entry;

	if (!count)
		return;
	entry = slot_count_of(table, key);
	if (!entry->count) {
		entry->key = *key;
		table->count++;
	}
	entry->count += count;
}

/* Appends a chunk to the columns, and its keys' path ids to the reader's. */
static int append_chunk(struct pyexec_count_reader *reader, struct pyexec_count_columns *out, unsigned int n)
{
	const struct exec_count_key *keys = reader->chunk_keys;
	struct exec_path_id *ids;
	int err = grow(&reader->ids, sizeof(*ids), n);

	if (err)
		return err;
	ids = (struct exec_path_id *)reader->ids.items + reader->ids.count;
	for (unsigned int i = 0; i < n; i++)
		ids[i] = keys[i].path;
	reader->ids.count += n;
	memcpy(out->counts + out->found, reader->chunk_counts, n * sizeof(*out->counts));
	/* Each key is in exec_count once: a slot's count goes to its one row. */
	for (unsigned int i = 0; i < n && reader->counted.count; i++)
		out->counts[out->found + i] += slot_count_of(&reader->counted, &keys[i])->count;
	for (unsigned int c = 0; c < out->column_count; c++) {
		const struct pyexec_column *column = &out->columns[c];
		char *to = (char *)column->out + (size_t)out->found * column->size;

		for (unsigned int i = 0; i < n; i++, to += column->size)
			memcpy(to, (const char *)&keys[i] + column->offset, column->size);
	}
	out->found += n;
	return 0;
}

/* The join of path ids to paths: open addressing, a power of two of slots. */
struct path_slot {
	struct exec_path_id id;
	unsigned int index; /* in the path table, plus one: 0 is a free slot */
};

static struct path_slot *slot_of(struct growing *slots, const struct exec_path_id *id)
{
	struct path_slot *table = slots->items;
	size_t mask = slots->room - 1;

	for (size_t at = id->hash[0] & mask;; at = (at + 1) & mask)
		if (!table[at].index || !memcmp(&table[at].id, id, sizeof(*id)))
			return &table[at];
}

/* Makes the join's table twice as large (or its first), with what it holds. */
static int grow_slots(struct growing *slots)
{
	struct growing bigger = {.room = slots->room ? slots->room * 2 : 4096};
	struct path_slot *old = slots->items;

	bigger.items = calloc(bigger.room, sizeof(struct path_slot));
	if (!bigger.items)
		return -ENOMEM;
	for (size_t i = 0; i < slots->room; i++)
		if (old[i].index)
			*slot_of(&bigger, &old[i].id) = old[i];
	bigger.count = slots->count;
	free(old);
	*slots = bigger;
	return 0;
}

/* Adds a record read from a map of value_size bytes to the path table. */
static int add_record(struct pyexec_count_reader *reader, const struct exec_path_id *id, const unsigned char *value,
		      size_t value_size)
{
	struct exec_path_header header;
	struct path_slot *slot;
	unsigned int index = reader->path_truncated.count;
	int err;

	memcpy(&header, value, sizeof(header));
	if (sizeof(header) + header.length > value_size)
		return -EPROTO;
	if ((reader->slots.count + 1) * 2 > reader->slots.room && (err = grow_slots(&reader->slots)))
		return err;
	slot = slot_of(&reader->slots, id);
	if (slot->index)
		return 0; /* in two maps: a map the kernel found full, then another (not by this pyexec) */
	if ((err = grow(&reader->path_bytes, 1, header.length + 1)) || (err = grow(&reader->path_truncated, 1, 1)) ||
	    (err = grow(&reader->path_mnt_ns, sizeof(unsigned int), 1)))
		return err;
	memcpy((char *)reader->path_bytes.items + reader->path_bytes.count, value + sizeof(header), header.length);
	reader->path_bytes.count += header.length;
	((char *)reader->path_bytes.items)[reader->path_bytes.count++] = '\0';
	((unsigned char *)reader->path_truncated.items)[reader->path_truncated.count++] = header.truncated;
	((unsigned int *)reader->path_mnt_ns.items)[reader->path_mnt_ns.count++] = header.mnt_ns;
	slot->id = *id;
	slot->index = index + 1;
	reader->slots.count++;
	return 0;
}

static const size_t record_sizes[EXEC_PATH_CLASSES] = {EXEC_PATHS_0_SIZE, EXEC_PATHS_1_SIZE, EXEC_PATHS_2_SIZE,
						       EXEC_PATHS_3_SIZE};

/* Reads every exec_paths map into the path table. */
static int read_paths(struct pyexec_count_reader *reader)
{
	unsigned int room, got;
	int err;

	reader->path_bytes.count = reader->path_truncated.count = reader->path_mnt_ns.count = 0;
	reader->slots.count = 0;
	if (reader->slots.items)
		memset(reader->slots.items, 0, reader->slots.room * sizeof(struct path_slot));
	if (!reader->record_chunk && !(reader->record_chunk = malloc(RECORD_CHUNK_BYTES)))
		return -ENOMEM;
	for (int n = 0; n < EXEC_PATH_CLASSES; n++) {
		size_t value_size = record_sizes[n];
		struct map_cursor cursor = {0};
		struct exec_path_id *ids = (struct exec_path_id *)reader->record_chunk;
		unsigned char *values;

		room = RECORD_CHUNK_BYTES / (sizeof(*ids) + value_size);
		values = reader->record_chunk + room * sizeof(*ids);
		while (!cursor.finished) {
			err = read_chunk(reader, reader->paths_fds[n], &cursor, sizeof(*ids), value_size, ids, values,
					 room, &got);
			for (unsigned int i = 0; !err && i < got; i++)
				err = add_record(reader, &ids[i], values + i * value_size, value_size);
			if (err)
				return err;
		}
	}
	return 0;
}

/* Reads exec_count into out, and each entry's path id into the reader's ids. */
static int read_counts(struct pyexec_count_reader *reader, struct pyexec_count_columns *out)
{
	struct map_cursor cursor = {0};
	unsigned int room, got;
	int err;

	out->found = 0;
	reader->ids.count = 0;
	while (!cursor.finished && out->found < out->capacity) {
		room = out->capacity - out->found;
		if (room > READ_CHUNK)
			room = READ_CHUNK;
		err = read_chunk(reader, reader->count_fd, &cursor, sizeof(struct exec_count_key),
				 sizeof(unsigned long long), reader->chunk_keys, reader->chunk_counts, room, &got);
		if (!err)
			err = append_chunk(reader, out, got);
		if (err)
			return err;
	}
	return 0;
}

/* Reads each CPU's count of the moves of a slot's count to exec_count. */
static int read_flushes(struct pyexec_count_reader *reader, unsigned long long *out)
{
	unsigned int zero = 0;

	return bpf_map_lookup_elem(reader->flushes_fd, &zero, out);
}

/* Reads every CPU's slots of a cache: count slots of size bytes each. */
static int read_slots(int fd, unsigned int count, size_t size, void *out, int cpus)
{
	for (unsigned int i = 0; i < count; i++) {
		int err = bpf_map_lookup_elem(fd, &i, (char *)out + (size_t)i * cpus * size);

		if (err)
			return err;
	}
	return 0;
}

/* Reads the slots of the caches that count (the file cache where the key is
 * the path alone, the key cache where it holds more) into reader->counted. */
static int read_slot_counts(struct pyexec_count_reader *reader, int cpus)
{
	struct growing *table = &reader->counted;
	bool files = EXEC_SLOTS_COUNT(&reader->settings), keys = EXEC_KEY_SLOTS_USED(&reader->settings);
	size_t slots = ((files ? EXEC_FILE_SLOTS : 0) + (keys ? EXEC_KEY_SLOTS : 0)) * (size_t)cpus;
	int err = 0;

	table->count = 0;
	if (!slots) /* --debug: no slot counts */
		return 0;
	if (!table->items) {
		for (table->room = 1; table->room < 2 * slots; table->room *= 2)
			;
		if (!(table->items = calloc(table->room, sizeof(struct slot_count))))
			return -ENOMEM;
	} else {
		memset(table->items, 0, table->room * sizeof(struct slot_count));
	}
	if (files) {
		err = read_slots(reader->files_fd, EXEC_FILE_SLOTS, sizeof(*reader->files), reader->files, cpus);
		for (size_t i = 0; !err && i < (size_t)EXEC_FILE_SLOTS * cpus; i++) {
			struct exec_count_key key = {.path = reader->files[i].path};

			add_slot_count(table, &key, reader->files[i].count);
		}
	}
	if (!err && keys) {
		err = read_slots(reader->keys_fd, EXEC_KEY_SLOTS, sizeof(*reader->keys), reader->keys, cpus);
		for (size_t i = 0; !err && i < (size_t)EXEC_KEY_SLOTS * cpus; i++)
			add_slot_count(table, &reader->keys[i].key, reader->keys[i].count);
	}
	return err;
}

/* How many times a read is tried again when a slot's count moved meanwhile. */
#define READ_TRIES 8

int pyexec_count_reader_read(struct pyexec_count_reader *reader, struct pyexec_count_columns *out)
{
	static const struct exec_path_id no_path;
	int cpus = libbpf_num_possible_cpus(), err;
	const struct exec_path_id *ids;
	bool steady = false;

	for (unsigned int c = 0; c < out->column_count; c++)
		if (out->columns[c].offset + out->columns[c].size > sizeof(struct exec_count_key))
			return -EINVAL;
	if (cpus < 0)
		return cpus;
	if (!reader->files && !(reader->files = calloc((size_t)EXEC_FILE_SLOTS * cpus, sizeof(*reader->files))))
		return -ENOMEM;
	if (!reader->keys && !(reader->keys = calloc((size_t)EXEC_KEY_SLOTS * cpus, sizeof(*reader->keys))))
		return -ENOMEM;
	if (!reader->flushes && !(reader->flushes = calloc(2 * (size_t)cpus, sizeof(*reader->flushes))))
		return -ENOMEM;
	/* exec_count and the slots, between two reads of the moves from one to the
	 * other that agree and are even on every CPU: none was under way, or done,
	 * in between, so no count was read twice or missed. */
	for (int try = 0; try < READ_TRIES && !steady; try++) {
		steady = true;
		err = read_flushes(reader, reader->flushes);
		/* The slots first: the key a slot counts is in exec_count from the moment it took the slot. */
		if (!err)
			err = read_slot_counts(reader, cpus);
		if (!err)
			err = read_counts(reader, out);
		if (!err)
			err = read_flushes(reader, reader->flushes + cpus);
		if (err)
			return err;
		for (int cpu = 0; cpu < cpus; cpu++)
			steady = steady && reader->flushes[cpu] == reader->flushes[cpus + cpu] && !(reader->flushes[cpu] & 1);
	}
	/* The kernel keeps a path before it counts its first key: read after the counts. */
	err = read_paths(reader);
	if (err)
		return err;
	ids = reader->ids.items;
	for (unsigned int i = 0; i < out->found; i++) {
		const struct path_slot *slot;

		if (!memcmp(&ids[i], &no_path, sizeof(no_path)) || !reader->slots.room) {
			out->paths[i] = PYEXEC_NO_PATH;
			continue;
		}
		slot = slot_of(&reader->slots, &ids[i]);
		out->paths[i] = slot->index ? slot->index - 1 : PYEXEC_NO_PATH;
	}
	return 0;
}

void pyexec_count_reader_paths(const struct pyexec_count_reader *reader, struct pyexec_path_table *out)
{
	out->count = reader->path_truncated.count;
	out->bytes = reader->path_bytes.items;
	out->size = reader->path_bytes.count;
	out->truncated = reader->path_truncated.items;
	out->mnt_ns = reader->path_mnt_ns.items;
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
