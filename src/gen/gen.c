/*
 * Generators. See include/weft/gen.h for the contract.
 *
 * A generator is a coroutine whose object (struct weft_gen) lives at the top
 * of its own stack. Resuming it enters the coroutine, saving the resumer's
 * context in g->caller; yielding leaves back to g->caller. So a generator
 * can be resumed from any context — a thread's stack, another generator —
 * and nesting needs no bookkeeping beyond each generator's caller.
 *
 * State protocol (g->state), the only field touched by more than one thread
 * at a time:
 *  - a resume, throw or close claims the generator by a compare-and-swap from
 *    CREATED or SUSPENDED to RUNNING; the loser of a race gets -EBUSY and
 *    changes nothing;
 *  - only the claimer sets it again, after the generator has left its stack:
 *    SUSPENDED (it yielded) or FINISHED (it returned), with release order,
 *    so that the next claimer, on whatever thread, sees the saved context.
 * The generator never publishes its own state: until its switch out has
 * saved its registers, another thread must not be able to claim it.
 */
#include <errno.h>
#include <stdatomic.h>
#include <weft/gen.h>

#include "../core/coro.h"

#define GEN_MAGIC 0x67656e21u /* "gen!" */

struct weft_gen {
  weft__coro coro; /* first: the object sits at the top of the stack */
  uint32_t magic;  /* GEN_MAGIC while the handle is valid */
  _Atomic int state;
  weft__ctx caller; /* the resumer's context while the generator runs */
  weft_gen_fn fn;
  void *arg;
  int thrown;    /* what the pending yield returns instead of a value */
  bool returned; /* set by the generator when its function returned */
  bool closing;  /* weft_gen_close is running it */
  void *result;
};

static const char GEN_KIND[] = "generator";

static bool valid(const weft_gen *g) { return g && g->magic == GEN_MAGIC; }

static weft_gen *running_gen(void) {
  weft__coro *co = weft__coro_running;
  return co && co->kind == GEN_KIND ? (weft_gen *)co : NULL;
}

static void gen_main(weft__coro *self, void *first) {
  weft_gen *g = (weft_gen *)self;
  (void)first; /* always NULL: a first resume with a value is refused */
  g->result = g->fn(g->arg);
  g->returned = true;
  weft__coro_exit(&g->coro, &g->caller, NULL);
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
  g->magic = GEN_MAGIC;
  atomic_init(&g->state, WEFT_GEN_CREATED);
  *out = g;
  return 0;
}

/* Claims g for running. Returns the state it had (CREATED or SUSPENDED),
 * or a negative errno when it cannot run. */
static int claim(weft_gen *g) {
  int s = atomic_load_explicit(&g->state, memory_order_relaxed);
  for (;;) {
    if (s == WEFT_GEN_RUNNING)
      return -EBUSY;
    if (s == WEFT_GEN_FINISHED)
      return -ENODATA;
    if (atomic_compare_exchange_weak_explicit(&g->state, &s, WEFT_GEN_RUNNING,
                                              memory_order_acquire,
                                              memory_order_relaxed))
      return s;
  }
}

/* Runs a claimed generator until it leaves, then publishes its state. */
static int run(weft_gen *g, void *in, void **out) {
  void *v = weft__coro_enter(&g->coro, &g->caller, in);
  if (g->returned) {
    atomic_store_explicit(&g->state, WEFT_GEN_FINISHED, memory_order_release);
    v = g->result;
  } else {
    atomic_store_explicit(&g->state, WEFT_GEN_SUSPENDED, memory_order_release);
  }
  if (out)
    *out = v;
  return g->returned ? WEFT_GEN_RETURNED : WEFT_GEN_YIELDED;
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
  return run(g, in, out);
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
  g->thrown = err;
  return run(g, NULL, out);
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
  g->thrown = -ECANCELED;
  g->closing = true;
  int rc = run(g, NULL, NULL);
  g->closing = false;
  return rc == WEFT_GEN_RETURNED ? 0 : -EPROTO;
}

int weft_gen_free(weft_gen *g) {
  if (!valid(g))
    return -EINVAL;
  int rc = 0;
  if (atomic_load_explicit(&g->state, memory_order_acquire) ==
      WEFT_GEN_SUSPENDED)
    rc = weft_gen_close(g);
  /* Claim it for good so that a racing resume sees it busy, not free. */
  int s = claim(g);
  if (s == -EBUSY)
    return -EBUSY;
  g->magic = 0;
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
  void *v = weft__coro_leave(&g->coro, &g->caller, out);
  if (g->thrown) {
    int err = g->thrown;
    g->thrown = 0;
    return err;
  }
  if (in)
    *in = v;
  return 0;
}

int weft_gen_yield_from(weft_gen *sub, void **result) {
  weft_gen *self = running_gen();
  if (!self)
    return -EPERM;
  if (!valid(sub) || sub == self)
    return -EINVAL;
  void *in = NULL, *v;
  int thrown = 0;
  for (;;) {
    int rc =
        thrown ? weft_gen_throw(sub, thrown, &v) : weft_gen_resume(sub, in, &v);
    if (rc == WEFT_GEN_RETURNED) {
      if (result)
        *result = v;
      return 0;
    }
    if (rc < 0)
      return rc;
    rc = weft_gen_yield(v, &in);
    if (rc == -ECANCELED && self->closing) {
      weft_gen_close(sub);
      return -ECANCELED;
    }
    thrown = rc < 0 ? rc : 0;
  }
}

weft_gen *weft_gen_current(void) { return running_gen(); }

size_t weft_gen_default_stack_size(void) { return weft__stack_default_size(); }
