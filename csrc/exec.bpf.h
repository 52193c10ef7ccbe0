// SPDX-License-Identifier: GPL-2.0
/* What pyexec's BPF programs share: the maps of what they could not record
 * exactly and of the uids to count, and the helpers that read a path, a name
 * and a task's cgroup, and apply the filters. A program includes it after it
 * defines its `settings` (its own struct, with the members `filters` and
 * `allowed` of contract.h), as execcount.bpf.c does. */
#pragma once
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "contract.h"

/* How far the walk up from a file goes: with open-coded iterators (the
 * verifier checks one pass), far enough for any path that fits; in a bounded
 * loop, which older verifiers check level by level, 64 levels, the components
 * nearest the file: a deeper path is cut. */
#define WALK_MAX_STEPS (EXEC_PATH_SIZE + 64) /* a component is 2 bytes or more; and the mounts */
#define WALK_BOUNDED_STEPS 64

/* A path is built in a per-CPU buffer as its record: struct exec_path_header,
 * then the path. A resolved path is built backwards, its NUL at PATH_END; a
 * name given to exec is copied forwards from PATH_HEADER. */
#define PATH_HEADER 8
#define PATH_END (PATH_HEADER + EXEC_PATH_SIZE - 1)
#define RECORD_MASK (EXEC_PATH_SIZE - 1) /* a record starts at or before PATH_END - PATH_HEADER */
#define BUFFER_MASK (2 * EXEC_PATH_SIZE - 1)

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct exec_losses);
} exec_losses SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, EXEC_UID_FILTER_SIZE);
	__type(key, __u32);
	__type(value, __u8);
} uid_filter SEC(".maps");

/* Where a path's record is assembled. Larger than a record by far, so the
 * verifier sees every access stays inside whatever it knows of the offsets
 * (masked by BUFFER_MASK, a name or a record past that). Per-CPU is safe:
 * tracepoints run with preemption disabled. */
struct path_buffer {
	char bytes[2 * EXEC_PATH_SIZE + EXEC_PATH_RECORD_MAX];
	/* Where the path built so far starts. Kept here rather than in a register
	 * so the verifier sees any value, and one pass of the walk covers all. */
	__u32 pos;
	__u32 length; /* of the path, once read */
	__u32 at;     /* how far a loop over the record has got: as pos, any value to the verifier */
	/* A copy of the record another execution stored under the same id; room
	 * for STORED_MASK + 1 words, so a masked index is always inside. */
	__u64 stored[1024];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct path_buffer);
} path_buffers SEC(".maps");

/* Counts an execution that could not be counted exactly. Rare: looked up
 * only then, to keep the common path short. */
#define count_losses(field, n)                                                  \
	do {                                                                    \
		__u32 zero = 0;                                                 \
		struct exec_losses *losses = bpf_map_lookup_elem(&exec_losses, &zero); \
		if (losses)                                                     \
			__sync_fetch_and_add(&losses->field, n);                 \
	} while (0)
#define count_loss(field) count_losses(field, 1)

/* Moves the start of the path being built back by "/" and len bytes, and
 * writes the '/'. Returns where the name's len bytes go, or -1 if they do
 * not fit (the header stays in front of the path). */
static __always_inline long make_room(struct path_buffer *buf, __u32 len)
{
	__u32 pos = buf->pos;

	if (len + 1 > pos - PATH_HEADER || pos > PATH_END)
		return -1;
	pos -= len + 1;
	buf->bytes[pos & BUFFER_MASK] = '/';
	buf->pos = pos;
	return pos + 1;
}

/* Names this short are copied byte by byte with plain loads, which costs
 * less than a helper call; longer ones through bpf_probe_read_kernel. */
#define SHORT_NAME 32

/* Copies a name that lives in the dentry itself (d_shortname, since 6.14) by
 * plain loads; false if name is not that one. A function of its own, called
 * only where the field exists: inlined, clang hoisted the field's address above
 * that check, where an older kernel's relocation of it fails. */
static __noinline bool copy_short_name(struct path_buffer *buf, long at, struct dentry *dentry,
				       const unsigned char *name, __u32 len)
{
	if (name != (const unsigned char *)&dentry->d_shortname)
		return false;
	for (int i = 0; i < SHORT_NAME; i++) {
		if (i >= len)
			break;
		buf->bytes[(at + i) & BUFFER_MASK] = dentry->d_shortname.string[i];
	}
	return true;
}

