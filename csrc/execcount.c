// SPDX-License-Identifier: BSD-2-Clause
/* The exec counter's loader: configures, loads, attaches and pins the
 * execcount skeleton, and hands its maps to a reader. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <bpf/bpf.h>
#include "execcount_reader.h" /* before the skeleton, whose .rodata holds struct exec_settings */
#include "execcount.skel.h"

_Static_assert(offsetof(struct execcount_bpf__rodata, settings) == 0,
	       "execcount_reader.c reads the settings at the start of a pinned .rodata");

struct pyexec_counter {
	struct execcount_bpf *skel;
	struct exec_features features_used;
	struct pyexec_count_reader reader;
};

const void *pyexec_execcount_object(size_t *size)
{
	return execcount_bpf__elf_bytes(size);
}

static struct bpf_map *paths_map(struct execcount_bpf *skel, int n)
{
	struct bpf_map *const maps[EXEC_PATH_CLASSES] = {skel->maps.exec_paths_0, skel->maps.exec_paths_1,
							 skel->maps.exec_paths_2, skel->maps.exec_paths_3};

	return maps[n];
}

/* The programs that watch the syscalls that may change a path already found
 * (execcount.bpf.c's WATCH_SYSCALL), and whether each may be missing here
 * (rename and renameat are not every architecture's). */
#define WATCHED(skel) { \
	{(skel)->progs.exit_rename, &(skel)->links.exit_rename, true}, \
	{(skel)->progs.exit_renameat, &(skel)->links.exit_renameat, true}, \
	{(skel)->progs.exit_renameat2, &(skel)->links.exit_renameat2, false}, \
	{(skel)->progs.exit_mount, &(skel)->links.exit_mount, false}, \
	{(skel)->progs.exit_umount, &(skel)->links.exit_umount, false}, \
	{(skel)->progs.exit_move_mount, &(skel)->links.exit_move_mount, true}, \
	{(skel)->progs.exit_pivot_root, &(skel)->links.exit_pivot_root, false}, \
}

struct watched {
	struct bpf_program *prog;
	struct bpf_link **link;
	bool optional;
};

/* Whether the slots are files' (whose paths a rename or mount may change)
 * rather than names'. */
static bool renames_watched(const struct exec_settings *settings)
{
	return EXEC_FILE_SLOTS_USED(settings);
}

/* Turns the file cache off (every execution walks) and detaches the watchers. */
static void unwatch_renames(struct execcount_bpf *skel)
{
	struct watched watched[] = WATCHED(skel);

	skel->bss->files_cached = false;
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
		bpf_link__destroy(*watched[i].link);
		*watched[i].link = NULL;
	}
}

/* Attaches the watchers of renames and mounts; where one cannot be, the file
 * cache is turned off, and none is left attached. */
static void watch_renames(struct execcount_bpf *skel)
{
	struct watched watched[] = WATCHED(skel);
	bool ok = skel->bss->files_cached;
	int err;

	if (!renames_watched((const struct exec_settings *)&skel->rodata->settings))
		return;
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]) && ok; i++) {
		*watched[i].link = bpf_program__attach(watched[i].prog);
		err = *watched[i].link ? 0 : -errno;
		ok = !err || (err == -ENOENT && watched[i].optional);
	}
	if (!ok)
		unwatch_renames(skel);
}

/* The .rodata settings and what they turn on, set between open and load. */
static int configure(struct execcount_bpf *skel, const struct exec_settings *settings,
		     struct exec_features allowed)
{
	struct exec_settings *rodata = (struct exec_settings *)&skel->rodata->settings;
	bool attempts = settings->mode == EXEC_MODE_ATTEMPTS;
	int err = settings->max_entries ? bpf_map__set_max_entries(skel->maps.exec_count, settings->max_entries) : 0;

