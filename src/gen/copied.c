/*
 * Copied-stack generators: shares, their holders and occupants, and the
 * swapper. See copied.h for the model and its invariants.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/stack.h"
#include "../core/valgrind.h"
#include "copied.h"

struct weft__share {
  weft__stack stack;
  _Atomic(const void *) holder; /* the chain on it (chain_root()), or NULL */
  /* Its thread's token (weft__bias_me) while that thread lives, or NULL:
   * a chain on that thread needs no reference of its own to it. */
  _Atomic(const void *) home;
  unsigned depth;     /* the holder's members on it */
  weft_gen *occupant; /* whose frames it holds, or NULL */
  atomic_size_t refs;
  weft__share *next; /* in its thread's list; that thread's to change */
};

/* More than a switching function's frame and the switch's pushes add below
 * that function's frame address: the room reserved for a save the swapper
 * makes, which must not fail. */
enum { SWITCH_SLACK = 1024 };

/* What the swapper does, between two contexts of one thread on one share:
 * copies `off`'s frames (its context is *off_ctx) off the share, unless
 * off is NULL; puts `on`'s on it, or leaves it empty if on is NULL;
 * stores `value` at `slot` (a sent value into on's pending yield, or a
 * yielded one into the resumer's out) unless slot is NULL; lets the share
 * go for a generator that left, if let_go; and resumes *to. */
struct swap {
  weft__share *s;
  weft__gen_copied *off;
  weft__ctx *off_ctx;
  weft__gen_copied *on;
  void **slot;
  void *value;
  bool let_go;
  weft__ctx *to;
  weft__ctx to_copy; /* *to, when it lies in a generator that may be freed
                        as soon as its state is published */
};

/* A thread's part: its shares, and its swapper with the next request. */
struct thread_part {
  weft__share *shares;
  weft__coro swapper;
  bool swapper_made;
  struct swap req;
};

static WEFT__TLS struct thread_part *here;
static pthread_key_t here_key;
static pthread_once_t here_once = PTHREAD_ONCE_INIT;

static char *top_of(const weft__share *s) {
  return s->stack.lo + s->stack.size;
}

static void unref(weft__share *s) {
  if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
    return;
  /* The last one on it may have left its frames' poison. */
  weft__tools_stack_reused(s->stack.lo, s->stack.size);
  weft__stack_put(&s->stack);
  free(s);
}

static void thread_gone(void *arg) {
  struct thread_part *t = arg;
  here = NULL;
  for (weft__share *s = t->shares, *next; s; s = next) {
    next = s->next;
    /* A thread made later may get this one's token. */
    atomic_store_explicit(&s->home, NULL, memory_order_relaxed);
    unref(s);
  }
  if (t->swapper_made)
    weft__coro_destroy(&t->swapper);
  free(t);
}

static void make_key(void) { pthread_key_create(&here_key, thread_gone); }

static struct thread_part *this_thread(void) {
  if (here)
    return here;
  pthread_once(&here_once, make_key);
  struct thread_part *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  if (pthread_setspecific(here_key, t) != 0) {
    free(t);
    return NULL;
  }
  here = t;
  return t;
}

/* The chain the caller runs in: the task or the thread at its root. */
static const void *chain_root(void) {
  weft__coro *co = weft__coro_running;
  while (co && co->kind == weft__gen_kind)
    co = ((weft_gen *)co)->outer;
  return co ? (const void *)co : weft__bias_me();
}

/* Whether a chain on this thread must hold a reference to s while it
 * holds s: unless s is this thread's, whose own reference lasts as long
 * as the thread, another thread may drop the last of the others (freeing
 * the last generator bound to s) while the chain still lets s go. */
static bool needs_ref(weft__share *s) {
  return atomic_load_explicit(&s->home, memory_order_relaxed) !=
         weft__bias_me();
}

/* Holds s for the chain root, or tells that another chain holds it. */
static bool take(weft__share *s, const void *root) {
  const void *h = atomic_load_explicit(&s->holder, memory_order_acquire);
  if (h == root) {
    s->depth++;
    return true;
  }
  if (h || !atomic_compare_exchange_strong_explicit(&s->holder, &h, root,
                                                    memory_order_acquire,
                                                    memory_order_relaxed))
    return false;
  if (needs_ref(s))
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
  s->depth = 1;
  return true;
}

/* Lets s go for one member of the holding chain, whose last switch out is
 * complete: the next holder may copy its frames off. */
static void let_go(weft__share *s) {
  if (--s->depth)
    return;
  bool ref = needs_ref(s);
  atomic_store_explicit(&s->holder, NULL, memory_order_release);
  if (ref)
    unref(s);
}

