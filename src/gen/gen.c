/*
 * Generators. See include/weft/gen.h for the contract.
 *
 * A generator is a coroutine whose object (struct weft_gen) lives at the top
 * of its own stack. Resuming it switches into it, saving the resumer's
 * context in g->caller; yielding switches back to g->caller. So a generator
 * can be resumed from any context — a thread's own stack, another generator
 * — and nesting needs no bookkeeping beyond each generator's caller.
 *
 * Handoff: each side of a switch finishes the other side's call before it
 * switches. The resumer delivers the sent value into the pending yield's
 * `in`; the generator delivers the yielded value into the resumer's `out`,
 * gives the thread back its previous running coroutine, and publishes the
 * new state. So weft_gen_resume and weft_gen_yield end in
 * `return weft__ctx_switch(…)`, which compiles to a jump: no return
 * instruction runs between two switches, and none mispredicts.
 *
 * State protocol (g->state), the one field several threads touch at once:
 *  - a resume, throw or close claims the generator with a compare-and-swap
 *    from CREATED or SUSPENDED to RUNNING; the loser of a race gets -EBUSY
 *    and changes nothing;
 *  - the generator publishes SUSPENDED or FINISHED (release) right before
 *    it switches out, having read all it needs of g;
 *  - a claimer then waits until the switch has saved the generator's
 *    context (weft__ctx_wait_saved) before it touches g: from that moment the
 *    generator's stack, its context and g->caller are the claimer's.
 *
 * Thread-locals: a generator may come back from a switch on another thread,
 * and compilers may keep a thread pointer across a call. So no function here
 * reads weft__coro_running after a switch of its own; and
 * weft_gen_yield_from, which loops over resumes and yields, lives in its own
 * file, where they cannot be inlined into it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <weft/gen.h>

#include "gen-private.h"

static const char GEN_KIND[] = "generator";

static bool valid(const weft_gen *g) {
  return g && atomic_load_explicit(&((weft_gen *)g)->magic,
                                   memory_order_relaxed) == GEN_MAGIC;
}

bool weft__gen_valid(const weft_gen *g) { return valid(g); }

static weft_gen *running_gen(void) {
  weft__coro *co = weft__coro_running;
  return co && co->kind == GEN_KIND ? (weft_gen *)co : NULL;
}

/* Switches out of g — until the next resume, or for good when it finished:
 * gives the thread its outer coroutine back, publishes g's new state, and
 * resumes the caller, whose resume returns `code`. After the state is
 * published, g belongs to whoever claims it next: only the switch, which
 * reads g->caller before it publishes the saved context, still touches it. */
static inline int leave(weft_gen *g, int state, int code) {
  weft__coro_check_stack(&g->coro);
  weft__coro_leaving = &g->coro;
  weft__coro_running = g->outer;
  g->closing = false;
  /* A generator that weft_gen_free is closing stays claimed: nobody may
   * resume it between its close and its release. */
  atomic_store_explicit(&g->state, g->freeing ? WEFT_GEN_RUNNING : state,
                        memory_order_release);
  if (state == WEFT_GEN_FINISHED)
    weft__ctx_exit(&g->coro.ctx, &g->caller, code);
  return weft__ctx_switch(&g->coro.ctx, &g->caller, code);
}

static void gen_main(weft__coro *self, int first) {
  weft_gen *g = (weft_gen *)self;
  (void)first;
  void *result = g->fn(g->arg);
  if (g->out)
    *g->out = result;
  leave(g, WEFT_GEN_FINISHED, WEFT_GEN_RETURNED);
}

int weft_gen_new(weft_gen **out, weft_gen_fn fn, void *arg,
                 const weft_gen_opts *opts) {
  if (!out || !fn)
    return -EINVAL;
  weft_gen_opts o = opts ? *opts : (weft_gen_opts){0};
  weft__coro *co;
  int rc = weft__coro_create(&co, sizeof(weft_gen), o.stack_size, GEN_KIND,
                             o.name, gen_main);
  if (rc < 0)
    return rc;
  weft_gen *g = (weft_gen *)co;
  g->fn = fn;
  g->arg = arg;
  atomic_init(&g->state, WEFT_GEN_CREATED);
  atomic_store_explicit(&g->magic, GEN_MAGIC, memory_order_relaxed);
  *out = g;
  return 0;
}

