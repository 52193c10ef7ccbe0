// SPDX-License-Identifier: GPL-2.0
/* The floor of any exec counter at sched_process_exec: one atomic add to a
 * global per execution, nothing else. make bench measures pyexec against it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "floor.h"

char LICENSE[] SEC("license") = "GPL";

__u64 executions;

SEC("tp_btf/sched_process_exec")
int BPF_PROG(count_any_exec)
{
	__sync_fetch_and_add(&executions, 1);
	return 0;
}
