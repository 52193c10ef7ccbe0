/* What the loaders of pyexec's BPF programs share in C (not seen by cffi):
 * feature probes, pins, the programs behind pinned links, their run time. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <bpf/libbpf.h>
#include "program.h"

/* The most programs one BPF object attaches. */
#define PYEXEC_MAX_PROGRAMS 8

/* Set while a load tries a feature the kernel may lack: its failure is not news. */
extern bool pyexec_log_quiet;
/* Whether libbpf's warnings are all that is shown (no --verbose). */
bool pyexec_log_warnings_only(void);

/* The features of wanted that the running kernel can have, as far as can be
 * told before load (helpers are probed, name loads by a program of their own;
 * kfuncs are found by libbpf at load). */
struct exec_features pyexec_probe_features(struct exec_features wanted);
/* Whether prog calls a kfunc: libbpf resolved a bpf_ksym_exists() to true. */
bool pyexec_calls_kfuncs(const struct bpf_program *prog);

/* dir/name+suffix into path; -ENAMETOOLONG if it does not fit. */
int pyexec_pin_path(char *path, size_t size, const char *dir, const char *name, const char *suffix);
/* Pins the maps under their names and every attached program's link as
 * EXEC_PIN_LINK_PREFIX + its name, under dir (on bpffs). */
int pyexec_pin_object(const struct bpf_object_skeleton *skeleton, const char *dir,
		      struct bpf_map *const *maps, const char *const *names, size_t count);
int pyexec_open_pin(const char *dir, const char *name, int *fd);
/* The fds of the programs behind the links pinned in dir, up to capacity. */
int pyexec_open_pinned_programs(const char *dir, int *fds, unsigned int capacity, unsigned int *count);
/* size bytes at offset of a pinned .rodata map's value. */
int pyexec_read_pinned_rodata(int fd, size_t offset, void *out, size_t size);
int pyexec_map_id(int fd, unsigned int *id);
/* The kernel memory a map takes, in bytes, as its fdinfo says (0 if it cannot be read). */
unsigned long long pyexec_map_memlock(int fd);
/* What the kernel keeps of these programs, summed. */
int pyexec_program_totals(const int *fds, unsigned int count, struct pyexec_program_totals *out);
/* The fds of an object's loaded programs, up to capacity. */
unsigned int pyexec_program_fds(const struct bpf_object *obj, int *fds, unsigned int capacity);
/* The uid_filter map of --uid: filled before attach, read back from a pin. */
int pyexec_fill_uids(int fd, const unsigned int *uids, unsigned int count);
int pyexec_read_uids(int fd, unsigned int *out, unsigned int capacity, unsigned int *found);