	if (err)
		return err;
	if (settings->filters.uid_count > EXEC_UID_FILTER_SIZE ||
	    settings->filters.path_prefix_len >= EXEC_PATH_SIZE)
		return -E2BIG;
	*rodata = *settings;
	rodata->layout = EXEC_LAYOUT;
	rodata->max_entries = bpf_map__max_entries(skel->maps.exec_count);
	rodata->allowed = allowed;
	for (int n = 0; n < EXEC_PATH_CLASSES && !err; n++)
		err = bpf_map__set_max_entries(paths_map(skel, n), pyexec_paths_entries(rodata->max_entries, n));
	/* The key of the path ids' hash, which no one else may know. */
	if (!err && getrandom(rodata->secret, sizeof(rodata->secret), 0) != sizeof(rodata->secret))
		err = -errno;
	if (err)
		return err;
	/* Each program that may call bpf_loop in two copies: the one the kernel takes. */
	bpf_program__set_autoload(skel->progs.count_exec_looped, allowed.loop);
	bpf_program__set_autoload(skel->progs.count_exec_bounded, !allowed.loop);
	/* The syscall tracepoints are loaded, and tracefs needed, only for attempts. */
	bpf_program__set_autoload(skel->progs.enter_execve, attempts);
	bpf_program__set_autoload(skel->progs.enter_execveat, attempts);
	bpf_program__set_autoload(skel->progs.exit_execve_looped, attempts && allowed.loop);
	bpf_program__set_autoload(skel->progs.exit_execve_bounded, attempts && !allowed.loop);
	bpf_program__set_autoload(skel->progs.exit_execveat_looped, attempts && allowed.loop);
	bpf_program__set_autoload(skel->progs.exit_execveat_bounded, attempts && !allowed.loop);
	if (!attempts)
		bpf_map__set_max_entries(skel->maps.exec_calls, 1);
	if (!EXEC_KEY_SLOTS_USED(settings))
		bpf_map__set_max_entries(skel->maps.exec_keys, 1);
	{
		struct watched watched[] = WATCHED(skel);

		for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
			bpf_program__set_autoload(watched[i].prog, renames_watched(settings));
			bpf_program__set_autoattach(watched[i].prog, false); /* watch_renames does */
		}
	}
	skel->bss->files_cached = EXEC_SLOTS_USED(settings);
	return 0;
}

/* Opens, configures and loads the skeleton with these features allowed. */
static int load(const struct exec_settings *settings, const unsigned int *uids,
		struct exec_features allowed, struct execcount_bpf **out)
{
	struct execcount_bpf *skel = execcount_bpf__open();
	int err;

	if (!skel)
		return -errno;
	err = configure(skel, settings, allowed);
	if (!err)
		err = execcount_bpf__load(skel);
	if (!err)
		err = pyexec_fill_uids(bpf_map__fd(skel->maps.uid_filter), uids, settings->filters.uid_count);
	if (err) {
		execcount_bpf__destroy(skel);
		return err;
	}
	*out = skel;
	return 0;
}

int pyexec_counter_load(const struct exec_settings *settings, const unsigned int *uids,
			struct pyexec_counter **out)
{
	struct exec_features wanted = settings->allowed, allowed;
	struct pyexec_counter *counter;
	struct execcount_bpf *skel = NULL;
	struct pyexec_count_reader *reader;
	int err = -EINVAL;

