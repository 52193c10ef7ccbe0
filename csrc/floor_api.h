/* The floor program's C API, as Python sees it (floor.c, over the floor
 * skeleton). Every int-returning function returns 0 or a negative errno. */
#pragma once
#include "floor.h"

struct pyexec_floor;

int pyexec_floor_load(struct pyexec_floor **out);
int pyexec_floor_attach(struct pyexec_floor *floor);
/* Detaches, unloads and frees; NULL is fine. */
void pyexec_floor_destroy(struct pyexec_floor *floor);
/* Executions since it was attached. */
unsigned long long pyexec_floor_executions(const struct pyexec_floor *floor);
/* Its run time and run count (both 0 unless kernel.bpf_stats_enabled is 1). */
int pyexec_floor_run_time(const struct pyexec_floor *floor, unsigned long long *run_time_ns,
			  unsigned long long *run_count);
