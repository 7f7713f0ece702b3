/*
 * weft/gen.h — generators: Python's generator model in C.
 *
 *     Python                         weft
 *     g = f(arg)                     weft_gen_new(&g, f, arg, NULL)
 *     next(g)                        weft_gen_next(g, &v)
 *     g.send(x)                      weft_gen_resume(g, x, &v)
 *     g.throw(E)                     weft_gen_throw(g, -E, &v)
 *     g.close()                      weft_gen_close(g)
 *     x = yield v    (inside)        weft_gen_yield(v, &x)
 *     r = yield from sub (inside)    weft_gen_yield_from(sub, &r)
 *     return r       (inside)        return r;   (from the generator function)
 *
 * A generator runs its function on a stack of its own. Resuming it switches
 * to that stack until the function yields (the resume returns
 * WEFT_GEN_YIELDED with the yielded value) or returns (WEFT_GEN_RETURNED with
 * the return value). Values are void pointers both ways.
 *
 * Threads: a suspended generator may be resumed from any thread, one resume
 * at a time; a resume, throw or close that races another gets -EBUSY and
 * changes nothing. weft_gen_free claims the generator the same way: while
 * a resume runs it, the free gets -EBUSY and changes nothing. Handles, as
 * every handle of weft (docs/README.md, "Handles"): once weft_gen_free has
 * returned 0 or -EPROTO the handle must not be used again, by any thread:
 * weft cannot tell (its memory may already hold a new generator, and the
 * call would act on that one), and AddressSanitizer builds report it.
 * A generator resumed from another thread continues on that thread, so what
 * it knew of its thread before a yield may be stale after it: compilers keep
 * pthread_self() (declared const by glibc) and addresses of thread-locals
 * across calls. Read them again through a non-inlined function, or use
 * gettid().
 * Different generators are independent.
 *
 * Stacks: see docs/stacks.md. Overflowing a generator's stack stops the
 * process with a message naming the generator, never silent corruption.
 */
#ifndef WEFT_GEN_H
#define WEFT_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_gen weft_gen;

/*
 * The generator's body. It receives the arg given to weft_gen_new, and what
 * it returns is the generator's result (Python's `return r`, delivered as
 * StopIteration's value). Inside it, weft_gen_yield hands values out.
 */
typedef void *(*weft_gen_fn)(void *arg);

/* What a resume, throw or close reports when it succeeds. */
enum {
  WEFT_GEN_YIELDED = 0,  /* the generator yielded; *out is the value */
  WEFT_GEN_RETURNED = 1, /* the generator returned; *out is its result */
};

/* A generator's life, as weft_gen_state() reports it. */
enum weft_gen_state {
  WEFT_GEN_CREATED = 0,   /* made, never resumed (Python: GEN_CREATED) */
  WEFT_GEN_SUSPENDED = 1, /* stopped at a yield */
  WEFT_GEN_RUNNING = 2,   /* executing on some thread */
  WEFT_GEN_FINISHED = 3,  /* returned, was closed, or an error propagated */
};

typedef struct weft_gen_opts {
  /* Usable stack bytes; 0 means the default (weft_gen_default_stack_size()).
   * Rounded up to a power of two of at least 16 KiB; at most 1 GiB. The
   * memory is reserved, not committed: pages cost memory only once touched. */
  size_t stack_size;
  /* A name for messages (overflow reports, later task dumps); copied, and
   * cut to 31 bytes. NULL gives "generator #<id>". */
  const char *name;
  /* Copied stack (greenlet's and libaco's way), for programs that hold
   * very many generators: the generator has no stack of its own. It runs
   * on a stack shared with other copied generators — one per thread,
   * sized by stack_size as above — and while another runs there, its
   * live frames (a few hundred bytes) wait copied out in a buffer of
   * their size, to be copied back to the same addresses before it runs
   * again. It is bound to a shared stack of the thread that first resumes
   * it, and may then be resumed from any thread, but runs only while no
   * other chain of resumes uses that stack: see weft_gen_resume's -EBUSY.
   * Its locals are at their addresses only while it runs, or while it
   * waits in a resume of a generator that does not share its stack: while
   * it waits at a yield, or resumes a generator of its own stack, another
   * generator's frames are there. So hand other generators heap memory,
   * not pointers to its locals — with one exception weft keeps: a
   * generator first resumed by a copied generator is bound to another
   * stack than its resumer's, so a parent that makes a child, hands it a
   * pointer to a local and resumes it (the usual C pattern) works, as
   * long as no generator of the parent's own stack resumes that child.
   * Values sent and yielded are delivered as usual. In a fork's child, the
   * stacks other threads' chains held at the fork stay in use (-EBUSY). Where
   * weft cannot copy frames (the ucontext build), the generator gets a stack of
   * its own instead. docs/stacks.md has the costs. */
  bool copied;
} weft_gen_opts;

/*
 * weft_gen_new — make a generator that will run fn(arg) when first resumed.
 *
 * Stores the handle in *out. opts may be NULL for the defaults.
 * Errors: -EINVAL (out or fn is NULL, stack_size over 1 GiB),
 * -ENOMEM (no memory or address space for the stack).
 * Does not block (it may map memory). Callable from any thread or generator;
 * not from a signal handler.
 */
WEFT_API int weft_gen_new(weft_gen **out, weft_gen_fn fn, void *arg,
                          const weft_gen_opts *opts);

