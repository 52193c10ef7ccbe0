// SPDX-License-Identifier: BSD-2-Clause
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "shim.h" /* before the skeleton, whose .rodata holds struct exec_features */
#include "execcount.skel.h"

/* Defined by the cffi module (extern "Python+C"): hands a line to Python. */
void pyexec_libbpf_log(int level, const char *message);

/* Entries read per syscall: small enough for the buffers to stay in cache
 * between the kernel's copy and ours. */
#define READ_CHUNK 512

/* Reads a counter's maps by file descriptor: the loader's own, or those a
 * pyexec start pinned, opened by any later process. */
#define MAX_PROGRAMS 8

struct pyexec_reader {
	int count_fd, stats_fd, uid_fd;
	int prog_fds[MAX_PROGRAMS]; /* the attached programs, for their run time and count */
	unsigned int prog_count;
	bool owns_fds; /* opened from pins: closed with the reader */
	unsigned int max_entries;
	struct exec_settings settings; /* as the BPF program reads them */
	bool per_key_reads; /* batch lookups unsupported here, or turned off */
	struct exec_key chunk_keys[READ_CHUNK];
	unsigned long long chunk_counts[READ_CHUNK];
};

struct pyexec_counter {
	struct execcount_bpf *skel;
	struct exec_features features; /* those the loaded program uses */
	struct pyexec_reader reader;
};

static int log_level = LIBBPF_WARN;
static bool log_quiet; /* while a load tries a feature the kernel may lack (unless verbose) */

static int forward_libbpf_log(enum libbpf_print_level level, const char *format, va_list args)
{
	char *message;
	size_t len;

	if ((int)level > log_level || log_quiet)
		return 0;
	if (vasprintf(&message, format, args) < 0)
		return 0;
	len = strlen(message);
	while (len && message[len - 1] == '\n')
		message[--len] = '\0';
	pyexec_libbpf_log(level, message);
	free(message);
	return 0;
}

void pyexec_set_log_level(int level)
{
	log_level = level;
	libbpf_set_print(forward_libbpf_log);
}

const char *pyexec_libbpf_version(void)
{
	return libbpf_version_string();
}

/* The features of wanted that the running kernel can have, as far as can be
 * told before load: helpers are probed here; the iterator kfuncs are looked
 * up by libbpf at load (bpf_ksym_exists), and name loads tried by loading. */
static struct exec_features probe_features(struct exec_features wanted)
{
	/* Tracepoint and tp_btf programs are offered the same tracing helpers. */
	wanted.task_btf = wanted.task_btf &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_task_btf, NULL) == 1;
	wanted.ancestor_cgroup = wanted.ancestor_cgroup &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_ancestor_cgroup_id, NULL) == 1;
	return wanted;
}

/* Whether prog calls a kfunc: libbpf resolved bpf_ksym_exists(bpf_iter_num_new)
 * to true, so the iterator walk is the one loaded. */
static bool calls_kfuncs(const struct bpf_program *prog)
{
	const struct bpf_insn *insns = bpf_program__insns(prog);

	for (size_t i = 0; i < bpf_program__insn_cnt(prog); i++)
		if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == BPF_PSEUDO_KFUNC_CALL)
			return true;
	return false;
}

/* The .rodata settings, set between open and load. */
static int configure(struct execcount_bpf *skel, const struct exec_settings *settings,
		     struct exec_features features)
{
	struct exec_settings *rodata = (struct exec_settings *)&skel->rodata->settings;
	bool attempts = settings->mode == EXEC_MODE_ATTEMPTS;

	if (settings->uid_count > EXEC_UID_FILTER_SIZE || settings->path_prefix_len >= EXEC_PATH_SIZE)
		return -E2BIG;
	*rodata = *settings;
	rodata->layout = EXEC_LAYOUT;
	rodata->max_entries = bpf_map__max_entries(skel->maps.exec_count);
	rodata->features = features;
	/* The syscall tracepoints are loaded, and tracefs needed, only for attempts. */
	bpf_program__set_autoload(skel->progs.enter_execve, attempts);
	bpf_program__set_autoload(skel->progs.enter_execveat, attempts);
	bpf_program__set_autoload(skel->progs.exit_execve, attempts);
	bpf_program__set_autoload(skel->progs.exit_execveat, attempts);
	if (!attempts)
		bpf_map__set_max_entries(skel->maps.exec_calls, 1);
	return 0;
}

