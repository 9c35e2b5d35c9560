/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one CPython frame walker.  Compiled as BPF (reading the current task's
 * memory) and as host C (reading /proc/PID/mem for threads still blocked when
 * tracing ends, and for `hangtrace dump`).  The algorithm is driven only by the
 * offsets in struct ht_py_proc: a new CPython version adds data, not code.
 *
 * The includer defines, before including this file:
 *   HT_WALK_CTX                   type of an opaque reader context
 *   ht_read(ctx, dst, size, addr) read target memory, 0 on success
 */
#ifndef HT_PYWALK_H
#define HT_PYWALK_H

#include "hangtrace.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* FNV-1a style mixing, good enough to key stacks; 0 is reserved for "none". */
static __always_inline __u64 ht_hash_mix(__u64 h, __u64 v)
{
	h ^= v;
	h *= 0x100000001b3ULL;
	h ^= h >> 29;
	return h;
}

static __always_inline int ht_read_ptr(HT_WALK_CTX ctx, __u64 addr, __u64 *out)
{
	*out = 0;
	if (!addr)
		return -1;
	return ht_read(ctx, out, sizeof(*out), addr);
}

/*
 * ht_py_tstate_matches - is @ts the thread state of OS thread @tid?
 * 3.11+ compares native_thread_id with the TID; older versions compare
 * thread_id (pthread_self(), which is the FS base on x86_64 glibc) with @fsbase.
 */
static __always_inline int ht_py_tstate_matches(const struct ht_py_proc *p, HT_WALK_CTX ctx,
						__u64 ts, __u32 tid, __u64 fsbase)
{
	__u64 v = 0;

	if (p->ts_native_thread_id >= 0) {
		if (ht_read_ptr(ctx, ts + p->ts_native_thread_id, &v))
			return 0;
		return v == tid;
	}
	if (!fsbase || ht_read_ptr(ctx, ts + p->ts_thread_id, &v))
		return 0;
	return v == fsbase;
}

/*
 * ht_py_find_tstate - walk every interpreter's thread list for the thread
 * state of @tid.  Returns its address, or 0.
 */
static __always_inline __u64 ht_py_find_tstate(const struct ht_py_proc *p, HT_WALK_CTX ctx,
					       __u32 tid, __u64 fsbase)
{
	__u64 interp = 0, ts = 0;
	int i, j;

	if (ht_read_ptr(ctx, p->interp_head_addr, &interp))
		return 0;
	for (i = 0; i < HT_MAX_INTERPS && interp; i++) {
		if (ht_read_ptr(ctx, interp + p->interp_tstate_head, &ts))
			return 0;
		for (j = 0; j < HT_MAX_TSTATES && ts; j++) {
			if (ht_py_tstate_matches(p, ctx, ts, tid, fsbase))
				return ts;
			if (ht_read_ptr(ctx, ts + p->ts_next, &ts))
				break;
		}
		if (ht_read_ptr(ctx, interp + p->interp_next, &interp))
			return 0;
	}
	return 0;
}

/*
 * ht_py_walk - record the Python frames of thread state @ts into @st,
 * innermost first, skipping the interpreter's own shim frames.  Returns the
 * stack's hash (never 0), or 0 when the thread has no Python frame.
 */
static __always_inline __u64 ht_py_walk(const struct ht_py_proc *p, HT_WALK_CTX ctx, __u64 ts,
					struct ht_pystack *st, __u32 max_frames)
{
	__u64 frame = 0, code = 0, instr = 0, h = 0xcbf29ce484222325ULL;
	__u32 d;
	__s32 lasti = 0;
	__u8 owner = 0;
	int i;

	/*
	 * The depth lives in *st, not in a local: in BPF that makes it an
	 * unknown value to the verifier, so loop iterations that skipped a
	 * different number of shim frames converge instead of multiplying.
	 */
	st->depth = 0;
	st->flags = 0;
	if (max_frames > HT_MAX_PY_FRAMES)
		max_frames = HT_MAX_PY_FRAMES;
	if (ht_read_ptr(ctx, ts + p->ts_frame, &frame)) {
		st->flags |= HT_STACK_READ_ERR;
		return 0;
	}
	if (p->cframe_current_frame >= 0 && frame &&
	    ht_read_ptr(ctx, frame + p->cframe_current_frame, &frame)) {
		st->flags |= HT_STACK_READ_ERR;
		return 0;
	}
	for (i = 0; i < HT_MAX_FRAME_STEPS && frame; i++) {
		if (p->owner_skip_min) {
			if (ht_read(ctx, &owner, sizeof(owner), frame + p->frame_owner)) {
				st->flags |= HT_STACK_READ_ERR;
				break;
			}
			if (owner >= p->owner_skip_min)
				goto next;
		}
		d = st->depth;
		if (d >= max_frames) {
			st->flags |= HT_STACK_TRUNCATED;
			break;
		}
		if (ht_read_ptr(ctx, frame + p->frame_code, &code)) {
			st->flags |= HT_STACK_READ_ERR;
			break;
		}
		code &= p->code_tag_mask;
		if (p->frame_lasti >= 0) {
			if (ht_read(ctx, &lasti, sizeof(lasti), frame + p->frame_lasti)) {
				st->flags |= HT_STACK_READ_ERR;
				break;
			}
			instr = (__u64)(__s64)lasti;
		} else if (ht_read_ptr(ctx, frame + p->frame_instr, &instr)) {
			st->flags |= HT_STACK_READ_ERR;
			break;
		}
		st->frames[d & (HT_MAX_PY_FRAMES - 1)].code = code;
		st->frames[d & (HT_MAX_PY_FRAMES - 1)].instr = instr;
		h = ht_hash_mix(ht_hash_mix(h, code), instr);
		st->depth = d + 1;
next:
		if (ht_read_ptr(ctx, frame + p->frame_back, &frame)) {
			st->flags |= HT_STACK_READ_ERR;
			break;
		}
	}
	if (frame && i >= HT_MAX_FRAME_STEPS)
		st->flags |= HT_STACK_TRUNCATED;
	if (!st->depth)
		return 0;
	h = ht_hash_mix(h, ((__u64)st->flags << 32) | st->depth);
	return h ? h : 1;
}

#endif /* HT_PYWALK_H */
