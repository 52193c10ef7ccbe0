// SPDX-License-Identifier: GPL-2.0
/* Counts successful program executions, keyed by the file name given to exec. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "execcount.h"

#define E2BIG_ERR 7
#define EEXIST_ERR 17

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_COUNT_DEFAULT_ENTRIES); /* user space may change it before load */
	__type(key, struct exec_key);
	__type(value, __u64);
} exec_count SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_stats);
} exec_stats SEC(".maps");

/* Counts an execution that could not be counted exactly. Rare: looked up
 * only then, to keep the common path short. */
#define count_loss(field)                                                       \
	do {                                                                    \
		__u32 zero = 0;                                                 \
		struct exec_stats *stats = bpf_map_lookup_elem(&exec_stats, &zero); \
		if (stats)                                                      \
			__sync_fetch_and_add(&stats->field, 1);                 \
	} while (0)

/* Adds one to the count of key, exactly, whichever CPUs race on it. */
static __always_inline long count_key(const struct exec_key *key)
{
	__u64 one = 1, *count;
	long err;

	count = bpf_map_lookup_elem(&exec_count, key);
	if (count) {
		__sync_fetch_and_add(count, 1);
		return 0;
	}
	err = bpf_map_update_elem(&exec_count, key, &one, BPF_NOEXIST);
	if (err != -EEXIST_ERR)
		return err;
	/* Another CPU inserted the key between our lookup and update. */
	count = bpf_map_lookup_elem(&exec_count, key);
	if (!count)
		return -E2BIG_ERR;
	__sync_fetch_and_add(count, 1);
	return 0;
}

/* sched_process_exec fires once per successful execve, execveat or fexecve,
 * after the point of no return, with the name already in kernel memory. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(count_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	const char *filename = bprm->filename;
	struct exec_key key; /* on the stack, which is hot in cache; a map-backed buffer was slower */
	char last;
	long len;

	__builtin_memset(&key, 0, sizeof(key));
	len = bpf_probe_read_kernel_str(key.path, sizeof(key.path), filename);
	if (len <= 0) {
		count_loss(errors);
		return 0;
	}
	/* A full buffer is only a truncation if the name goes on past it. */
	if (len == sizeof(key.path) &&
	    (bpf_probe_read_kernel(&last, 1, filename + sizeof(key.path) - 1) || last))
		count_loss(truncated);
	if (count_key(&key))
		count_loss(dropped);
	return 0;
}
