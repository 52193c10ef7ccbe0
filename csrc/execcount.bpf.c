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
 * of exec_count but settings.root_reserve. Never decreases: no key is deleted. */
static __u64 user_keys;

/* Adds one to the count of key, exactly, whichever CPUs race on it. */
static __always_inline int count_key(const struct exec_count_key *key)
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

/* Once the path is read: applies --path-prefix, counts a truncation, and
 * clears the path if it was read for the filter only. False: filtered out.
 * A resolved path cut to fit keeps its end, not its start, so the prefix
 * cannot be decided: it is counted (as truncated), never lost. */
static __always_inline bool keep_path(struct exec_count_key *key, bool complete, bool resolved)
{
	if (settings.filters.path_prefix_len) {
		if (key->mnt_ns) /* another namespace's path is no host path: no host prefix takes it */
			return false;
		if ((complete || !resolved) &&
		    !starts_with(key->path, settings.filters.path_prefix, settings.filters.path_prefix_len, EXEC_PATH_SIZE))
			return false;
	}
	if (!complete)
		count_loss(truncated);
	if (settings.by & EXEC_BY_PATH) {
		key->truncated = !complete;
	} else {
		__builtin_memset(key->path, 0, sizeof(key->path));
		key->mnt_ns = 0;
	}
	return true;
}

/* Fills in the fields other than the path and outcome, then counts the key. */
static __always_inline void fill_and_count(struct exec_count_key *key, struct task_struct *task,
					   bool task_btf)
{
	if (settings.by & EXEC_BY_UID)
		key->uid = (__u32)bpf_get_current_uid_gid();
	if (settings.by & EXEC_BY_COMM)
		bpf_get_current_comm(key->comm, sizeof(key->comm));
	if (settings.by & EXEC_BY_PARENT)
		bpf_probe_read_kernel_str(key->parent, sizeof(key->parent),
					  TASK_FIELD(task, task_btf, real_parent)->comm);
	if (settings.by & EXEC_BY_CGROUP)
		key->cgroup = bpf_get_current_cgroup_id();
	if (count_key(key))
		count_loss(dropped);
	if (settings.debug)
		bpf_printk("pyexec: counted %s (outcome %d)", key->path, key->outcome);
}

/* Whether the key or --path-prefix needs the path (settings alone: the verifier
 * prunes what this turns off). */
static __always_inline bool path_wanted(void)
{
	return (settings.by & EXEC_BY_PATH) || settings.filters.path_prefix_len;
}

/* Puts the path in the key (if it or --path-prefix needs one): resolved from
 * file, or else the name given to exec, in kernel or user memory. Then fills in
 * the other fields and counts the key, unless a filter leaves it out. */
static __always_inline void count_exec_key(struct exec_count_key *key, struct task_struct *task,
					   bool task_btf, struct file *file, const char *name,
					   bool user)
{
	bool complete = true;

	if (path_wanted()) {
		if (file) {
			complete = resolve_path(file, key->path);
		} else if (!name || read_name(name, user, key->path, &complete)) {
			count_loss(errors);
			return;
		}
		if (!keep_path(key, complete, file))
			return;
	}
	fill_and_count(key, task, task_btf);
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
	if (settings.key == EXEC_KEY_RESOLVED && path_wanted())
		key.mnt_ns = foreign_mount_namespace(bprm->file, task);
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