/*
 * weft_gen_resume — Python's send(): run the generator until it yields or
 * returns, delivering `in` as the value of its pending weft_gen_yield.
 *
 * Returns WEFT_GEN_YIELDED with the yielded value in *out, or
 * WEFT_GEN_RETURNED with the generator's result in *out (the generator is
 * then finished). out may be NULL to discard the value.
 * Errors (nothing changed): -EINVAL (g NULL; or
 * `in` is not NULL on the first resume — as Python, a just-started generator
 * has no yield to receive it), -EBUSY (g is running: on another thread, or it
 * is the caller itself or one of the generators that resumed the caller; or
 * g is copied and the stack it shares is in use by another chain of resumes:
 * a copied generator of that stack runs on another thread, or in a task
 * that waits inside it), -ENODATA (g has finished), -ENOMEM (g is copied,
 * and the frames of the generator last on its stack could not be kept).
 * Blocks for as long as the generator runs. Callable from any thread or
 * generator; not from a signal handler.
 */
WEFT_API int weft_gen_resume(weft_gen *g, void *in, void **out);

/* weft_gen_next — Python's next(): weft_gen_resume(g, NULL, out). */
static inline int weft_gen_next(weft_gen *g, void **out) {
  return weft_gen_resume(g, NULL, out);
}

/*
 * weft_gen_throw — Python's throw(): make the generator's pending
 * weft_gen_yield return `err` (a negative errno), then run it as a resume
 * does, with the same results.
 *
 * A generator that was never started cannot catch anything: it becomes
 * finished without running, and weft_gen_throw returns `err` itself, as
 * Python propagates the exception to the thrower.
 * Errors (nothing changed): -EINVAL (g NULL, or err is not negative),
 * -EBUSY, -ENODATA, -ENOMEM as weft_gen_resume.
 */
WEFT_API int weft_gen_throw(weft_gen *g, int err, void **out);

/*
 * weft_gen_close — Python's close(): make the pending weft_gen_yield return
 * -ECANCELED so the generator can clean up and return.
 *
 * Returns 0 once the generator is finished (the result it returns is
 * discarded). Closing a generator that never started or already finished
 * just marks it finished and returns 0.
 * Errors: -EPROTO when the generator yielded again instead of finishing
 * (Python: "generator ignored GeneratorExit"); it is then suspended at that
 * yield. -EINVAL (g NULL); -EBUSY, -ENOMEM as weft_gen_resume (nothing
 * changed).
 * Blocks for as long as the generator runs its cleanup.
 */
WEFT_API int weft_gen_close(weft_gen *g);

/*
 * weft_gen_free — release a generator and its stack, closing it first if it
 * is suspended.
 *
 * Returns 0, or -EPROTO when the generator ignored the close (the generator
 * is freed all the same: its stack is reclaimed without running the rest of
 * its function, so what it holds is lost). After this call g must not be
 * used again (see above). Errors (nothing changed): -EINVAL (g NULL),
 * -EBUSY (g is running; or it is copied, suspended, and the stack it would
 * run its close on is in use, as weft_gen_resume says), -ENOMEM (as
 * weft_gen_resume).
 */
WEFT_API int weft_gen_free(weft_gen *g);

/*
 * weft_gen_state — the generator's enum weft_gen_state, or -EINVAL when g is
 * NULL. A racing resume on another thread may change
 * the state right after the call returns.
 */
WEFT_API int weft_gen_state(const weft_gen *g);

/* weft_gen_name — the generator's name ("" when it has none), or NULL for
 * NULL. The string lives as long as the generator. */
WEFT_API const char *weft_gen_name(const weft_gen *g);

/*
 * weft_gen_yield — inside a generator: hand `out` to the resumer and suspend
 * until resumed again.
 *
 * Returns 0 with the value sent by the next weft_gen_resume in *in (in may be
 * NULL to discard it), or the error the resumer threw (weft_gen_throw), or
 * -ECANCELED when the generator is being closed: it should clean up and
 * return.
 * Errors: -EPERM when the caller is not running inside a generator;
 * -ENOMEM when the caller is a copied generator that must leave its
 * stack to its resumer (which shares it) and there is no memory to keep
 * its frames: it did not yield, and may try again.
 * Callable only from the generator's own function (and what it calls).
 */
WEFT_API int weft_gen_yield(void *out, void **in);

/*
 * weft_gen_yield_from — Python's `yield from sub`, inside a generator:
 * delegate to sub until it returns. Values sent to the caller's generator go
 * to sub, values sub yields go out to the caller's resumer, errors thrown in
 * are thrown into sub; a close closes sub first, then returns -ECANCELED.
 *
 * Returns 0 with sub's result in *result (may be NULL) once sub returned;
 * the error that ended the delegation otherwise (-ECANCELED when the
 * delegating generator is being closed, a thrown error sub let propagate,
 * or sub's resume error: -EBUSY, -ENODATA).
 * Errors: -EPERM outside a generator, -EINVAL (sub NULL or the caller
 * itself). sub is not freed.
 */
WEFT_API int weft_gen_yield_from(weft_gen *sub, void **result);

/* weft_gen_current — the generator the caller runs inside, or NULL. */
WEFT_API weft_gen *weft_gen_current(void);

/* weft_gen_default_stack_size — the stack size used when opts give 0. */
WEFT_API size_t weft_gen_default_stack_size(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_GEN_H */