/* A share of this thread's, of at least size bytes, for a generator's
 * first run, held for root: one it has that nobody holds, or a new one.
 * Not one held by root's own chain either: a generator first resumed by
 * another (which made it and handed it a pointer into its frames, say)
 * then runs on another stack than its resumer, whose frames stay where
 * they are, and no switch between the two copies frames. */
static int pick(weft__share **out, const void *root, size_t size) {
  struct thread_part *t = this_thread();
  if (!t)
    return -ENOMEM;
  for (weft__share *s = t->shares; s; s = s->next)
    if (s->stack.size >= size &&
        !atomic_load_explicit(&s->holder, memory_order_relaxed) &&
        take(s, root)) {
      *out = s;
      return 0;
    }
  weft__share *s = calloc(1, sizeof *s);
  if (!s)
    return -ENOMEM;
  int rc = weft__stack_get(&s->stack, size);
  if (rc < 0) {
    free(s);
    return rc;
  }
  atomic_init(&s->refs, 1); /* its thread's */
  atomic_init(&s->holder, NULL);
  atomic_init(&s->home, weft__bias_me());
  s->next = t->shares;
  t->shares = s;
  take(s, root);
  *out = s;
  return 0;
}

weft_gen *weft__copied_alloc(size_t stack_size) {
  weft__gen_copied *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->stack_size = (uint32_t)((stack_size + 1023) >> 10);
  c->g.copied = true;
  return &c->g;
}

int weft__copied_hold(weft_gen *g) {
  weft__gen_copied *c = (weft__gen_copied *)g;
  const void *root = chain_root();
  if (c->share)
    return take(c->share, root) ? 0 : -EBUSY;
  weft__share *s;
  size_t size =
      c->stack_size ? (size_t)c->stack_size << 10 : weft__stack_default_size();
  int rc = pick(&s, root, size);
  if (rc < 0)
    return rc;
  atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); /* bound */
  c->share = s;
  return 0;
}

static int reserve(weft__gen_copied *c, size_t n) {
  if (n <= c->frames_cap)
    return 0;
  if (n > UINT32_MAX)
    return -ENOMEM;
  char *p = realloc(c->frames, n);
  if (!p)
    return -ENOMEM;
  c->frames = p;
  c->frames_cap = (uint32_t)n;
  return 0;
}

/* The bytes of c's frames on s, from the stack pointer of its saved
 * context *ctx to the top. */
static size_t frames_on(const weft__share *s, weft__ctx *ctx) {
  weft__ctx_wait_saved(ctx);
  return (size_t)(top_of(s) - (char *)weft__machine_sp(&ctx->machine));
}

/* Copies c's frames, whose context is *ctx, off s into its buffer, which
 * has room for them: reserved by the caller, or before the switch that
 * left them there (SWITCH_SLACK). */
static void copy_off(weft__share *s, weft__gen_copied *c, weft__ctx *ctx) {
  size_t n = frames_on(s, ctx);
  if (n > c->frames_cap) { /* a bug of weft's: never go on with it */
    static const char msg[] =
        "weft: a copied generator's frames outgrew their reserved room\n";
    weft__say(msg, sizeof msg - 1);
    abort();
  }
  weft__tools_copy_stack(c->frames, top_of(s) - n, n);
  c->frames_len = (uint32_t)n;
}

/* Puts c on s: its frames copied back where they were, or its first
 * context made. */
static void copy_on(weft__share *s, weft__gen_copied *c) {
  weft__valgrind_stack_fresh(s->stack.lo, top_of(s));
  weft__tools_stack_reused(s->stack.lo, s->stack.size);
  if (c->started) {
    weft__tools_copy_stack(top_of(s) - c->frames_len, c->frames, c->frames_len);
  } else {
    weft__coro_start_shared(&c->g.coro, &s->stack);
    c->started = true;
  }
  s->occupant = &c->g;
}

/* Where o, a member of the running chain, is saved: in the caller slot of
 * the generator it resumed. NULL when o is not a member (it is suspended
 * at a yield, in its own context). */
static weft__ctx *member_saved_in(const weft_gen *o) {
  for (weft__coro *co = weft__coro_running; co && co->kind == weft__gen_kind;
       co = ((weft_gen *)co)->outer)
    if (((weft_gen *)co)->outer == &o->coro)
      return &((weft_gen *)co)->caller;
  return NULL;
}

/* Copying runs here, on the swapper's stack, between two contexts that
 * share a stack; the swapper stays on its thread. */
