// SPDX-License-Identifier: BSD-2-Clause
/* What the loaders of pyexec's BPF programs share: libbpf's log, feature
 * probes, pins and the programs behind them, and the host's maps of ours. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include "program_impl.h"
#include "programs.h" /* made by make: PYEXEC_PROGRAMS, one X(name) per BPF program */

/* Defined by the cffi module (extern "Python+C"): hands a line to Python. */
void pyexec_libbpf_log(int level, const char *message);

static int log_level = LIBBPF_WARN;
bool pyexec_log_quiet;

static int forward_libbpf_log(enum libbpf_print_level level, const char *format, va_list args)
{
	char *message;
	size_t len;

	if ((int)level > log_level || pyexec_log_quiet)
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

bool pyexec_log_warnings_only(void)
{
	return log_level <= LIBBPF_WARN;
}

const char *pyexec_libbpf_version(void)
{
	return libbpf_version_string();
}

/* The byte offset of member in struct of btf, or -1. */
static int member_offset(const struct btf *btf, const char *type, const char *member)
{
	int id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	const struct btf_type *t = id < 0 ? NULL : btf__type_by_id(btf, id);
	const struct btf_member *m = t ? btf_members(t) : NULL;

	for (int i = 0; t && i < btf_vlen(t); i++)
		if (!strcmp(btf__name_by_offset(btf, m[i].name_off), member))
			return btf_member_bit_offset(t, i) / 8;
	return -1;
}

/* Whether the verifier takes a plain load through bprm->filename (a char * of
 * a BTF-typed struct) at sched_process_exec: a kernel without it is not given
 * the whole counter to refuse. */
static bool name_loads(void)
{
	struct btf *btf = btf__load_vmlinux_btf();
	int target = btf ? btf__find_by_name_kind(btf, "btf_trace_sched_process_exec", BTF_KIND_TYPEDEF) : -1;
	int filename = btf ? member_offset(btf, "linux_binprm", "filename") : -1;
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP, .attach_btf_id = target);
	struct bpf_insn insns[] = {
		/* bprm, the tracepoint's third argument; its filename; a word of the name */
		{.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_1, .off = 16},
		{.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_1, .src_reg = BPF_REG_1, .off = filename},
		{.code = BPF_LDX | BPF_MEM | BPF_DW, .dst_reg = BPF_REG_0, .src_reg = BPF_REG_1, .off = 0},
		{.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0},
		{.code = BPF_JMP | BPF_EXIT},
	};
	int fd = -1;

	btf__free(btf);
	if (target > 0 && filename >= 0)
		fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, sizeof(insns) / sizeof(insns[0]), &opts);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

struct exec_features pyexec_probe_features(struct exec_features wanted)
{
	/* Tracepoint and tp_btf programs are offered the same tracing helpers. */
	wanted.task_btf = wanted.task_btf &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_task_btf, NULL) == 1;
	wanted.ancestor_cgroup = wanted.ancestor_cgroup &&
		libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_get_current_ancestor_cgroup_id, NULL) == 1;
	wanted.loop = wanted.loop && libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
	wanted.name_loads = wanted.name_loads && name_loads();
	return wanted;
}

bool pyexec_calls_kfuncs(const struct bpf_program *prog)
{
	const struct bpf_insn *insns = bpf_program__insns(prog);

	for (size_t i = 0; i < bpf_program__insn_cnt(prog); i++)
		if (insns[i].code == (BPF_JMP | BPF_CALL) && insns[i].src_reg == BPF_PSEUDO_KFUNC_CALL)
			return true;
	return false;
}

int pyexec_pin_path(char *path, size_t size, const char *dir, const char *name, const char *suffix)
{
	int len = snprintf(path, size, "%s/%s%s", dir, name, suffix);

	return len < 0 || (size_t)len >= size ? -ENAMETOOLONG : 0;
}

int pyexec_pin_object(const struct bpf_object_skeleton *skeleton, const char *dir,
		      struct bpf_map *const *maps, const char *const *names, size_t count)
{
	char path[4096];
	int err;

	for (size_t i = 0; i < count; i++) {
		err = pyexec_pin_path(path, sizeof(path), dir, names[i], "");
		if (!err)
			err = bpf_map__pin(maps[i], path);
		if (err)
			return err;
	}
	for (int i = 0; i < skeleton->prog_cnt; i++) {
		struct bpf_link *link = *skeleton->progs[i].link;

		if (!link)
			continue; /* not loaded, as programs a setting turned off */
		err = pyexec_pin_path(path, sizeof(path), dir, EXEC_PIN_LINK_PREFIX, skeleton->progs[i].name);
		if (!err)
			err = bpf_link__pin(link, path);
		if (err)
			return err;
	}
	return 0;
}

int pyexec_open_pin(const char *dir, const char *name, int *fd)
{
	char path[4096];
	int err = pyexec_pin_path(path, sizeof(path), dir, name, "");

	if (err)
		return err;
	*fd = bpf_obj_get(path);
	return *fd < 0 ? -errno : 0;
}

