/* The floor program's C API, as Python sees it (floor.c, over the floor
 * skeleton). Every int-returning function returns 0 or a negative errno. */
#pragma once
#include "floor.h"
#include "program.h"

struct pyexec_floor;

int pyexec_floor_load(struct pyexec_floor **out);
int pyexec_floor_attach(struct pyexec_floor *floor);
/* Detaches, unloads and frees; NULL is fine. */
void pyexec_floor_destroy(struct pyexec_floor *floor);
/* Executions since it was attached. */
unsigned long long pyexec_floor_executions(const struct pyexec_floor *floor);
/* What the kernel keeps of its runs. */
int pyexec_floor_totals(const struct pyexec_floor *floor, struct pyexec_program_totals *out);
