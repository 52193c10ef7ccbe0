// SPDX-License-Identifier: GPL-2.0
/* Counts program executions (with --mode attempts, failed exec calls too),
 * keyed by the binary's path and whichever other fields user space chose. */
#include "vmlinux.h"
#include "execcount.h"

/* Set by user space between open and load (struct exec_settings says what
 * each does); the verifier prunes what they turn off. */
const volatile struct exec_settings settings = {.layout = EXEC_LAYOUT, .by = EXEC_BY_PATH};

#include "exec.bpf.h"

#define E2BIG_ERR 7
#define EEXIST_ERR 17

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_COUNT_DEFAULT_ENTRIES); /* user space may change it before load */
	__type(key, struct exec_count_key);
	__type(value, __u64);
} exec_count SEC(".maps");

/* Each counted path once (struct exec_path_header, then the path), in the
 * first of these whose value holds its record; user space sizes each from
 * max_entries (EXEC_PATHS_SHIFT). */
#define PATHS_MAP(n)                                                                    \
	struct exec_path_record_##n {                                                   \
		struct exec_path_header header;                                         \
		char path[EXEC_PATHS_##n##_SIZE - sizeof(struct exec_path_header)];     \
	};                                                                              \
	struct {                                                                        \
		__uint(type, BPF_MAP_TYPE_HASH);                                        \
		__uint(max_entries, EXEC_COUNT_DEFAULT_ENTRIES >> ((n) * EXEC_PATHS_SHIFT)); \
		__type(key, struct exec_path_id);                                       \
		__type(value, struct exec_path_record_##n);                             \
	} exec_paths_##n SEC(".maps")

PATHS_MAP(0);
PATHS_MAP(1);
PATHS_MAP(2);
PATHS_MAP(3);

/* attempts: the file name of each exec call under way, by thread, until its
 * exit says whether it failed. LRU, so calls that never return (a thread
 * whose id changed in a successful exec) do not pile up. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 10240);
	__type(key, __u32);
	__type(value, __u64);
} exec_calls SEC(".maps");

/* Keys inserted by the executions of users other than root: they may take all
 * of exec_count but settings.root_reserve. Never decreases: no key is deleted.
 * The same for each exec_paths map, whose share of the reserve is its share of
 * max_entries. */
static __u64 user_keys;
static __u64 user_records[EXEC_PATH_CLASSES];

/* The record of the path read into buf: where it starts, and its size. */
struct record {
	struct path_buffer *buf;
	__u32 start;
	__u32 size;
};

/* Stores the record in the map of class n (a map of value_size bytes), unless
 * it is there already: then copies what is there to record->buf->stored.
 * Returns 0 if stored, 1 if copied, or -E2BIG if it does not fit or the map is
 * full (for uid, who is not root: but for the root reserve). */
static __always_inline int keep_record_in(void *map, __u32 n, __u32 value_size, const struct exec_count_key *key,
					  const struct record *record, __u32 uid)
{
	__u32 entries = settings.max_entries >> (n * EXEC_PATHS_SHIFT);
	__u32 reserve = settings.root_reserve >> (n * EXEC_PATHS_SHIFT);
	const void *stored;
	int err;

	if (record->size > value_size)
		return -E2BIG_ERR;
	if (entries < EXEC_PATHS_MIN_ENTRIES) /* as pyexec_paths_entries sizes it */
		entries = EXEC_PATHS_MIN_ENTRIES;
	stored = bpf_map_lookup_elem(map, &key->path);
	if (!stored) {
		if (uid && user_records[n & (EXEC_PATH_CLASSES - 1)] >= entries - reserve)
			return -E2BIG_ERR;
		err = bpf_map_update_elem(map, &key->path, &record->buf->bytes[record->start & RECORD_MASK], BPF_NOEXIST);
		if (!err && uid)
			__sync_fetch_and_add(&user_records[n & (EXEC_PATH_CLASSES - 1)], 1);
		if (err != -EEXIST_ERR)
			return err;
		/* Another CPU stored it between our lookup and update. */
		stored = bpf_map_lookup_elem(map, &key->path);
		if (!stored)
			return -E2BIG_ERR;
	}
	bpf_probe_read_kernel(record->buf->stored, value_size, stored);
	return 1;
}

/* Keeps the record of the key's path once, in the first map it fits in that
 * has room (or has it already). Returns 0, -E2BIG if no map had room, or
 * -EEXIST if another record has its id. */
static __always_inline int keep_record(const struct exec_count_key *key, const struct record *record, __u32 uid)
{
	int err = keep_record_in(&exec_paths_0, 0, EXEC_PATHS_0_SIZE, key, record, uid);

	if (err == -E2BIG_ERR)
		err = keep_record_in(&exec_paths_1, 1, EXEC_PATHS_1_SIZE, key, record, uid);
	if (err == -E2BIG_ERR)
		err = keep_record_in(&exec_paths_2, 2, EXEC_PATHS_2_SIZE, key, record, uid);
	if (err == -E2BIG_ERR)
		err = keep_record_in(&exec_paths_3, 3, EXEC_PATHS_3_SIZE, key, record, uid);
	if (err != 1)
		return err;
	return same_record(record->buf, record->start, record->size) ? 0 : -EEXIST_ERR;
}

/* Adds one to the count of key, exactly, whichever CPUs race on it; on its
 * first execution, keeps its path's record (if it has one) first. Returns 0,
 * -E2BIG if a map was full, or -EEXIST if another path has the key's path id. */
static __always_inline int count_key(const struct exec_count_key *key, const struct record *record)
{
	__u64 one = 1, *count;
	__u32 uid;
	/* An int: older kernels (5.10 here) call the map's own update, which
	 * returns an int, so the register's upper half is not its sign: as a
	 * long, -EEXIST read 0xffffffef, and a lost race counted as dropped. */
	int err;

	count = bpf_map_lookup_elem(&exec_count, key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	/* A few CPUs racing here may overshoot the share by one each: harmless. */
	uid = (__u32)bpf_get_current_uid_gid();
	if (uid && user_keys >= settings.max_entries - settings.root_reserve)
		return -E2BIG_ERR;
	if (record) {
		err = keep_record(key, record, uid);
		if (err)
			return err;
	}
	err = bpf_map_update_elem(&exec_count, key, &one, BPF_NOEXIST);
	if (!err && uid)
		__sync_fetch_and_add(&user_keys, 1);
	if (err != -EEXIST_ERR)
		return err;
	/* Another CPU inserted the key between our lookup and update. */
	count = bpf_map_lookup_elem(&exec_count, key);
	if (!count)
		return -E2BIG_ERR;
	__sync_fetch_and_add(count, 1);
	return 0;
}

/* Once the path is read: applies --path-prefix and counts a truncation. False:
 * filtered out. A resolved path cut to fit keeps its end, not its start, so
 * the prefix cannot be decided: it is counted (as truncated), never lost. */
static __always_inline bool keep_path(const struct path_buffer *buf, bool complete, bool resolved, __u32 mnt_ns)
{
	__u32 pos = buf->pos;

	if (settings.filters.path_prefix_len) {
		if (mnt_ns) /* another namespace's path is no host path: no host prefix takes it */
			return false;
		if (pos > PATH_END)
			return false;
		if ((complete || !resolved) &&
		    !starts_with(&buf->bytes[pos], settings.filters.path_prefix, settings.filters.path_prefix_len, EXEC_PATH_SIZE))
			return false;
	}
	if (!complete)
		count_loss(truncated);
	return true;
}

/* Fills in the fields other than the path and outcome, then counts the key. */
static __always_inline void fill_and_count(struct exec_count_key *key, const struct record *record,
					   struct task_struct *task, bool task_btf)
{
	int err;

	if (settings.by & EXEC_BY_UID)
		key->uid = (__u32)bpf_get_current_uid_gid();
	if (settings.by & EXEC_BY_COMM)
		bpf_get_current_comm(key->comm, sizeof(key->comm));
	if (settings.by & EXEC_BY_PARENT)
		bpf_probe_read_kernel_str(key->parent, sizeof(key->parent),
					  TASK_FIELD(task, task_btf, real_parent)->comm);
	if (settings.by & EXEC_BY_CGROUP)
		key->cgroup = bpf_get_current_cgroup_id();
	err = count_key(key, record);
	if (err == -EEXIST_ERR)
		count_loss(collisions);
	else if (err)
		count_loss(dropped);
	if (settings.debug && record && record->start <= PATH_END - PATH_HEADER)
		bpf_printk("pyexec: counted %s (outcome %d)", &record->buf->bytes[record->start + PATH_HEADER],
			   key->outcome);
	else if (settings.debug)
		bpf_printk("pyexec: counted (outcome %d)", key->outcome);
}

/* Whether the key or --path-prefix needs the path (settings alone: the verifier
 * prunes what this turns off). */
static __always_inline bool path_wanted(void)
{
	return (settings.by & EXEC_BY_PATH) || settings.filters.path_prefix_len;
}

/* Reads the path (if the key or --path-prefix needs one): resolved from file,
 * or else the name given to exec, in kernel or user memory; puts its id in the
 * key. Then fills in the other fields and counts the key, unless a filter
 * leaves it out. */
static __always_inline void count_exec_key(struct exec_count_key *key, struct task_struct *task,
					   bool task_btf, struct file *file, const char *name,
					   bool user)
{
	struct record record = {}, *kept = NULL;
	__u32 zero = 0, mnt_ns = 0;
	bool complete = true;

	if (path_wanted()) {
		record.buf = bpf_map_lookup_elem(&path_buffers, &zero);
		if (!record.buf)
			return;
		if (file) {
			complete = resolve_path(record.buf, file);
			mnt_ns = foreign_mount_namespace(file, task);
		} else if (!name || read_name(name, user, record.buf, &complete)) {
			count_loss(errors);
			return;
		}
		if (!keep_path(record.buf, complete, file, mnt_ns))
			return;
		if (settings.by & EXEC_BY_PATH) {
			record.start = seal_record(record.buf, complete, mnt_ns);
			record.size = PATH_HEADER + record.buf->length;
			path_id_of(record.buf, record.start, record.size, &key->path);
			kept = &record;
		}
	}
	fill_and_count(key, kept, task, task_btf);
}

/* sched_process_exec fires once per successful execve, execveat or fexecve,
 * after the point of no return, with the new program in place. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(count_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	struct exec_count_key key; /* on the stack, which is hot in cache */

	if (!wanted(task, true))
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	/* bprm->file is what /proc/PID/exe names: for a #! script, its interpreter. */
	count_exec_key(&key, task, true, settings.key == EXEC_KEY_RESOLVED ? bprm->file : NULL,
		       bprm->filename, false);
	return 0;
}

/* attempts: remember the file name an exec call was given... */
static __always_inline int remember_exec_call(const char *filename)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 name = (__u64)filename;

	bpf_map_update_elem(&exec_calls, &tid, &name, BPF_ANY);
	return 0;
}

