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

/* The file cache: each CPU's slots (struct exec_file_slot). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EXEC_FILE_SLOTS);
	__type(key, __u32);
	__type(value, struct exec_file_slot);
} exec_files SEC(".maps");

/* The key cache: each CPU's slots (struct exec_key_slot); the loader leaves
 * it one slot where the key is the path alone. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, EXEC_KEY_SLOTS);
	__type(key, __u32);
	__type(value, struct exec_key_slot);
} exec_keys SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} exec_slot_flushes SEC(".maps");

/* Bumped by each rename and mount syscall as it ends: a path found before may
 * have changed since (one found while it ran read the epoch before, so it too
 * is looked at again). */
static __u64 rename_epoch;
/* Set by the loader where the slots are used, and cleared where those
 * syscalls cannot be watched (no tracefs), or their links cannot be pinned
 * (Linux 5.15): then every execution walks. In .bss beside the epoch, which
 * every execution reads too: one cache line for both. */
volatile bool files_cached;

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
static __always_inline int keep_record(const struct exec_count_key *key, const struct record *record, __u32 uid,
				       bool loops)
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
	/* Compared where the loop is checked once: in a bounded loop, the
	 * comparison would take the verifier past its limit on old kernels, which
	 * then cannot notice a collision (one chance in 2^128 for two paths). */
	if (!loops && !ITERATORS)
		return 0;
	return same_record(record->buf, record->start, record->size, loops) ? 0 : -EEXIST_ERR;
}

/* Adds n to the count of key, exactly, whichever CPUs race on it; on its
 * first execution, keeps its path's record (if it has one) first. Returns 0,
 * -E2BIG if a map was full, or -EEXIST if another path has the key's path id. */
static __always_inline int count_key(const struct exec_count_key *key, const struct record *record, __u64 n,
				     bool loops)
{
	__u64 *count;
	__u32 uid;
	/* An int: older kernels (5.10 here) call the map's own update, which
	 * returns an int, so the register's upper half is not its sign: as a
	 * long, -EEXIST read 0xffffffef, and a lost race counted as dropped. */
	int err;

	count = bpf_map_lookup_elem(&exec_count, key);
	if (count) {
		__sync_fetch_and_add(count, n);
		return 0;
	}
	/* A few CPUs racing here may overshoot the share by one each: harmless. */
	uid = (__u32)bpf_get_current_uid_gid();
	if (uid && user_keys >= settings.max_entries - settings.root_reserve)
		return -E2BIG_ERR;
	if (record) {
		err = keep_record(key, record, uid, loops);
		if (err)
			return err;
	}
	err = bpf_map_update_elem(&exec_count, key, &n, BPF_NOEXIST);
	if (!err && uid)
		__sync_fetch_and_add(&user_keys, 1);
	if (err != -EEXIST_ERR)
		return err;
	/* Another CPU inserted the key between our lookup and update. */
	count = bpf_map_lookup_elem(&exec_count, key);
	if (!count)
		return -E2BIG_ERR;
	__sync_fetch_and_add(count, n);
	return 0;
}

/* Counts n executions of key, or what kept them from being counted; true if counted. */
static __always_inline bool count_or_lose(const struct exec_count_key *key, const struct record *record, __u64 n,
					  bool loops)
{
	int err = count_key(key, record, n, loops);

	if (err == -EEXIST_ERR)
		count_losses(collisions, n);
	else if (err)
		count_losses(dropped, n);
	return !err;
}

/* Whether the slots (struct exec_file_slot) are files': --key resolved. */
static __always_inline bool file_cache_used(void)
{
	return EXEC_FILE_SLOTS_USED(&settings);
}

/* Mixes word into hash, cheaply: where a direct-mapped cache's slot is chosen,
 * the comparison after it is exact. */
static __always_inline __u64 slot_mix(__u64 hash, __u64 word)
{
	return (hash ^ word) * 0x9E3779B97F4A7C15ULL;
}

/* What a file's slot did for its execution. */
enum slot_found {
	SLOT_MISSED,  /* another file's, or stale: the path is walked */
	SLOT_COUNTED, /* counted there (or left out) */
	SLOT_NAMED,   /* gave its path's id (in file_identity), for a key of more fields */
};

/* A slot of exec_files, and what the file executed now would have in it. */
struct file_identity {
	__u32 slot; /* its index: looked up where needed, for the verifier carries no pointer that may be NULL */
	struct dentry *dentry, *parent_mountpoint;
	struct vfsmount *vfsmnt;
	struct inode *inode;
	struct mount *mnt_parent;
	__u64 name;
	__u64 epoch;
	bool unlinked;
	struct exec_path_id path; /* SLOT_NAMED: the slot's */
};