/* Puts "/name" in front of the path being built; false if it does not fit. */
static __always_inline bool prepend_name(struct path_buffer *buf, struct dentry *dentry)
{
	const unsigned char *name = dentry->d_name.name;
	__u32 len = dentry->d_name.len;
	long at = make_room(buf, len);

	if (at < 0)
		return false;
	if (!(bpf_core_field_exists(dentry->d_shortname) && len < SHORT_NAME &&
	      copy_short_name(buf, at, dentry, name, len)))
		bpf_probe_read_kernel(&buf->bytes[at & BUFFER_MASK], len & EXEC_NAME_MAX, name);
	return true;
}

static __always_inline struct mount *mount_of(struct vfsmount *vfsmnt)
{
	return (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
}

/* The host's mount namespace (its inode number): init_task's, found once by
 * following the parents up from any task (pid 0 is init_task). */
static __u32 host_mnt_ns;

#define ANCESTRY_MAX_DEPTH 64

static __always_inline __u32 host_mount_namespace(struct task_struct *task)
{
	if (host_mnt_ns)
		return host_mnt_ns;
	for (int depth = 0; depth < ANCESTRY_MAX_DEPTH; depth++) {
		if (BPF_CORE_READ(task, pid) == 0) {
			host_mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
			return host_mnt_ns;
		}
		task = BPF_CORE_READ(task, real_parent);
	}
	return 0; /* not found: no file is marked as another namespace's */
}

/* 0 if file's mount is in the host's mount namespace (or in none: a memfd's,
 * a pipe's); else the inode number of the namespace it is in. A path walked
 * there is that namespace's view: a bind mount in a user's own namespace can
 * put any file at /usr/bin/true. */
static __always_inline __u32 foreign_mount_namespace(struct file *file, struct task_struct *task)
{
	__u32 ns = BPF_CORE_READ(mount_of(file->f_path.mnt), mnt_ns, ns.inum);
	__u32 host = host_mount_namespace(task);

	return ns && host && ns != host ? ns : 0;
}

/* The walk up from dentry, by plain loads inside an open-coded iterator
 * (Linux 6.4): the verifier checks one pass, not every depth. Returns
 * whether it reached the root. */
static __always_inline bool walk_by_loads(struct path_buffer *buf, struct dentry *dentry,
					  struct vfsmount *vfsmnt)
{
	struct mount *mnt = bpf_core_cast(mount_of(vfsmnt), struct mount), *mnt_parent;
	struct dentry *parent;
	bool reached = false;

	bpf_repeat(WALK_MAX_STEPS) {
		parent = dentry->d_parent;
		if (dentry == vfsmnt->mnt_root) {
			mnt_parent = mnt->mnt_parent;
			if (mnt_parent == mnt) { /* the root of the mount tree */
				reached = true;
				break;
			}
			dentry = mnt->mnt_mountpoint; /* go on in the mount above */
			mnt = bpf_core_cast(mnt_parent, struct mount);
			vfsmnt = &mnt->mnt;
			continue;
		}
		if (!prepend_name(buf, dentry))
			break;
		if (dentry == parent) { /* a root of its own, such as a memfd's */
			reached = true;
			break;
		}
		dentry = parent;
	}
	/* A value of its own: clang would otherwise fold it with a register that
	 * holds a pointer on some paths, which the verifier refuses. */
	barrier_var(reached);
	return reached;
}

/* The same walk for kernels without iterators or bpf_rdonly_cast: each
 * pointer read with bpf_probe_read_kernel, in a bounded loop that older
 * verifiers check depth by depth (all values are scalars, so cheaply). */
static __always_inline bool walk_by_reads(struct path_buffer *buf, struct dentry *dentry,
					  struct vfsmount *vfsmnt)
{
	struct mount *mnt = mount_of(vfsmnt), *mnt_parent;
	struct dentry *parent, *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
	struct qstr name;
	long at;

	for (int depth = 0; depth < WALK_BOUNDED_STEPS; depth++) {
		parent = BPF_CORE_READ(dentry, d_parent);
		if (dentry == mnt_root) {
			mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
			if (mnt_parent == mnt)
				return true;
			dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
			mnt = mnt_parent;
			mnt_root = BPF_CORE_READ(mnt, mnt.mnt_root);
			continue;
		}
		bpf_core_read(&name, sizeof(name), &dentry->d_name);
		at = make_room(buf, name.len);
		if (at < 0)
			return false;
		bpf_probe_read_kernel(&buf->bytes[at & BUFFER_MASK], name.len & EXEC_NAME_MAX, name.name);
		if (dentry == parent)
			return true;
		dentry = parent;
	}
	return false;
}

/* Where the walk in bpf_loop has got to: each pointer as a number, read with
 * bpf_probe_read_kernel, as on kernels without iterators. */
struct walk_state {
	struct path_buffer *buf;
	struct dentry *dentry, *mnt_root;
	struct mount *mnt;
	bool reached; /* the root: the path is whole */
};

/* One step of the walk in bpf_loop: 0 to go on, 1 when done. */
static long walk_step(__u32 index, struct walk_state *state)
{
	struct dentry *dentry = state->dentry, *parent = BPF_CORE_READ(dentry, d_parent);
	struct mount *mnt = state->mnt, *mnt_parent;
	struct qstr name;
	long at;

	if (dentry == state->mnt_root) {
		mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		if (mnt_parent == mnt) {
			state->reached = true;
			return 1;
		}
		state->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		state->mnt = mnt_parent;
		state->mnt_root = BPF_CORE_READ(mnt_parent, mnt.mnt_root);
		return 0;
	}
	bpf_core_read(&name, sizeof(name), &dentry->d_name);
	at = make_room(state->buf, name.len);
	if (at < 0)
		return 1;
	bpf_probe_read_kernel(&state->buf->bytes[at & BUFFER_MASK], name.len & EXEC_NAME_MAX, name.name);
	if (dentry == parent) {
		state->reached = true;
		return 1;
	}
	state->dentry = parent;
	return 0;
}

/* The walk for kernels with bpf_loop (Linux 5.17) but no iterators: as deep
 * as with iterators, the verifier checking one step. */
static __always_inline bool walk_in_loop(struct path_buffer *buf, struct dentry *dentry, struct vfsmount *vfsmnt)
{
	struct walk_state state = {
		.buf = buf, .dentry = dentry, .mnt = mount_of(vfsmnt), .mnt_root = BPF_CORE_READ(vfsmnt, mnt_root),
	};

	bpf_loop(WALK_MAX_STEPS, walk_step, &state, 0);
	return state.reached;
}

/* Builds the path of file in buf as /proc/PID/exe shows it from the host's
 * root: symlinks and mounts resolved, " (deleted)" after an unlinked file.
 * Returns false if it had to be cut (the components nearest the file are kept).
 * loops: whether the program may call bpf_loop (see LOOPS). */
static __always_inline bool resolve_path(struct path_buffer *buf, struct file *file, bool loops)
{
	struct dentry *dentry = file->f_path.dentry;
	struct vfsmount *vfsmnt = file->f_path.mnt;
	bool complete;

	buf->bytes[PATH_END] = '\0';
	buf->pos = PATH_END;
	/* A file no longer in the tree (unlinked, or never linked like a memfd). */
	if (!dentry->d_hash.pprev && (dentry->d_parent != dentry || dentry != vfsmnt->mnt_root)) {
		buf->pos = PATH_END - (sizeof(" (deleted)") - 1);
		__builtin_memcpy(&buf->bytes[PATH_END - (sizeof(" (deleted)") - 1)], " (deleted)",
				 sizeof(" (deleted)") - 1);
	}
	if (settings.allowed.iterators && bpf_ksym_exists(bpf_iter_num_new))
		complete = walk_by_loads(buf, dentry, vfsmnt);
	else if (loops)
		complete = walk_in_loop(buf, dentry, vfsmnt);
	else
		complete = walk_by_reads(buf, dentry, vfsmnt);
	if (buf->pos == PATH_END) /* the root itself */
		buf->bytes[--buf->pos] = '/';
	buf->length = PATH_END - buf->pos;
	return complete;
}

/* Writes the record's header in front of the path read into buf; returns
 * where the record starts. */
static __always_inline __u32 seal_record(struct path_buffer *buf, bool complete, __u32 mnt_ns)
{
	struct exec_path_header header = {.length = buf->length, .truncated = !complete, .mnt_ns = mnt_ns};
	__u32 start = (buf->pos - PATH_HEADER) & RECORD_MASK;

	__builtin_memcpy(&buf->bytes[start], &header, sizeof(header));
	return start;
}

/* Whether the loops over a record may be open-coded iterators (Linux 6.4),
 * which the verifier checks in one pass, rather than bounded loops. */
#define ITERATORS (settings.allowed.iterators && bpf_ksym_exists(bpf_iter_num_new))
/* The other way the verifier checks such a loop in one pass is bpf_loop (Linux
 * 5.17). A kernel before 5.13 refuses a program that so much as names its
 * callback, even where it is never called: so each program that may is built
 * twice, with loops a constant true and false (the _bounded copy), and the
 * loader loads the copy the kernel takes. */

/* word, or its first rest bytes alone (the last of a record). */
static __always_inline __u64 first_bytes(__u64 word, __u32 rest)
{
	return rest < 8 ? word & ((1ULL << ((rest & 7) * 8)) - 1) : word;
}

/* The word of the record at byte at, or its last bytes (rest of them) alone. */
static __always_inline __u64 record_word(const struct path_buffer *buf, __u32 start, __u32 at, __u32 rest)
{
	return first_bytes(*(const __u64 *)&buf->bytes[(start + at) & BUFFER_MASK], rest);
}

/* SipHash (Aumasson and Bernstein), its 128-bit output, with 2 rounds per word
 * and 4 to finish: a keyed hash, which nobody who lacks the key can aim a
 * collision at. */
struct sip {
	__u64 v0, v1, v2, v3;
};

#define SIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))

static __always_inline void sip_round(struct sip *s)
{
	s->v0 += s->v1; s->v1 = SIP_ROTL(s->v1, 13); s->v1 ^= s->v0; s->v0 = SIP_ROTL(s->v0, 32);
	s->v2 += s->v3; s->v3 = SIP_ROTL(s->v3, 16); s->v3 ^= s->v2;
	s->v0 += s->v3; s->v3 = SIP_ROTL(s->v3, 21); s->v3 ^= s->v0;
	s->v2 += s->v1; s->v1 = SIP_ROTL(s->v1, 17); s->v1 ^= s->v2; s->v2 = SIP_ROTL(s->v2, 32);
}

static __always_inline void sip_word(struct sip *s, __u64 m)
{
	s->v3 ^= m;
	sip_round(s);
	sip_round(s);
	s->v0 ^= m;
}

/* A loop over the words of a record in buf, one step at a time, from buf->at
 * on: in an open-coded iterator (Linux 6.4) or bpf_loop (5.17), which the
 * verifier checks in one pass, or else a bounded loop. How far it has got is
 * kept in buf->at, where the verifier sees any value. */
struct record_loop {
	struct path_buffer *buf;
	__u32 start, size;
	struct sip sip;  /* path_id_of's hash */
	bool differ;     /* same_record's answer */
};

#define RECORD_WORDS (EXEC_PATH_RECORD_MAX / 8 + 1) /* with the last, partial one */
#define STORED_MASK 1023

#define EACH_RECORD_WORD(step, state, loops)                                           \
	do {                                                                           \
		if (ITERATORS) {                                                       \
			bpf_repeat(RECORD_WORDS)                                       \
				if (step(0, state))                                     \
					break;                                         \
		} else if (loops) {                                                    \
			bpf_loop(RECORD_WORDS, step, state, 0);                          \
		} else {                                                               \
			for (int i = 0; i < RECORD_WORDS; i++)                         \
				if (step(i, state))                                     \
					break;                                         \
		}                                                                      \
	} while (0)

/* Hashes the next whole word of the record; 1 when none is left. */
static long hash_step(__u32 index, struct record_loop *loop)
{
	struct path_buffer *buf = loop->buf;
	__u32 at = buf->at;

	if (at + 8 > loop->size)
		return 1;
	sip_word(&loop->sip, record_word(buf, loop->start, at, 8));
	buf->at = at + 8;
	return 0;
}

/* The id of the record of size bytes at start in buf. */
static __always_inline void path_id_of(struct path_buffer *buf, __u32 start, __u32 size, struct exec_path_id *id,
				       bool loops)
{
	struct record_loop loop = {.buf = buf, .start = start, .size = size, .sip = {
		settings.secret[0] ^ 0x736f6d6570736575ULL, settings.secret[1] ^ 0x646f72616e646f6dULL ^ 0xee,
		settings.secret[0] ^ 0x6c7967656e657261ULL, settings.secret[1] ^ 0x7465646279746573ULL,
	}};
	struct sip *s = &loop.sip;
	__u32 at;

	/* In one loop the verifier checks once: a first few words unrolled would
	 * save a kfunc call each, but make it check what follows once for each
	 * way out of them (2.5x the instructions, 12 ms more at each load here). */
	buf->at = 0;
	EACH_RECORD_WORD(hash_step, &loop, loops);
	at = buf->at;
	sip_word(s, (size > at ? record_word(buf, start, at, size - at) : 0) | (__u64)size << 56);
	s->v2 ^= 0xee;
	for (int i = 0; i < 4; i++)
		sip_round(s);
	id->hash[0] = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
	s->v1 ^= 0xdd;
	for (int i = 0; i < 4; i++)
		sip_round(s);
	id->hash[1] = s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/* Compares the next whole word of the record with buf->stored's; 1 when none
 * is left, or they differ. */
static long compare_step(__u32 index, struct record_loop *loop)
{
	struct path_buffer *buf = loop->buf;
	__u32 at = buf->at, word = at / 8;

	if (at + 8 > loop->size || word >= EXEC_PATH_RECORD_MAX / 8)
		return 1;
	barrier_var(word); /* so clang keeps the mask, which the verifier needs */
	if (record_word(buf, loop->start, at, 8) != buf->stored[word & STORED_MASK]) {
		loop->differ = true;
		return 1;
	}
	buf->at = at + 8;
	return 0;
}

/* Whether buf->stored, copied from a map, holds the record of size bytes at
 * start in buf. */
static __always_inline bool same_record(struct path_buffer *buf, __u32 start, __u32 size, bool loops)
{
	struct record_loop loop = {.buf = buf, .start = start, .size = size};
	__u32 at, word;

	buf->at = 0;
	EACH_RECORD_WORD(compare_step, &loop, loops);
	if (loop.differ)
		return false;
	at = buf->at;
	word = at / 8;
	if (at >= size || word >= EXEC_PATH_RECORD_MAX / 8)
		return true;
	barrier_var(word);
	return record_word(buf, start, at, size - at) == first_bytes(buf->stored[word & STORED_MASK], size - at);
}

/* Whether s starts with the first len bytes of prefix, or with all of it up
 * to its NUL. A loop rather than bpf_strncmp (5.17): len is a .rodata
 * constant, so the verifier follows at most len steps. */
static __always_inline bool starts_with(const char *s, const volatile char *prefix, __u32 len,
					__u32 size)
{
	for (__u32 i = 0; i < size; i++) {
		if (i >= len)
			break;
		if (s[i] != prefix[i])
			return false;
		if (!prefix[i])
			break;
	}
	return true;
}

/* A task's field: by a plain load where the task is BTF-typed (task_btf), else
 * by bpf_probe_read_kernel, as for a task from bpf_get_current_task (5.10). */
#define TASK_FIELD(task, task_btf, field) ((task_btf) ? (task)->field : BPF_CORE_READ(task, field))

/* The NUL bytes of a word loaded from a string, each marked by its top bit
 * (0x80): the lowest mark is the first NUL's (the first byte is the lowest, on
 * a little-endian machine); marks above it may be false, which does not matter. */
static __always_inline __u64 nul_marks(__u64 word)
{
	return (word - 0x0101010101010101ULL) & ~word & 0x8080808080808080ULL;
}

/* The bytes of word below its first NUL (nuls: nul_marks(word), not 0), the
 * rest cleared. */
static __always_inline __u64 before_nul(__u64 word, __u64 nuls)
{
	return word & (((nuls & -nuls) >> 7) - 1);
}

/* The index of the lowest byte marked in nuls (0x80 in it), 0 to 7. */
static __always_inline __u32 first_marked_byte(__u64 nuls)
{
	__u64 lowest = nuls & -nuls;

	return (lowest > 0x80ULL) + (lowest > 0x8000ULL) + (lowest > 0x800000ULL) + (lowest > 0x80000000ULL) +
	       (lowest > 0x8000000000ULL) + (lowest > 0x800000000000ULL) + (lowest > 0x80000000000000ULL);
}

/* Copies a kernel string into buf a word at a time with plain loads
 * (name_loads). Sets *complete as read_name does. Returns false when it cannot
 * tell where the string ends: its NUL is the first byte of a word, which is
 * also what a load that faults looks like, since it reads 0. */
static __always_inline bool load_name(const char *name, struct path_buffer *buf, bool *complete)
{
	__u64 word, nuls;

	if (__BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__) /* the first byte must be the lowest */
		return false;
	for (int i = 0; i < EXEC_PATH_SIZE / 8; i++) {
		word = *(const __u64 *)(name + i * 8);
		nuls = nul_marks(word);
		if (nuls & 0x80)
			return false;
		if (nuls) { /* keep the bytes below the NUL: the rest may be anything */
			*(__u64 *)&buf->bytes[PATH_HEADER + i * 8] = before_nul(word, nuls);
			buf->length = i * 8 + first_marked_byte(nuls);
			*complete = true;
			return true;
		}
		*(__u64 *)&buf->bytes[PATH_HEADER + i * 8] = word;
	}
	buf->bytes[PATH_END] = '\0';
	buf->length = EXEC_PATH_SIZE - 1;
	*complete = false;
	return true;
}

/* Copies a file name as given to exec into buf, from kernel memory or, for a
 * call's own argument, user memory, and sets *complete to false if it had to
 * be cut. Returns 0, or the helper's error if the name could not be read. */
static __always_inline long read_name(const char *filename, bool user, struct path_buffer *buf, bool *complete)
{
	const char *past = filename + EXEC_PATH_SIZE - 1;
	char last;
	long len;

	buf->pos = PATH_HEADER;
	if (!user && settings.allowed.name_loads && load_name(filename, buf, complete))
		return 0;
	/* Linux 5.8 to 6.1 write a NUL one byte before the destination when the
	 * read fails: there, the header, written after. */
	len = user ? bpf_probe_read_user_str(&buf->bytes[PATH_HEADER], EXEC_PATH_SIZE, filename)
		   : bpf_probe_read_kernel_str(&buf->bytes[PATH_HEADER], EXEC_PATH_SIZE, filename);
	if (len <= 0)
		return len < 0 ? len : -1;
	buf->length = (len - 1) & RECORD_MASK;
	/* A full buffer is only a truncation if the name goes on past it. */
	*complete = len != EXEC_PATH_SIZE ||
		    (!(user ? bpf_probe_read_user(&last, 1, past) : bpf_probe_read_kernel(&last, 1, past)) &&
		     !last);
	return 0;
}

/* struct cgroup before Linux 6.1, which kept its ancestors' ids. */
struct cgroup___ancestor_ids {
	__u64 ancestor_ids[0];
} __attribute__((preserve_access_index));

/* The id of the task's cgroup v2 ancestor at level (0: the root), or 0 if
 * its cgroup is not that deep: bpf_get_current_ancestor_cgroup_id, or the
 * same read from the task's cgroup where tracing programs lack the helper. */
static __always_inline __u64 ancestor_cgroup_id(struct task_struct *task, __u32 level)
{
	struct cgroup *cgroup;

	if (settings.allowed.ancestor_cgroup)
		return bpf_get_current_ancestor_cgroup_id(level);
	cgroup = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	if (BPF_CORE_READ(cgroup, level) < level)
		return 0;
	if (bpf_core_field_exists(((struct cgroup___ancestor_ids *)cgroup)->ancestor_ids))
		return BPF_CORE_READ((struct cgroup___ancestor_ids *)cgroup, ancestor_ids[level]);
	return BPF_CORE_READ(cgroup, ancestors[level], kn, id);
}

/* The filters that need no path, for the current task. */
static __always_inline bool wanted(struct task_struct *task, bool task_btf)
{
	char comm[EXEC_COMM_SIZE];
	struct task_struct *parent;
	__u32 uid;

	if (settings.filters.exclude_tgid) {
		parent = TASK_FIELD(task, task_btf, real_parent);
		if ((task_btf ? task->tgid : bpf_get_current_pid_tgid() >> 32) == settings.filters.exclude_tgid ||
		    TASK_FIELD(parent, task_btf, tgid) == settings.filters.exclude_tgid)
			return false;
	}
	if (settings.filters.uid_count) {
		uid = (__u32)bpf_get_current_uid_gid();
		if (!bpf_map_lookup_elem(&uid_filter, &uid))
			return false;
	}
	if (settings.filters.cgroup && ancestor_cgroup_id(task, settings.filters.cgroup_level) != settings.filters.cgroup)
		return false;
	if (settings.filters.comm[0]) {
		bpf_get_current_comm(comm, sizeof(comm));
		/* Equal up to settings.filters.comm's NUL: the same name (comm's bytes after
		 * its NUL are left as they were by some kernels). */
		if (!starts_with(comm, settings.filters.comm, sizeof(comm), sizeof(comm)))
			return false;
	}
	return true;
}