	counter = calloc(1, sizeof(*counter));
	if (!counter)
		return -ENOMEM;
	/* Only --key invoked reads names by loads (6.17): its probe is spared the others. */
	wanted.name_loads = wanted.name_loads && settings->key == EXEC_KEY_INVOKED;
	allowed = pyexec_probe_features(wanted);
	/* The probe's three loads may pass where the counter's do not: it is tried
	 * with them first, quietly, then without. */
	if (allowed.name_loads) {
		pyexec_log_quiet = pyexec_log_warnings_only(); /* --verbose shows the try too */
		err = load(settings, uids, allowed, &skel);
		pyexec_log_quiet = false;
		allowed.name_loads = !err;
	}
	if (!skel)
		err = load(settings, uids, allowed, &skel);
	if (err) {
		free(counter);
		return err;
	}
	counter->skel = skel;
	counter->features_used = allowed;
	/* Each key loops over its path's record; only the resolved walks the dentries. */
	counter->features_used.iterators =
		allowed.iterators && pyexec_calls_kfuncs(allowed.loop ? skel->progs.count_exec_looped
								      : skel->progs.count_exec_bounded);
	counter->features_used.loop = allowed.loop && !counter->features_used.iterators;
	counter->features_used.task_btf = allowed.task_btf && settings->mode == EXEC_MODE_ATTEMPTS;
	counter->features_used.ancestor_cgroup = allowed.ancestor_cgroup && settings->filters.cgroup;
	reader = &counter->reader;
	reader->count_fd = bpf_map__fd(skel->maps.exec_count);
	reader->losses_fd = bpf_map__fd(skel->maps.exec_losses);
	reader->uid_fd = bpf_map__fd(skel->maps.uid_filter);
	for (int n = 0; n < EXEC_PATH_CLASSES; n++)
		reader->paths_fds[n] = bpf_map__fd(paths_map(skel, n));
	reader->files_fd = bpf_map__fd(skel->maps.exec_files);
	reader->keys_fd = bpf_map__fd(skel->maps.exec_keys);
	reader->flushes_fd = bpf_map__fd(skel->maps.exec_slot_flushes);
	reader->prog_count = pyexec_program_fds(skel->obj, reader->prog_fds, PYEXEC_MAX_PROGRAMS);
	memcpy(&reader->settings, (const void *)&skel->rodata->settings, sizeof(reader->settings));
	*out = counter;
	return 0;
}

int pyexec_counter_attach(struct pyexec_counter *counter)
{
	/* The watchers first: a file cached before them could miss a rename. */
	watch_renames(counter->skel);
	return execcount_bpf__attach(counter->skel);
}

void pyexec_counter_destroy(struct pyexec_counter *counter)
{
	if (!counter)
		return;
	execcount_bpf__destroy(counter->skel);
	pyexec_count_reader_free_buffers(&counter->reader);
	free(counter);
}

struct pyexec_count_reader *pyexec_counter_reader(struct pyexec_counter *counter)
{
	return &counter->reader;
}

void pyexec_counter_features_used(const struct pyexec_counter *counter, struct exec_features *out)
{
	*out = counter->features_used;
}

/* Whether link is a BPF link, which can be pinned; the link of a syscall
 * tracepoint is one from Linux 5.15, a perf event before. */
static bool is_bpf_link(const struct bpf_link *link)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	return !bpf_link_get_info_by_fd(bpf_link__fd(link), &info, &len);
}

int pyexec_counter_pin(struct pyexec_counter *counter, const char *dir)
{
	struct execcount_bpf *skel = counter->skel;
	struct watched watched[] = WATCHED(skel);

	/* A watcher that cannot be pinned would stop with this process: the
	 * counter goes on without the file cache, as where renames cannot be watched. */
	for (size_t i = 0; i < sizeof(watched) / sizeof(watched[0]); i++) {
		if (*watched[i].link && !is_bpf_link(*watched[i].link)) {
			unwatch_renames(skel);
			break;
		}
	}
	struct bpf_map *const maps[] = {skel->maps.exec_count, skel->maps.exec_paths_0, skel->maps.exec_paths_1,
					skel->maps.exec_paths_2, skel->maps.exec_paths_3, skel->maps.exec_files,
					skel->maps.exec_keys, skel->maps.exec_slot_flushes, skel->maps.exec_losses, skel->maps.uid_filter,
					skel->maps.rodata};
	const char *const names[] = {EXEC_PIN_COUNT, EXEC_PIN_PATHS "0", EXEC_PIN_PATHS "1", EXEC_PIN_PATHS "2",
				     EXEC_PIN_PATHS "3", EXEC_PIN_FILES, EXEC_PIN_KEYS, EXEC_PIN_FLUSHES, EXEC_PIN_LOSSES,
				     EXEC_PIN_UIDS, EXEC_PIN_SETTINGS};

	return pyexec_pin_object(skel->skeleton, dir, maps, names, sizeof(maps) / sizeof(maps[0]));
}