/* Reads what tells file from any other that may take its place: its dentry and
 * mount, the dentry's name (its hash, salted with the parent dentry) and inode,
 * whether it is unlinked, and where its mount is mounted; and finds its slot. */
static __always_inline void identify(struct file *file, __u64 epoch, struct file_identity *id)
{
	struct mount *mnt;

	id->dentry = file->f_path.dentry;
	id->vfsmnt = file->f_path.mnt;
	id->inode = id->dentry->d_inode;
	/* hash and len, not hash_len: Linux 5.10's verifier takes the union's
	 * first member, 4 bytes, for the whole. */
	id->name = (__u64)id->dentry->d_name.len << 32 | id->dentry->d_name.hash;
	id->unlinked = !id->dentry->d_hash.pprev;
	if (ITERATORS) { /* bpf_rdonly_cast, as the walk by loads */
		mnt = bpf_core_cast(mount_of(id->vfsmnt), struct mount);
		id->mnt_parent = mnt->mnt_parent;
		id->parent_mountpoint = mnt->mnt_mountpoint;
	} else {
		mnt = mount_of(id->vfsmnt);
		id->mnt_parent = BPF_CORE_READ(mnt, mnt_parent);
		id->parent_mountpoint = BPF_CORE_READ(mnt, mnt_mountpoint);
	}
	id->epoch = epoch;
	id->slot = (__u32)(slot_mix(0, id->name) >> 32) & (EXEC_FILE_SLOTS - 1);
}

/* Counts an execution of a file this CPU has seen, in its slot, or where the
 * key holds more than the path, gives its path's id; misses if the slot is
 * another file's, or its path may have changed since (a rename or a mount
 * anywhere): then the path is walked again. */
static __always_inline enum slot_found count_in_slot(struct file_identity *id)
{
	struct exec_file_slot *slot = bpf_map_lookup_elem(&exec_files, &id->slot);

	if (!slot || !files_cached || slot->epoch != id->epoch || slot->dentry != (__u64)id->dentry ||
	    slot->mnt != (__u64)id->vfsmnt || slot->inode != (__u64)id->inode || slot->name != id->name ||
	    slot->mnt_parent != (__u64)id->mnt_parent || slot->mountpoint != (__u64)id->parent_mountpoint ||
	    !(slot->flags & EXEC_FILE_UNLINKED) != !id->unlinked)
		return SLOT_MISSED;
	if (slot->flags & EXEC_FILE_LEFT_OUT)
		return SLOT_COUNTED;
	if (slot->flags & EXEC_FILE_TRUNCATED)
		count_loss(truncated);
	if (!EXEC_SLOTS_COUNT(&settings)) {
		id->path = slot->path;
		return SLOT_NAMED;
	}
	slot->count++; /* the slot is this CPU's, and the program runs to its end on it */
	return SLOT_COUNTED;
}

/* Word i of the short name read into buf, its bytes past the name's end 0. */
static __always_inline __u64 short_name_word(const struct path_buffer *buf, int i, __u32 length)
{
	return first_bytes(*(const __u64 *)&buf->bytes[PATH_HEADER + i * 8], length - i * 8);
}

/* The slot of the short name read into buf: a cheap hash, for the comparison
 * after it is exact (whoever aims names at one slot gains misses, no count). */
static __always_inline __u32 short_name_slot(const struct path_buffer *buf, __u32 length)
{
	__u64 hash = length;

	for (int i = 0; i < EXEC_SLOT_NAME_WORDS; i++) {
		if (i * 8 >= length)
			break;
		hash = slot_mix(hash, short_name_word(buf, i, length));
	}
	return (__u32)(hash >> 32) & (EXEC_FILE_SLOTS - 1);
}

/* Counts an execution of a short name this CPU has seen (--key invoked) in
 * its slot, where the name itself is kept: neither a keyed hash nor a lookup
 * in exec_count. False if the slot is another's, which id then names. */
static __always_inline bool count_in_short_name_slot(struct file_identity *id, const struct path_buffer *buf)
{
	__u32 length = buf->length;
	struct exec_file_slot *slot;

	id->slot = short_name_slot(buf, length);
	slot = bpf_map_lookup_elem(&exec_files, &id->slot);
	if (!slot || !files_cached || !(slot->flags & EXEC_FILE_SHORT_NAME) || slot->name_length != length)
		return false;
	for (int i = 0; i < EXEC_SLOT_NAME_WORDS; i++) {
		if (i * 8 >= length)
			break;
		if (slot->name_words[i] != short_name_word(buf, i, length))
			return false;
	}
	slot->count++;
	return true;
}