static int fill_uid_filter(struct execcount_bpf *skel, const unsigned int *uids, unsigned int count)
{
	int fd = bpf_map__fd(skel->maps.uid_filter);
	unsigned char yes = 1;
	int err;

	for (unsigned int i = 0; i < count; i++) {
		err = bpf_map_update_elem(fd, &uids[i], &yes, BPF_ANY);
		if (err)
			return err;
	}
	return 0;
}

/* Opens, configures and loads the skeleton with these features. */
static int load(const struct exec_settings *settings, const unsigned int *uids, unsigned int max_entries,
		struct exec_features features, struct execcount_bpf **out)
{
	struct execcount_bpf *skel = execcount_bpf__open();
	int err;

	if (!skel)
		return -errno;
	err = max_entries ? bpf_map__set_max_entries(skel->maps.exec_count, max_entries) : 0;
	if (!err)
		err = configure(skel, settings, features);
	if (!err)
		err = execcount_bpf__load(skel);
	if (!err)
		err = fill_uid_filter(skel, uids, settings->uid_count);
	if (err) {
		execcount_bpf__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

int pyexec_counter_load(const struct exec_settings *settings, const unsigned int *uids,
			unsigned int max_entries, struct pyexec_counter **out)
{
	struct exec_features features = probe_features(settings->features);
	bool resolved = settings->key == EXEC_KEY_RESOLVED;
	struct pyexec_counter *counter;
	struct execcount_bpf *skel = NULL;
	struct bpf_program *prog;
	int err = -EINVAL;

	counter = calloc(1, sizeof(*counter));
	if (!counter)
		return -ENOMEM;
	/* Only --key invoked reads names by loads; whether the verifier allows
	 * them (6.17) is known only by trying. */
	features.name_loads = features.name_loads && !resolved;
	if (features.name_loads) {
		log_quiet = log_level <= LIBBPF_WARN; /* --verbose shows the try too */
		err = load(settings, uids, max_entries, features, &skel);
		log_quiet = false;
		features.name_loads = !err;
	}
	if (!skel)
		err = load(settings, uids, max_entries, features, &skel);
	if (err) {
		free(counter);
		return err;
	}
	features.iterators = features.iterators && resolved && calls_kfuncs(skel->progs.count_exec);
	features.task_btf = features.task_btf && settings->mode == EXEC_MODE_ATTEMPTS;
	features.ancestor_cgroup = features.ancestor_cgroup && settings->cgroup;
	counter->skel = skel;
	counter->features = features;
	counter->reader.count_fd = bpf_map__fd(skel->maps.exec_count);
	counter->reader.stats_fd = bpf_map__fd(skel->maps.exec_stats);
	counter->reader.uid_fd = bpf_map__fd(skel->maps.uid_filter);
	counter->reader.max_entries = bpf_map__max_entries(skel->maps.exec_count);
	bpf_object__for_each_program(prog, skel->obj)
		if (bpf_program__fd(prog) >= 0 && counter->reader.prog_count < MAX_PROGRAMS)
			counter->reader.prog_fds[counter->reader.prog_count++] = bpf_program__fd(prog);
	memcpy(&counter->reader.settings, (const void *)&skel->rodata->settings, sizeof(struct exec_settings));
	*out = counter;
	return 0;
}

int pyexec_counter_attach(struct pyexec_counter *counter)
{
	return execcount_bpf__attach(counter->skel);
}

void pyexec_counter_destroy(struct pyexec_counter *counter)
{
	if (!counter)
		return;
	execcount_bpf__destroy(counter->skel);
	free(counter);
}

struct pyexec_reader *pyexec_counter_reader(struct pyexec_counter *counter)
{
	return &counter->reader;
}

void pyexec_counter_features(const struct pyexec_counter *counter, struct exec_features *out)
{
	*out = counter->features;
}

unsigned int pyexec_reader_max_entries(const struct pyexec_reader *reader)
{
	return reader->max_entries;
}

void pyexec_reader_settings(const struct pyexec_reader *reader, struct exec_settings *out)
{
	*out = reader->settings;
}

void pyexec_reader_use_per_key_reads(struct pyexec_reader *reader)
{
	reader->per_key_reads = true;
}

/* The objects a pin directory holds: the maps a reader needs, and the links
 * that keep the programs attached with no process holding them. */
#define PIN_COUNT "exec_count"
#define PIN_STATS "exec_stats"
#define PIN_UIDS "uid_filter"
#define PIN_SETTINGS "settings" /* the .rodata map */
#define PIN_LINK "link_" /* and the program's name */

static int pin_path(char *path, size_t size, const char *dir, const char *name, const char *suffix)
{
	int len = snprintf(path, size, "%s/%s%s", dir, name, suffix);

	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

int pyexec_counter_pin(struct pyexec_counter *counter, const char *dir)
{
	struct execcount_bpf *skel = counter->skel;
	struct { struct bpf_map *map; const char *name; } maps[] = {
		{skel->maps.exec_count, PIN_COUNT}, {skel->maps.exec_stats, PIN_STATS},
		{skel->maps.uid_filter, PIN_UIDS}, {skel->maps.rodata, PIN_SETTINGS},
	};
	char path[4096];
	int err;

	for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
		err = pin_path(path, sizeof(path), dir, maps[i].name, "");
		if (!err)
			err = bpf_map__pin(maps[i].map, path);
		if (err)
			return err;
	}
	for (int i = 0; i < skel->skeleton->prog_cnt; i++) {
		struct bpf_link *link = *skel->skeleton->progs[i].link;

		if (!link)
			continue; /* not loaded: the syscall tracepoints outside attempts mode */
		err = pin_path(path, sizeof(path), dir, PIN_LINK, skel->skeleton->progs[i].name);
		if (!err)
			err = bpf_link__pin(link, path);
		if (err)
			return err;
	}
	return 0;
}

static int open_pin(const char *dir, const char *name, int *fd)
{
	char path[4096];
	int err = pin_path(path, sizeof(path), dir, name, "");

	if (err)
		return err;
	*fd = bpf_obj_get(path);
	return *fd < 0 ? -errno : 0;
}

/* The settings, from the pinned .rodata map: where the skeleton puts them. */
static int read_pinned_settings(int fd, struct exec_settings *out)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), zero = 0;
	char *value;
	int err = bpf_map_get_info_by_fd(fd, &info, &info_len);

