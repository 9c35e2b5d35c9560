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
 * The walks below are written as one step function each, over a state struct:
 * host C runs the steps in a plain loop, BPF under bpf_loop() (5.17+: the
 * verifier checks a step once instead of once per unrolled iteration, which
 * was most of the attach time), or in the same bounded loop on older kernels.
 * HT_RUN_STEPS(n, step, state) runs step(i, state) for i < n until it returns
 * 1; an includer may define it before including this file.
 */
#ifndef HT_RUN_STEPS
#define HT_RUN_STEPS(n, step, state)					\
	do {								\
		for (__u32 i__ = 0; i__ < (n); i__++)			\
			if ((step)(i__, (state)))			\
				break;					\
	} while (0)
#endif

/* The thread-state search through one interpreter's thread list. */
struct ht_py_search {
	const struct ht_py_proc *p;
	HT_WALK_CTX ctx;
	__u64 fsbase;
	__u64 ts;		/* the next thread state to look at, 0: none */
	__u64 found;
	__u32 tid;
	__u32 pad;
};

/* One step of the search: is this thread state @tid's?  Then on to the next. */
static __always_inline long ht_py_search_step(__u32 i, void *arg)
{
	struct ht_py_search *s = arg;

	(void)i;
	if (!s->ts)
		return 1;
	if (ht_py_tstate_matches(s->p, s->ctx, s->ts, s->tid, s->fsbase)) {
		s->found = s->ts;
		return 1;
	}
	if (ht_read_ptr(s->ctx, s->ts + s->p->ts_next, &s->ts))
		return 1;
	return 0;
}

/*
 * ht_py_find_tstate - walk every interpreter's thread list for the thread
 * state of @tid.  Returns its address, or 0.
 */
static __always_inline __u64 ht_py_find_tstate(const struct ht_py_proc *p, HT_WALK_CTX ctx,
					       __u32 tid, __u64 fsbase)
{
	struct ht_py_search s = {};
	__u64 interp = 0;
	int i;

	s.p = p;
	s.ctx = ctx;
	s.tid = tid;
	s.fsbase = fsbase;
	if (ht_read_ptr(ctx, p->interp_head_addr, &interp))
		return 0;
	for (i = 0; i < HT_MAX_INTERPS && interp; i++) {
		if (ht_read_ptr(ctx, interp + p->interp_tstate_head, &s.ts))
			return 0;
		HT_RUN_STEPS(HT_MAX_TSTATES, ht_py_search_step, &s);
		if (s.found)
			return s.found;
		if (ht_read_ptr(ctx, interp + p->interp_next, &interp))
			return 0;
	}
	return 0;
}

/* The frame walk of one thread state. */
struct ht_py_walker {
	const struct ht_py_proc *p;
	HT_WALK_CTX ctx;
	struct ht_pystack *st;
	__u64 frame;		/* the next frame to visit, 0: none */
	__u64 h;		/* the stack's hash so far */
	__u32 max_frames;
	__u32 stopped;		/* by an error or a full stack: not "too many steps" */
};

/* One step of the walk: record one frame (or skip a shim frame), go to its caller. */
static __always_inline long ht_py_walk_step(__u32 i, void *arg)
{
	struct ht_py_walker *w = arg;
	const struct ht_py_proc *p = w->p;
	struct ht_pystack *st = w->st;
	__u64 code = 0, instr = 0;
	__s32 lasti = 0;
	__u8 owner = 0;
	__u32 d;

	(void)i;
	if (!w->frame)
		return 1;
	if (p->owner_skip_min) {
		if (ht_read(w->ctx, &owner, sizeof(owner), w->frame + p->frame_owner))
			goto read_err;
		if (owner >= p->owner_skip_min)
			goto next;
	}
	/*
	 * The depth lives in *st, not in a local: in BPF that makes it an
	 * unknown value to the verifier, so steps that skipped a different
	 * number of shim frames converge instead of multiplying.
	 */
	d = st->depth;
	if (d >= w->max_frames) {
		st->flags |= HT_STACK_TRUNCATED;
		w->stopped = 1;
		return 1;
	}
	if (ht_read_ptr(w->ctx, w->frame + p->frame_code, &code))
		goto read_err;
	code &= p->code_tag_mask;
	if (p->frame_lasti >= 0) {
		if (ht_read(w->ctx, &lasti, sizeof(lasti), w->frame + p->frame_lasti))
			goto read_err;
		instr = (__u64)(__s64)lasti;
	} else if (ht_read_ptr(w->ctx, w->frame + p->frame_instr, &instr)) {
		goto read_err;
	}
	st->frames[d & (HT_MAX_PY_FRAMES - 1)].code = code;
	st->frames[d & (HT_MAX_PY_FRAMES - 1)].instr = instr;
	w->h = ht_hash_mix(ht_hash_mix(w->h, code), instr);
	st->depth = d + 1;
next:
	if (ht_read_ptr(w->ctx, w->frame + p->frame_back, &w->frame))
		goto read_err;
	return 0;
read_err:
	st->flags |= HT_STACK_READ_ERR;
	w->stopped = 1;
	return 1;
}

/*
 * ht_py_walk - record the Python frames of thread state @ts into @st,
 * innermost first, skipping the interpreter's own shim frames.  Returns the
 * stack's hash (never 0), or 0 when the thread has no Python frame.
 */
static __always_inline __u64 ht_py_walk(const struct ht_py_proc *p, HT_WALK_CTX ctx, __u64 ts,
					struct ht_pystack *st, __u32 max_frames)
{
	struct ht_py_walker w = {};
	__u64 h;

	st->depth = 0;
	st->flags = 0;
	w.p = p;
	w.ctx = ctx;
	w.st = st;
	w.h = 0xcbf29ce484222325ULL;
	w.max_frames = max_frames > HT_MAX_PY_FRAMES ? HT_MAX_PY_FRAMES : max_frames;
	if (ht_read_ptr(ctx, ts + p->ts_frame, &w.frame)) {
		st->flags |= HT_STACK_READ_ERR;
		return 0;
	}
	if (p->cframe_current_frame >= 0 && w.frame &&
	    ht_read_ptr(ctx, w.frame + p->cframe_current_frame, &w.frame)) {
		st->flags |= HT_STACK_READ_ERR;
		return 0;
	}
	HT_RUN_STEPS(HT_MAX_FRAME_STEPS, ht_py_walk_step, &w);
	if (w.frame && !w.stopped)
		st->flags |= HT_STACK_TRUNCATED;	/* more than HT_MAX_FRAME_STEPS frames */
	if (!st->depth)
		return 0;
	h = ht_hash_mix(w.h, ((__u64)st->flags << 32) | st->depth);
	return h ? h : 1;
}

#endif /* HT_PYWALK_H */