/* ...and at its exit, count it under that name and its errno if it failed.
 * The name is read now: the call has faulted its page in, where reading it
 * at entry could fail and lose the name. */
static __always_inline int count_failed_exec_call(long ret)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	bool task_btf = settings.allowed.task_btf;
	struct task_struct *task = task_btf ? bpf_get_current_task_btf()
					    : (struct task_struct *)bpf_get_current_task();
	__u64 *name = bpf_map_lookup_elem(&exec_calls, &tid);
	const char *filename = name ? (const char *)*name : NULL;
	struct exec_count_key key;

	bpf_map_delete_elem(&exec_calls, &tid);
	/* A successful exec counts at sched_process_exec; a call with no name
	 * remembered began before counting did, and is not counted at all. */
	if (ret >= 0 || !filename || !wanted(task, task_btf))
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	key.outcome = -ret;
	count_exec_key(&key, task, task_btf, NULL, filename, true); /* a failed call has no file */
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_execve")
int enter_execve(struct trace_event_raw_sys_enter *ctx)
{
	return remember_exec_call((const char *)ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_enter_execveat")
int enter_execveat(struct trace_event_raw_sys_enter *ctx)
{
	return remember_exec_call((const char *)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_execve")
int exit_execve(struct trace_event_raw_sys_exit *ctx)
{
	return count_failed_exec_call(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_execveat")
int exit_execveat(struct trace_event_raw_sys_exit *ctx)
{
	return count_failed_exec_call(ctx->ret);
}
