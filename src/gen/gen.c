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
 *    and changes nothing. The thread the generator is biased to (bias.h:
 *    the last to claim it, nearly always the next) claims it with a plain
 *    store instead, and any other thread revokes that bias before its
 *    compare-and-swap;
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

#include "copied.h"
#include "gen-private.h"

const char weft__gen_kind[] = "generator";
#define GEN_KIND weft__gen_kind

/* g->state holds, beside the state (STATE_MASK), the generator's bias
 * (see claim()): BIASED while a thread may claim it with a plain store,
 * and in BIAS_TAKES the biases taken so far (a bias can be taken REBIAS_MAX
 * + 1 times at most, bias.c: well under the field's 15). */
#define STATE_MASK       0xff
#define BIASED           0x100
#define BIAS_TAKES_SHIFT 9
#define BIAS_TAKES       (0xf << BIAS_TAKES_SHIFT)

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
  weft__ctx *to = &g->caller;
  if (__builtin_expect(g->copied, 0)) {
    to = weft__copied_leaving(g, state);
    if (!to)
      return -ENOMEM;
  }
  weft__coro_check_stack(&g->coro);
  weft__coro_leaving = &g->coro;
  weft__coro_running = g->outer;
  g->closing = false;
  /* A generator that weft_gen_free is closing stays claimed: nobody may
   * resume it between its close and its release. One that goes on
   * suspended keeps its bias (BIASED: only claims change that). */
  int next = g->freeing ? WEFT_GEN_RUNNING : state;
  if (next != WEFT_GEN_FINISHED)
    next |= atomic_load_explicit(&g->state, memory_order_relaxed) &
            (BIASED | BIAS_TAKES);
  atomic_store_explicit(&g->state, next, memory_order_release);
  if (state == WEFT_GEN_FINISHED)
    weft__ctx_exit(&g->coro.ctx, to, code);
  return weft__ctx_switch(&g->coro.ctx, to, code);
}

/* Hands value to the resumer (its out). A copied generator's is handed as
 * it leaves (copied.h): till then its resumer's frames may be off their
 * share, where out points. */
static inline void hand_out(weft_gen *g, void *value) {
  if (__builtin_expect(g->copied, 0))
    ((weft__gen_copied *)g)->outgoing = value;
  else if (g->out)
    *g->out = value;
}

static void gen_main(weft__coro *self, int first) {
  weft_gen *g = (weft_gen *)self;
  (void)first;
  hand_out(g, g->fn(g->arg));
  leave(g, WEFT_GEN_FINISHED, WEFT_GEN_RETURNED);
}

/* A copied generator (copied.h): its object apart, no stack until its
 * first run. Where saved contexts do not tell their stack pointer (the
 * ucontext build), weft_gen_new makes an ordinary one instead. */
static int new_copied(weft_gen **out, weft_gen_fn fn, void *arg,
                      const weft_gen_opts *o) {
  if (o->stack_size > WEFT__STACK_MAX)
    return -EINVAL;
  weft_gen *g = weft__copied_alloc(o->stack_size);
  if (!g)
    return -ENOMEM;
  weft__coro_name(&g->coro, GEN_KIND, o->name, gen_main);
  g->fn = fn;
  g->arg = arg;
  atomic_store_explicit(&g->magic, GEN_MAGIC, memory_order_relaxed);
  *out = g;
  return 0;
}

int weft_gen_new(weft_gen **out, weft_gen_fn fn, void *arg,
                 const weft_gen_opts *opts) {
  if (!out || !fn)
    return -EINVAL;
  weft_gen_opts o = opts ? *opts : (weft_gen_opts){0};
  if (o.copied && WEFT__MACHINE_SP_KNOWN)
    return new_copied(out, fn, arg, &o);
  weft__coro *co;
  int rc = weft__coro_create(&co, sizeof(weft_gen), o.stack_size, GEN_KIND,
                             o.name, gen_main);
  if (rc < 0)
    return rc;
  weft_gen *g = (weft_gen *)co;
  g->fn = fn;
  g->arg = arg;
  /* The rest is zero (weft__coro_create): state WEFT_GEN_CREATED, and the
   * bias unowned, not busy, never revoked. */
  atomic_store_explicit(&g->magic, GEN_MAGIC, memory_order_relaxed);
  *out = g;
  return 0;
}

/* Whether g has a context to wait for: a copied generator has none before
 * its first run (it may have finished without one: thrown into, closed). */
static inline bool has_context(const weft_gen *g) {
  return !g->copied || ((const weft__gen_copied *)g)->started;
}

/* Claims g for running. Returns the state it had (CREATED or SUSPENDED),
 * or a negative errno when it cannot run. Once claimed, g is the caller's:
 * its context is saved. Every load of the state acquires: a caller that
 * sees FINISHED goes on to wait for the context to be saved, and must not
 * see a saved stack pointer older than the state (weakly ordered CPUs).
 *
 * The state's BIASED bit says a thread may claim g with a plain store
 * (bias.h): only a claim by compare-and-swap sets it or clears it. Each
 * bias taken also counts in BIAS_TAKES, so that the state's value changes
 * with every new bias: a claimer that looked at g, revoked the bias it saw
 * and then finds at its compare-and-swap a state that only looks the same
 * (another thread claimed g meanwhile, took a bias and let g go) fails it,
 * looks again and revokes the new bias too. */