/* Counts an execution of a longer name this CPU has seen (--key invoked), in the
 * slot of its path id; false if the slot is another's, which id then names. */
static __always_inline bool count_in_named_slot(struct file_identity *id, const struct exec_count_key *key)
{
	struct exec_file_slot *slot;

	id->slot = (__u32)key->path.hash[0] & (EXEC_FILE_SLOTS - 1);
	slot = bpf_map_lookup_elem(&exec_files, &id->slot);
	if (!slot || !files_cached || slot->path.hash[0] != key->path.hash[0] ||
	    slot->path.hash[1] != key->path.hash[1])
		return false;
	slot->count++; /* its truncation, if cut, is counted already, as the name is read at each execution */
	return true;
}

/* Finds the file's slot and counts the execution there if it can. A function
 * of its own: each way it can fail leaves the verifier knowing something else,
 * and inlined, the walk after it would be checked once for each. */
static __noinline enum slot_found count_if_cached(struct file *file, __u64 epoch, struct file_identity *id)
{
	identify(file, epoch, id);
	return count_in_slot(id);
}

/* Moves what a slot (of either cache) counted of key to exec_count, where a
 * reader sees it with the rest; between the two, this CPU's exec_slot_flushes
 * is odd. */
static __always_inline void flush_count(const struct exec_count_key *key, __u64 *count)
{
	__u32 zero = 0;
	__u64 *flushes;

	if (!*count)
		return;
	flushes = bpf_map_lookup_elem(&exec_slot_flushes, &zero);
	if (flushes)
		__sync_fetch_and_add(flushes, 1);
	/* The key is there: the slot's first execution put it there. */
	count_or_lose(key, NULL, *count, false);
	*count = 0;
	if (flushes)
		__sync_fetch_and_add(flushes, 1);
}

static __always_inline void flush_slot(struct exec_file_slot *slot)
{
	struct exec_count_key key = {.path = slot->path};

	flush_count(&key, &slot->count);
}

#define KEY_WORDS (sizeof(struct exec_count_key) / sizeof(__u64))

/* The key's slot in the key cache (the path id in it is keyed with the secret). */
static __always_inline __u32 key_slot_of(const struct exec_count_key *key)
{
	const __u64 *words = (const __u64 *)key;
	__u64 hash = 0;

	for (int i = 0; i < KEY_WORDS; i++)
		hash = slot_mix(hash, words[i]);
	return (__u32)(hash >> 32) & (EXEC_KEY_SLOTS - 1);
}

/* Counts an execution of a key of more than the path (--by) in this CPU's
 * slot of it; else in exec_count (which keeps its path's record, and holds the
 * key from then on, for the slot's count to go to), then takes the slot. */
static __always_inline bool count_in_key_slot(const struct exec_count_key *key, const struct record *record,
					      bool loops)
{
	const __u64 *words = (const __u64 *)key;
	__u32 index = key_slot_of(key);
	struct exec_key_slot *slot = bpf_map_lookup_elem(&exec_keys, &index);
	bool same = !!slot;

	for (int i = 0; i < KEY_WORDS && same; i++)
		same = ((const __u64 *)&slot->key)[i] == words[i];
	if (same) {
		slot->count++; /* the slot is this CPU's, and the program runs to its end on it */
		return true;
	}
	if (!count_or_lose(key, record, 1, loops))
		return false;
	if (slot) {
		flush_count(&slot->key, &slot->count);
		slot->key = *key;
	}
	return true;
}

/* Counts one execution of key, in the key cache if it is used and the key
 * a success's (counted at sched_process_exec); true if counted. */
static __always_inline bool count_once(const struct exec_count_key *key, const struct record *record, bool loops)
{
	if (EXEC_KEY_SLOTS_USED(&settings) && !key->outcome)
		return count_in_key_slot(key, record, loops);
	return count_or_lose(key, record, 1, loops);
}

/* Gives the file's slot to it (or the name's, EXEC_FILE_SHORT_NAME: the one
 * read into buf), with its path's id: what the slot counted before goes to
 * exec_count. */