/* Claims g for running. Returns the state it had (CREATED or SUSPENDED),
 * or a negative errno when it cannot run. Once claimed, g is the caller's:
 * its context is saved. Every load of the state acquires: a caller that
 * sees FINISHED goes on to wait for the context to be saved, and must not
 * see a saved stack pointer older than the state (weakly ordered CPUs). */
static int claim(weft_gen *g) {
  int s = atomic_load_explicit(&g->state, memory_order_acquire);
  for (;;) {
    if (s == WEFT_GEN_RUNNING)
      return -EBUSY;
    if (s == WEFT_GEN_FINISHED)
      return -ENODATA;
    if (atomic_compare_exchange_weak_explicit(&g->state, &s, WEFT_GEN_RUNNING,
                                              memory_order_acquire,
                                              memory_order_acquire))
      break;
  }
  weft__ctx_wait_saved(&g->coro.ctx);
  return s;
}

/* Switches into a claimed generator; its pending yield returns `code`, and
 * this returns what the generator reports when it leaves (leave()). */
static inline int enter(weft_gen *g, int code, void **out) {
  weft__thread_prepare();
  g->out = out;
  g->outer = weft__coro_running;
  weft__coro_running = &g->coro;
  return weft__ctx_switch(&g->caller, &g->coro.ctx, code);
}

int weft_gen_resume(weft_gen *g, void *in, void **out) {
  if (!valid(g))
    return -EINVAL;
  /* CREATED is left only by a claim, so a generator seen past it here is
   * past it at the claim too. */
  if (in &&
      atomic_load_explicit(&g->state, memory_order_relaxed) == WEFT_GEN_CREATED)
    return -EINVAL;
  int s = claim(g);
  if (s < 0)
    return s;
  if (g->in)
    *g->in = in;
  return enter(g, 0, out);
}

int weft_gen_throw(weft_gen *g, int err, void **out) {
  if (!valid(g) || err >= 0)
    return -EINVAL;
  int s = claim(g);
  if (s < 0)
    return s;
  if (s == WEFT_GEN_CREATED) {
    atomic_store_explicit(&g->state, WEFT_GEN_FINISHED, memory_order_release);
    return err;
  }
  return enter(g, err, out);
}

int weft_gen_close(weft_gen *g) {
  if (!valid(g))
    return -EINVAL;
  int s = claim(g);
  if (s == -ENODATA)
    return 0;
  if (s < 0)
    return s;
  if (s == WEFT_GEN_CREATED) {
    atomic_store_explicit(&g->state, WEFT_GEN_FINISHED, memory_order_release);
    return 0;
  }
  g->closing = true; /* cleared by the generator as it leaves */
  int rc = enter(g, -ECANCELED, NULL);
  return rc == WEFT_GEN_RETURNED ? 0 : -EPROTO;
}

int weft_gen_free(weft_gen *g) {
  if (!valid(g))
    return -EINVAL;
  /* Claimed first and kept claimed to the end, so that a racing resume is
   * refused rather than skipping the close or touching freed memory. */
  int s = claim(g);
  if (s == -EBUSY)
    return -EBUSY;
  int rc = 0;
  if (s == WEFT_GEN_SUSPENDED) {
    g->freeing = true;
    g->closing = true;
    if (enter(g, -ECANCELED, NULL) != WEFT_GEN_RETURNED)
      rc = -EPROTO;
    /* It left on this thread: its context is saved. */
  } else if (s == -ENODATA) {
    /* It finished, maybe on another thread whose last switch out may still
     * be saving it. */
    weft__ctx_wait_saved(&g->coro.ctx);
  }
  atomic_store_explicit(&g->magic, 0, memory_order_relaxed);
  weft__coro_destroy(&g->coro);
  return rc;
}

int weft_gen_state(const weft_gen *g) {
  if (!valid(g))
    return -EINVAL;
  return atomic_load_explicit(&((weft_gen *)g)->state, memory_order_acquire);
}

const char *weft_gen_name(const weft_gen *g) {
  return valid(g) ? g->coro.name : NULL;
}

int weft_gen_yield(void *out, void **in) {
  weft_gen *g = running_gen();
  if (!g)
    return -EPERM;
  g->in = in;
  if (g->out)
    *g->out = out;
  return leave(g, WEFT_GEN_SUSPENDED, WEFT_GEN_YIELDED);
}

weft_gen *weft_gen_current(void) { return running_gen(); }

bool weft__gen_closing(const weft_gen *g) { return g->closing; }

size_t weft_gen_default_stack_size(void) { return weft__stack_default_size(); }