	if (err)
		return err;
	if (info.value_size < offsetof(struct execcount_bpf__rodata, settings) + sizeof(*out))
		return -EPROTO;
	value = calloc(1, info.value_size);
	if (!value)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, &zero, value);
	if (!err)
		memcpy(out, value + offsetof(struct execcount_bpf__rodata, settings), sizeof(*out));
	free(value);
	return err;
}

/* The programs behind the links pinned in dir. */
static int open_pinned_programs(const char *dir, struct pyexec_reader *reader)
{
	DIR *entries = opendir(dir);
	struct dirent *entry;
	char path[4096];

	if (!entries)
		return -errno;
	while ((entry = readdir(entries)) && reader->prog_count < MAX_PROGRAMS) {
		struct bpf_link_info info = {};
		__u32 info_len = sizeof(info);
		int link_fd, prog_fd;

		if (strncmp(entry->d_name, PIN_LINK, strlen(PIN_LINK)) ||
		    pin_path(path, sizeof(path), dir, entry->d_name, ""))
			continue;
		link_fd = bpf_obj_get(path);
		if (link_fd < 0)
			continue;
		prog_fd = bpf_link_get_info_by_fd(link_fd, &info, &info_len) ? -1 : bpf_prog_get_fd_by_id(info.prog_id);
		close(link_fd);
		if (prog_fd >= 0)
			reader->prog_fds[reader->prog_count++] = prog_fd;
	}
	closedir(entries);
	return 0;
}

int pyexec_reader_program_stats(const struct pyexec_reader *reader, unsigned long long *run_time_ns,
				unsigned long long *run_count)
{
	*run_time_ns = *run_count = 0;
	for (unsigned int i = 0; i < reader->prog_count; i++) {
		struct bpf_prog_info info = {};
		__u32 info_len = sizeof(info);
		int err = bpf_prog_get_info_by_fd(reader->prog_fds[i], &info, &info_len);

		if (err)
			return err;
		*run_time_ns += info.run_time_ns;
		*run_count += info.run_cnt;
	}
	return 0;
}