static void swapper_main(weft__coro *self, int code) {
  for (;;) {
    struct swap *r = &here->req;
    if (r->off) /* into room reserved before the switch */
      copy_off(r->s, r->off, r->off_ctx);
    if (r->on)
      copy_on(r->s, r->on);
    else
      r->s->occupant = NULL;
    if (r->slot)
      *r->slot = r->value;
    if (r->let_go)
      let_go(r->s);
    code = weft__ctx_switch(&self->ctx, r->to, code);
  }
}

static struct thread_part *with_swapper(void) {
  struct thread_part *t = this_thread();
  if (!t || t->swapper_made)
    return t;
  if (weft__coro_init_apart(&t->swapper, WEFT__STACK_MIN, "swapper", NULL,
                            swapper_main) < 0)
    return NULL;
  t->swapper_made = true;
  return t;
}

/* The room to reserve for the frames of the context running the caller,
 * should it switch out now. */
static size_t room_here(const weft__share *s) {
  return (size_t)(top_of(s) - (char *)__builtin_frame_address(0)) +
         SWITCH_SLACK;
}

weft__ctx *weft__copied_enter(weft_gen *g, void **out, bool send, void *in) {
  weft__gen_copied *c = (weft__gen_copied *)g;
  weft__share *s = c->share;
  weft__thread_prepare();
  /* Made now, since g's return (which cannot fail) goes through it. */
  struct thread_part *t = with_swapper();
  if (!t) {
    let_go(s);
    return NULL;
  }
  weft__coro *from = weft__coro_running;
  weft__gen_copied *o = (weft__gen_copied *)s->occupant;
  weft__ctx *to = &g->coro.ctx;
  if (o && from == &o->g.coro) {
    /* The resumer runs on s: the swapper swaps the two. */
    if (reserve(o, room_here(s)) < 0) {
      let_go(s);
      return NULL;
    }
    t->req = (struct swap){.s = s,
                           .off = o,
                           .off_ctx = &g->caller,
                           .on = c,
                           .slot = send ? g->in : NULL,
                           .value = in,
                           .to = &g->coro.ctx};
    to = &t->swapper.ctx;
  } else {
    if (o && o != c) {
      weft__ctx *saved = member_saved_in(&o->g);
      weft__ctx *ctx = saved ? saved : &o->g.coro.ctx;
      if (reserve(o, frames_on(s, ctx)) < 0) {
        let_go(s);
        return NULL;
      }
      copy_off(s, o, ctx);
      /* A member of this chain goes back on s as g leaves, before the
       * chain can return to it (copied_leaving). */
      c->evicted = saved ? o : NULL;
    }
    if (o != c) /* else its frames are in place */
      copy_on(s, c);
    if (send && g->in)
      *g->in = in;
  }
  g->out = out;
  g->outer = from;
  weft__coro_running = &g->coro;
  return to;
}

weft__ctx *weft__copied_leaving(weft_gen *g, int state) {
  weft__gen_copied *c = (weft__gen_copied *)g;
  weft__share *s = c->share;
  weft__coro *outer = g->outer;
  weft_gen *og =
      outer && outer->kind == weft__gen_kind ? (weft_gen *)outer : NULL;
  bool back_on_s = og && og->copied && ((weft__gen_copied *)og)->share == s;
  weft__gen_copied *back = back_on_s ? (weft__gen_copied *)og : c->evicted;
  /* Frames that will not run again (it returned, or ignored the close of
   * weft_gen_free, which reclaims it) need no saving. */
  bool dead = state == WEFT_GEN_FINISHED || g->freeing;
  if (!dead && back && reserve(c, room_here(s)) < 0)
    return NULL;
  c->evicted = NULL;
  if (!dead && !back) {
    /* The common way out: its frames stay on s, and s is let go now. The
     * next holder copies them off once this switch has saved them
     * (frames_on waits for that). */
    if (g->out)
      *g->out = c->outgoing;
    let_go(s);
    return &g->caller;
  }
  /* The swapper finishes the leave on its own stack, once g is off s:
   * copies g's frames off (unless dead), puts back the resumer or the
   * member g evicted (if any), hands out the value, lets s go. Its
   * context is copied now, as g may be freed once its state is
   * published. */
  struct thread_part *t = here; /* made by the enter */
  t->req = (struct swap){.s = s,
                         .off = dead ? NULL : c,
                         .off_ctx = &g->coro.ctx,
                         .on = back,
                         .slot = g->out,
                         .value = c->outgoing,
                         .let_go = true,
                         .to_copy = g->caller};
  t->req.to = &t->req.to_copy;
  return &t->swapper.ctx;
}

void weft__copied_free(weft_gen *g) {
  weft__gen_copied *c = (weft__gen_copied *)g;
  weft__coro_destroy_shared(&g->coro);
  free(c->frames);
  if (c->share)
    unref(c->share);
  free(c);
}