static __always_inline void take_slot(const struct file_identity *id, const struct exec_count_key *key, __u32 flags,
				      const struct path_buffer *buf)
{
	struct exec_file_slot *slot = bpf_map_lookup_elem(&exec_files, &id->slot);
	__u32 length;

	if (!slot || !files_cached)
		return;
	flush_slot(slot);
	if (settings.key == EXEC_KEY_INVOKED && (flags & EXEC_FILE_SHORT_NAME)) {
		length = buf->length;
		for (int i = 0; i < EXEC_SLOT_NAME_WORDS; i++)
			slot->name_words[i] = i * 8 < length ? short_name_word(buf, i, length) : 0;
		slot->name_length = length;
	} else {
		slot->dentry = (__u64)id->dentry;
		slot->mnt = (__u64)id->vfsmnt;
		slot->inode = (__u64)id->inode;
		slot->name = id->name;
		slot->mnt_parent = (__u64)id->mnt_parent;
		slot->mountpoint = (__u64)id->parent_mountpoint;
		slot->epoch = id->epoch;
		slot->name_length = 0;
	}
	slot->flags = flags | (id->unlinked ? EXEC_FILE_UNLINKED : 0);
	slot->path = key->path;
	slot->count = 0;
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

/* A word of a command name with its bytes from the first NUL on cleared
 * (which *ended says was there, or before it). */
static __always_inline __u64 comm_word(__u64 word, bool *ended)
{
	__u64 nuls = nul_marks(word);

	if (*ended)
		return 0;
	*ended = nuls;
	return nuls ? before_nul(word, nuls) : word;
}

/* Copies a task's command name by two plain loads: its bytes after the NUL
 * are cleared, as the helpers' copies leave them (the kernel does not always). */
static __always_inline void load_comm(char *to, const char *comm)
{
	bool ended = false;

	*(__u64 *)to = comm_word(*(const __u64 *)comm, &ended);
	*(__u64 *)(to + 8) = comm_word(*(const __u64 *)(comm + 8), &ended);
}

/* Fills in the fields other than the path and outcome: by plain loads where
 * the task is BTF-typed (and a name's first byte the lowest of its words), else
 * by the helpers. */
static __always_inline void fill_fields(struct exec_count_key *key, struct task_struct *task, bool task_btf)
{
	bool loads = task_btf && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

	if (settings.by & EXEC_BY_UID)
		key->uid = loads ? task->cred->uid.val : (__u32)bpf_get_current_uid_gid();
	if ((settings.by & EXEC_BY_COMM) && loads)
		load_comm(key->comm, task->comm);
	else if (settings.by & EXEC_BY_COMM)
		bpf_get_current_comm(key->comm, sizeof(key->comm));
	if ((settings.by & EXEC_BY_PARENT) && loads)
		load_comm(key->parent, task->real_parent->comm);
	else if (settings.by & EXEC_BY_PARENT)
		bpf_probe_read_kernel_str(key->parent, sizeof(key->parent),
					  TASK_FIELD(task, task_btf, real_parent)->comm);
	if ((settings.by & EXEC_BY_CGROUP) && loads)
		key->cgroup = task->cgroups->dfl_cgrp->kn->id;
	else if (settings.by & EXEC_BY_CGROUP)
		key->cgroup = bpf_get_current_cgroup_id();
}

/* Fills in the fields other than the path and outcome, then counts the key. */
static __always_inline void fill_and_count(struct exec_count_key *key, const struct record *record,
					   struct task_struct *task, bool task_btf, bool loops)
{
	fill_fields(key, task, task_btf);
	count_once(key, record, loops);
	if (settings.debug && record && record->start <= PATH_END - PATH_HEADER)
		bpf_printk("pyexec: counted %s (outcome %d)", &record->buf->bytes[record->start + PATH_HEADER],
			   key->outcome);
	else if (settings.debug)
		bpf_printk("pyexec: counted (outcome %d)", key->outcome);
}

/* A file's (or name's) first execution since it took its slot: counted as
 * any other (in exec_count first, which keeps its path's record, and holds its
 * key from then on, so what the slot counts always has an entry to go to, and
 * the path id it gives a record), then the slot is taken. */
static __always_inline void count_in_new_slot(const struct file_identity *file, const struct exec_count_key *key,
					      const struct record *record, __u32 flags, bool loops)
{
	if (count_once(key, record, loops))
		take_slot(file, key, flags, record->buf);
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
 * leaves it out; or, given the file's slot or room for the name's (cached),
 * counts it there. */
static __always_inline void count_exec_key(struct exec_count_key *key, struct task_struct *task,
					   bool task_btf, struct file *file, const char *name,
					   bool user, struct file_identity *cached, bool loops)
{
	struct record record = {}, *kept = NULL;
	__u32 zero = 0, mnt_ns = 0;
	bool complete = true, short_name = false;

	if (path_wanted()) {
		record.buf = bpf_map_lookup_elem(&path_buffers, &zero);
		if (!record.buf)
			return;
		if (file) {
			complete = resolve_path(record.buf, file, loops);
			mnt_ns = foreign_mount_namespace(file, task);
		} else if (!name || read_name(name, user, record.buf, &complete)) {
			count_loss(errors);
			return;
		}
		if (!keep_path(record.buf, complete, file, mnt_ns)) {
			if (cached && file_cache_used()) /* a name is read at each execution: its slot would save nothing */
				take_slot(cached, key, EXEC_FILE_LEFT_OUT, record.buf);
			return;
		}
		/* A name's slot (--key invoked, the path alone as the key). The key by
		 * the settings, not by file: the verifier would follow both ways of a
		 * pointer's test, and the walk's program would pass its limit on 5.10. */
		short_name = cached && settings.key == EXEC_KEY_INVOKED && record.buf->length <= EXEC_SLOT_NAME_WORDS * 8;
		if (short_name && count_in_short_name_slot(cached, record.buf))
			return;
		if (settings.by & EXEC_BY_PATH) {
			record.start = seal_record(record.buf, complete, mnt_ns);
			record.size = PATH_HEADER + record.buf->length;
			path_id_of(record.buf, record.start, record.size, &key->path, loops);
			kept = &record;
		}
	}
	if (cached && kept && settings.key == EXEC_KEY_INVOKED && !short_name && count_in_named_slot(cached, key))
		return;
	if (cached && kept) {
		fill_fields(key, task, task_btf);
		count_in_new_slot(cached, key, kept,
				  !complete ? EXEC_FILE_TRUNCATED : short_name ? EXEC_FILE_SHORT_NAME : 0, loops);
	} else {
		fill_and_count(key, kept, task, task_btf, loops);
	}
}

/* sched_process_exec fires once per successful execve, execveat or fexecve,
 * after the point of no return, with the new program in place. */
static __always_inline int count_exec(struct task_struct *task, struct linux_binprm *bprm, bool loops)
{
	struct exec_count_key key; /* on the stack, which is hot in cache */
	struct file_identity file = {};
	/* Read before the file is: a rename meanwhile makes what is found stale. */
	__u64 epoch = *(volatile __u64 *)&rename_epoch;
	enum slot_found found = SLOT_MISSED;

	if (!wanted(task, true))
		return 0;
	/* bprm->file is what /proc/PID/exe names: for a #! script, its interpreter. */
	if (file_cache_used())
		found = count_if_cached(bprm->file, epoch, &file);
	if (found == SLOT_COUNTED)
		return 0;
	__builtin_memset(&key, 0, sizeof(key));
	if (found == SLOT_NAMED) { /* its record is kept: the slot's first execution kept it */
		key.path = file.path;
		fill_and_count(&key, NULL, task, true, loops);
		return 0;
	}
	count_exec_key(&key, task, true, settings.key == EXEC_KEY_RESOLVED ? bprm->file : NULL,
		       bprm->filename, false, EXEC_SLOTS_USED(&settings) ? &file : NULL, loops);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(count_exec_looped, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return count_exec(task, bprm, true);
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(count_exec_bounded, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	return count_exec(task, bprm, false);
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
static __always_inline int count_failed_exec_call(long ret, bool loops)
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
	count_exec_key(&key, task, task_btf, NULL, filename, true, NULL, loops); /* a failed call has no file */
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

#define COUNT_FAILED_CALLS(name)                                                \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int exit_##name##_looped(struct trace_event_raw_sys_exit *ctx)          \
	{                                                                       \
		return count_failed_exec_call(ctx->ret, true);                  \
	}                                                                       \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int exit_##name##_bounded(struct trace_event_raw_sys_exit *ctx)         \
	{                                                                       \
		return count_failed_exec_call(ctx->ret, false);                 \
	}

COUNT_FAILED_CALLS(execve)
COUNT_FAILED_CALLS(execveat)

/* What may change a path already found: a rename, or a mount, anywhere. */
#define WATCH_SYSCALL(name)                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                              \
	int exit_##name(void *ctx)                                              \
	{                                                                       \
		__sync_fetch_and_add(&rename_epoch, 1);                         \
		return 0;                                                       \
	}

WATCH_SYSCALL(rename)
WATCH_SYSCALL(renameat)
WATCH_SYSCALL(renameat2)
WATCH_SYSCALL(mount)
WATCH_SYSCALL(umount)
WATCH_SYSCALL(move_mount)
WATCH_SYSCALL(pivot_root)