int pyexec_reader_open_pinned(const char *dir, struct pyexec_reader **out)
{
	struct pyexec_reader *reader = calloc(1, sizeof(*reader));
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int settings_fd = -1, err;

	if (!reader)
		return -ENOMEM;
	reader->count_fd = reader->stats_fd = reader->uid_fd = -1;
	reader->owns_fds = true;
	err = open_pin(dir, PIN_COUNT, &reader->count_fd);
	if (!err)
		err = open_pin(dir, PIN_STATS, &reader->stats_fd);
	if (!err)
		err = open_pin(dir, PIN_UIDS, &reader->uid_fd);
	if (!err)
		err = open_pin(dir, PIN_SETTINGS, &settings_fd);
	if (!err)
		err = read_pinned_settings(settings_fd, &reader->settings);
	if (!err)
		err = bpf_map_get_info_by_fd(reader->count_fd, &info, &info_len);
	/* Another layout: pinned by another version of pyexec, which this one would misread. */
	if (!err && (reader->settings.layout != EXEC_LAYOUT || info.key_size != sizeof(struct exec_key)))
		err = -EPROTO;
	if (settings_fd >= 0)
		close(settings_fd);
	if (!err)
		err = open_pinned_programs(dir, reader);
	if (err) {
		pyexec_reader_close(reader);
		return err;
	}
	reader->max_entries = info.max_entries;
	*out = reader;
	return 0;
}

void pyexec_reader_close(struct pyexec_reader *reader)
{
	if (!reader || !reader->owns_fds)
		return;
	int fds[] = {reader->count_fd, reader->stats_fd, reader->uid_fd};

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (unsigned int i = 0; i < reader->prog_count; i++)
		close(reader->prog_fds[i]);
	free(reader);
}

static int map_id(int fd, unsigned int *id)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int err = bpf_map_get_info_by_fd(fd, &info, &info_len);

	if (!err)
		*id = info.id;
	return err;
}

int pyexec_reader_map_id(const struct pyexec_reader *reader, unsigned int *id)
{
	return map_id(reader->count_fd, id);
}

int pyexec_pinned_map_id(const char *dir, unsigned int *id)
{
	int fd, err = open_pin(dir, PIN_COUNT, &fd);

	if (err)
		return err;
	err = map_id(fd, id);
	close(fd);
	return err;
}

int pyexec_reader_uids(const struct pyexec_reader *reader, unsigned int *out, unsigned int capacity,
		       unsigned int *found)
{
	unsigned int key, next, n = 0;
	void *previous = NULL;
	int err;

	while (n < capacity && !(err = bpf_map_get_next_key(reader->uid_fd, previous, &next))) {
		out[n++] = key = next;
		previous = &key;
	}
	*found = n;
	return n == capacity || err == -ENOENT ? 0 : err;
}

/* Where a read of exec_count has got to. */
struct map_cursor {
	bool started, finished;
	unsigned long long token;   /* batch reads: the bucket the kernel resumes at */
	struct exec_key last_key;   /* per-key reads: the key to go on from */
};

static int read_chunk_per_key(int fd, struct map_cursor *cursor, struct exec_key *keys,
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
	return err == -EINVAL || err == -EOPNOTSUPP || err == -ENOTSUP || err == -524 /* ENOTSUPP */;
}