static int claim(weft_gen *g) {
  const void *me = weft__bias_me();
  int s = atomic_load_explicit(&g->state, memory_order_acquire);
  if ((s & ~BIAS_TAKES) == (WEFT_GEN_SUSPENDED | BIASED) &&
      weft__bias_owner(&g->bias) == me && weft__bias_enter(&g->bias, me)) {
    /* Nobody else changes the state until a revoke, which the enter saw
     * did not come. */
    atomic_store_explicit(&g->state, WEFT_GEN_RUNNING | (s & ~STATE_MASK),
                          memory_order_relaxed);
    weft__bias_entered(&g->bias);
    weft__ctx_wait_saved(&g->coro.ctx);
    return WEFT_GEN_SUSPENDED;
  }
  int claimed;
  for (;;) {
    int was = s & STATE_MASK;
    if (was == WEFT_GEN_RUNNING)
      return -EBUSY;
    if (was == WEFT_GEN_FINISHED)
      return -ENODATA;
    bool mine = false;
    if (s & BIASED) {
      mine = weft__bias_owner(&g->bias) == me;
      if (!mine)
        weft__bias_revoke(&g->bias, me);
    }
    claimed = WEFT_GEN_RUNNING | (s & BIAS_TAKES) | (mine ? BIASED : 0);
    if (atomic_compare_exchange_weak_explicit(&g->state, &s, claimed,
                                              memory_order_acquire,
                                              memory_order_acquire)) {
      s = was;
      break;
    }
  }
  if (s == WEFT_GEN_SUSPENDED && !(claimed & BIASED) &&
      (claimed & BIAS_TAKES) != BIAS_TAKES && weft__bias_take(&g->bias, me))
    atomic_store_explicit(&g->state, claimed + (1 << BIAS_TAKES_SHIFT) + BIASED,
                          memory_order_relaxed);
  if (has_context(g))
    weft__ctx_wait_saved(&g->coro.ctx);
  return s;
}

/* Gives back a claim of g, which was in state `was`, changing nothing. */
static void unclaim(weft_gen *g, int was) {
  int now = atomic_load_explicit(&g->state, memory_order_relaxed);
  atomic_store_explicit(&g->state, was | (now & (BIASED | BIAS_TAKES)),
                        memory_order_release);
}

/* Enters a claimed copied generator (copied.h), which was in state `was`,
 * as enter() does; or gives the claim back and tells why it cannot run
 * (-EBUSY: another chain holds its share; -ENOMEM). */
static int enter_copied(weft_gen *g, int was, int code, void **out, bool send,
                        void *in) {
  int rc = weft__copied_hold(g);
  weft__ctx *to = NULL;
  if (rc == 0 && !(to = weft__copied_enter(g, out, send, in)))
    rc = -ENOMEM;
  if (rc < 0) {
    /* It did not run: what a close or free set goes before the claim
     * does, or the next claimer's run would see it. */
    g->closing = g->freeing = false;
    unclaim(g, was);
    return rc;
  }
  return weft__ctx_switch(&g->caller, to, code);
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
  if (__builtin_expect(g->copied, 0))
    return enter_copied(g, s, 0, out, true, in);
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
  if (__builtin_expect(g->copied, 0))
    return enter_copied(g, s, err, out, false, NULL);
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
  int rc = g->copied ? enter_copied(g, s, -ECANCELED, NULL, false, NULL)
                     : enter(g, -ECANCELED, NULL);
  if (rc < 0)
    return rc; /* it did not run */
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
    rc = g->copied ? enter_copied(g, s, -ECANCELED, NULL, false, NULL)
                   : enter(g, -ECANCELED, NULL);
    if (rc < 0)
      return rc; /* it did not run */
    rc = rc == WEFT_GEN_RETURNED ? 0 : -EPROTO;
    /* It left on this thread: its context is saved. */
  } else if (s == -ENODATA && has_context(g)) {
    /* It finished, maybe on another thread whose last switch out may still
     * be saving it. */
    weft__ctx_wait_saved(&g->coro.ctx);
  }
  atomic_store_explicit(&g->magic, 0, memory_order_relaxed);
  if (g->copied)
    weft__copied_free(g);
  else
    weft__coro_destroy(&g->coro);
  return rc;
}

int weft_gen_state(const weft_gen *g) {
  if (!valid(g))
    return -EINVAL;
  return atomic_load_explicit(&((weft_gen *)g)->state, memory_order_acquire) &
         STATE_MASK;
}

const char *weft_gen_name(const weft_gen *g) {
  return valid(g) ? g->coro.name : NULL;
}

int weft_gen_yield(void *out, void **in) {
  weft_gen *g = running_gen();
  if (!g)
    return -EPERM;
  g->in = in;
  hand_out(g, out);
  return leave(g, WEFT_GEN_SUSPENDED, WEFT_GEN_YIELDED);
}

weft_gen *weft_gen_current(void) { return running_gen(); }

bool weft__gen_closing(const weft_gen *g) { return g->closing; }

size_t weft_gen_default_stack_size(void) { return weft__stack_default_size(); }
