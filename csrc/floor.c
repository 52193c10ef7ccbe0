// SPDX-License-Identifier: BSD-2-Clause
/* The floor program's loader: the smallest program of pyexec's, and the
 * pattern every other loader follows. */
#include <errno.h>
#include <stdlib.h>
#include "floor_api.h"
#include "program_impl.h"
#include "floor.skel.h"

struct pyexec_floor {
	struct floor_bpf *skel;
	int prog_fd;
};

const void *pyexec_floor_object(size_t *size)
{
	return floor_bpf__elf_bytes(size);
}

int pyexec_floor_load(struct pyexec_floor **out)
{
	struct pyexec_floor *floor = calloc(1, sizeof(*floor));
	int err;

	if (!floor)
		return -ENOMEM;
	floor->skel = floor_bpf__open_and_load();
	if (!floor->skel) {
		err = -errno;
		free(floor);
		return err;
	}
	floor->prog_fd = bpf_program__fd(floor->skel->progs.count_any_exec);
	*out = floor;
	return 0;
}

int pyexec_floor_attach(struct pyexec_floor *floor)
{
	return floor_bpf__attach(floor->skel);
}

void pyexec_floor_destroy(struct pyexec_floor *floor)
{
	if (!floor)
		return;
	floor_bpf__destroy(floor->skel);
	free(floor);
}

unsigned long long pyexec_floor_executions(const struct pyexec_floor *floor)
{
	return __atomic_load_n(&floor->skel->bss->executions, __ATOMIC_RELAXED);
}

int pyexec_floor_totals(const struct pyexec_floor *floor, struct pyexec_program_totals *out)
{
	return pyexec_program_totals(&floor->prog_fd, 1, out);
}