/* Reads up to room entries into the counter's chunk buffers. */
static int read_chunk(struct pyexec_reader *reader, struct map_cursor *cursor,
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

/* Appends a chunk to the snapshot's columns, each path followed by a NUL. */
static void append_chunk(struct pyexec_snapshot *out, const struct exec_key *keys,
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
	for (unsigned int i = 0, row = out->found; i < n; i++, row++) {
		if (out->uids)
			out->uids[row] = keys[i].uid;
		if (out->comms)
			memcpy(out->comms + row * EXEC_COMM_SIZE, keys[i].comm, EXEC_COMM_SIZE);
		if (out->parents)
			memcpy(out->parents + row * EXEC_COMM_SIZE, keys[i].parent, EXEC_COMM_SIZE);
		if (out->cgroups)
			out->cgroups[row] = keys[i].cgroup;
		if (out->outcomes)
			out->outcomes[row] = keys[i].outcome;
		if (out->truncated)
			out->truncated[row] = keys[i].truncated;
		if (out->mnt_ns)
			out->mnt_ns[row] = keys[i].mnt_ns;
	}
	out->found += n;
	out->paths_size = end - out->paths;
}

int pyexec_reader_snapshot(struct pyexec_reader *reader, struct pyexec_snapshot *out)
{
	struct map_cursor cursor = {0};
	unsigned int room, got;
	int err;

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

int pyexec_reader_stats(struct pyexec_reader *reader, struct exec_stats *out)
{
	int cpus = libbpf_num_possible_cpus();
	struct exec_stats *per_cpu;
	unsigned int zero = 0;
	int err, cpu;

	if (cpus < 0)
		return cpus;
	per_cpu = calloc(cpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	err = bpf_map_lookup_elem(reader->stats_fd, &zero, per_cpu);
	if (err)
		goto out;
	memset(out, 0, sizeof(*out));
	for (cpu = 0; cpu < cpus; cpu++) {
		out->dropped += per_cpu[cpu].dropped;
		out->truncated += per_cpu[cpu].truncated;
		out->errors += per_cpu[cpu].errors;
	}
out:
	free(per_cpu);
	return err;
}

/* The names of the maps in pyexec's BPF object, read from the embedded object. */
static int our_map_names(char names[][16], unsigned int capacity, unsigned int *count)
{
	struct execcount_bpf *skel = execcount_bpf__open();
	struct bpf_map *map;

	if (!skel)
		return -errno;
	*count = 0;
	bpf_object__for_each_map(map, skel->obj) {
		const char *name = bpf_map__name(map);

		if (*count == capacity)
			break;
		if (name[0] != '.') /* .rodata.str1.1 and the like are every object's */
			snprintf(names[(*count)++], 16, "%s", name);
	}
	execcount_bpf__destroy(skel);
	return 0;
}

static unsigned long long fdinfo_memlock(int fd)
{
	char path[64], line[256];
	unsigned long long memlock = 0;
	FILE *fdinfo;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fdinfo = fopen(path, "r");
	if (!fdinfo)
		return 0;
	while (fgets(line, sizeof(line), fdinfo))
		if (sscanf(line, "memlock: %llu", &memlock) == 1)
			break;
	fclose(fdinfo);
	return memlock;
}

static long long count_entries(int fd, const struct bpf_map_info *info)
{
	char key[512], next[512];
	long long entries = 0;
	void *previous = NULL;

	if (info->type == BPF_MAP_TYPE_ARRAY || info->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
	    info->key_size > sizeof(key))
		return -1;
	while (!bpf_map_get_next_key(fd, previous, next)) {
		memcpy(key, next, info->key_size);
		previous = key;
		entries++;
	}
	return entries;
}

int pyexec_list_maps(struct pyexec_map_info *out, unsigned int capacity, unsigned int *found)
{
	char names[16][16];
	unsigned int id = 0, name_count, n = 0;
	int err, fd;

	err = our_map_names(names, 16, &name_count);
	if (err)
		return err;
	while (n < capacity && !(err = bpf_map_get_next_id(id, &id))) {
		struct bpf_map_info info = {};
		__u32 info_len = sizeof(info);
		bool ours = false;

		fd = bpf_map_get_fd_by_id(id);
		if (fd < 0) /* gone meanwhile */
			continue;
		if (!bpf_map_get_info_by_fd(fd, &info, &info_len)) {
			for (unsigned int i = 0; i < name_count && !ours; i++)
				ours = !strncmp(info.name, names[i], sizeof(info.name));
		}
		if (ours) {
			struct pyexec_map_info *map = &out[n++];

			map->id = info.id;
			snprintf(map->name, sizeof(map->name), "%s", info.name);
			map->type = info.type;
			map->key_size = info.key_size;
			map->value_size = info.value_size;
			map->max_entries = info.max_entries;
			map->flags = info.map_flags;
			map->btf_id = info.btf_id;
			map->memlock = fdinfo_memlock(fd);
			map->entries = count_entries(fd, &info);
		}
		close(fd);
	}
	*found = n;
	return err == -ENOENT ? 0 : err;
}

const char *pyexec_map_type_name(unsigned int type)
{
	const char *name = libbpf_bpf_map_type_str(type);

	return name ? name : "unknown";
}