int pyexec_open_pinned_programs(const char *dir, int *fds, unsigned int capacity, unsigned int *count)
{
	DIR *entries = opendir(dir);
	struct dirent *entry;
	char path[4096];

	if (!entries)
		return -errno;
	while ((entry = readdir(entries)) && *count < capacity) {
		struct bpf_link_info info = {};
		__u32 info_len = sizeof(info);
		int link_fd, prog_fd;

		if (strncmp(entry->d_name, EXEC_PIN_LINK_PREFIX, strlen(EXEC_PIN_LINK_PREFIX)) ||
		    pyexec_pin_path(path, sizeof(path), dir, entry->d_name, ""))
			continue;
		link_fd = bpf_obj_get(path);
		if (link_fd < 0)
			continue;
		prog_fd = bpf_link_get_info_by_fd(link_fd, &info, &info_len) ? -1 : bpf_prog_get_fd_by_id(info.prog_id);
		close(link_fd);
		if (prog_fd >= 0)
			fds[(*count)++] = prog_fd;
	}
	closedir(entries);
	return 0;
}

int pyexec_read_pinned_rodata(int fd, size_t offset, void *out, size_t size)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info), zero = 0;
	char *value;
	int err = bpf_map_get_info_by_fd(fd, &info, &info_len);

	if (err)
		return err;
	if (info.value_size < offset + size)
		return -EPROTO;
	value = calloc(1, info.value_size);
	if (!value)
		return -ENOMEM;
	err = bpf_map_lookup_elem(fd, &zero, value);
	if (!err)
		memcpy(out, value + offset, size);
	free(value);
	return err;
}

int pyexec_map_id(int fd, unsigned int *id)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int err = bpf_map_get_info_by_fd(fd, &info, &info_len);

	if (!err)
		*id = info.id;
	return err;
}

int pyexec_pinned_map_id(const char *dir, const char *name, unsigned int *id)
{
	int fd, err = pyexec_open_pin(dir, name, &fd);

	if (err)
		return err;
	err = pyexec_map_id(fd, id);
	close(fd);
	return err;
}

int pyexec_program_totals(const int *fds, unsigned int count, struct pyexec_program_totals *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned int i = 0; i < count; i++) {
		struct bpf_prog_info info = {};
		__u32 info_len = sizeof(info);
		int err = bpf_prog_get_info_by_fd(fds[i], &info, &info_len);

		if (err)
			return err;
		out->run_time_ns += info.run_time_ns;
		out->run_count += info.run_cnt;
		out->recursion_misses += info.recursion_misses;
	}
	return 0;
}

unsigned int pyexec_program_fds(const struct bpf_object *obj, int *fds, unsigned int capacity)
{
	struct bpf_program *prog;
	unsigned int count = 0;

	bpf_object__for_each_program(prog, obj)
		if (bpf_program__fd(prog) >= 0 && count < capacity)
			fds[count++] = bpf_program__fd(prog);
	return count;
}

/* Every BPF object pyexec embeds, as its loader hands it out. */
#define X(name) const void *pyexec_##name##_object(size_t *size);
PYEXEC_PROGRAMS
#undef X
static const void *(*const objects[])(size_t *size) = {
#define X(name) pyexec_##name##_object,
	PYEXEC_PROGRAMS
#undef X
};

#define MAX_MAP_NAMES 32

/* The names of the maps in pyexec's BPF objects, read from the embedded objects. */
static int our_map_names(char names[][16], unsigned int capacity, unsigned int *count)
{
	*count = 0;
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		size_t size;
		const void *bytes = objects[i](&size);
		struct bpf_object *obj = bpf_object__open_mem(bytes, size, NULL);
		struct bpf_map *map;

		if (!obj)
			return -errno;
		bpf_object__for_each_map(map, obj) {
			const char *name = bpf_map__name(map);

			/* .rodata.str1.1 and the like are every object's */
			if (*count < capacity && name[0] != '.')
				snprintf(names[(*count)++], 16, "%s", name);
		}
		bpf_object__close(obj);
	}
	return 0;
}

unsigned long long pyexec_map_memlock(int fd)
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
	char names[MAX_MAP_NAMES][16];
	unsigned int id = 0, name_count, n = 0;
	int err, fd;

	err = our_map_names(names, MAX_MAP_NAMES, &name_count);
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
			map->memlock = pyexec_map_memlock(fd);
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

int pyexec_fill_uids(int fd, const unsigned int *uids, unsigned int count)
{
	unsigned char yes = 1;
	int err;

	for (unsigned int i = 0; i < count; i++) {
		err = bpf_map_update_elem(fd, &uids[i], &yes, BPF_ANY);
		if (err)
			return err;
	}
	return 0;
}

int pyexec_read_uids(int fd, unsigned int *out, unsigned int capacity, unsigned int *found)
{
	unsigned int key, next, n = 0;
	void *previous = NULL;
	int err;

	while (n < capacity && !(err = bpf_map_get_next_key(fd, previous, &next))) {
		out[n++] = key = next;
		previous = &key;
	}
	*found = n;
	return n == capacity || err == -ENOENT ? 0 : err;
}
