/*
 * The coroutine object. See coro.h.
 */
#include "coro.h"
#include "valgrind.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>

WEFT__TLS weft__coro *weft__coro_running;
WEFT__TLS weft__coro *weft__coro_leaving;

static atomic_uint_fast64_t next_id = 1;

/* First code on a new coroutine's stack. */
static void boot(void *arg, int code) {
  weft__coro *co = arg;
  weft__tools_after_switch(NULL);
  co->entry(co, code);
  __builtin_unreachable(); /* entry ends by switching away for good */
}

/* More than any object weft puts at the top of a stack (a task's, a
 * generator's). */
enum { OBJECT_MAX = 4096 };

/* Clears what the last coroutine on st left: Valgrind's view of its
 * frames, and its object's poison (at most span bytes at the top). */
static void clear_stack(const weft__stack *st, size_t span) {
  char *top = st->lo + st->size;
  weft__valgrind_stack_fresh(st->lo, top);
  weft__tools_object_made(top - span, span);
}

void weft__coro_name(weft__coro *co, const char *kind, const char *name,
                     weft__coro_entry entry) {
  co->entry = entry;
  co->kind = kind;
  co->id = atomic_fetch_add_explicit(&next_id, 1, memory_order_relaxed);
  if (name) {
    size_t n = strnlen(name, WEFT__NAME_MAX - 1);
    memcpy(co->name, name, n);
    co->name[n] = '\0';
  }
}

/* Makes co's first context on st, whose lowest `usable` bytes its frames
 * may use. */
static void start_on(weft__coro *co, const weft__stack *st, size_t usable) {
  co->stack = *st;
  weft__tools_coro_init(&co->ctx.tools, st->lo, usable);
  weft__machine_make(&co->ctx.machine, st->lo, usable, boot, co);
}

void weft__coro_start_shared(weft__coro *co, const weft__stack *st) {
  start_on(co, st, st->size);
}

/* Fills co, zeroed, for a coroutine on st whose frames may use its lowest
 * `usable` bytes. */
static void fill(weft__coro *co, const weft__stack *st, size_t usable,
                 const char *kind, const char *name, weft__coro_entry entry) {
  weft__coro_name(co, kind, name, entry);
  start_on(co, st, usable);
}

int weft__coro_create(weft__coro **out, size_t obj_size, size_t stack_size,
                      const char *kind, const char *name,
                      weft__coro_entry entry) {
  weft__stack st;
  int rc = weft__stack_get(&st, stack_size);
  if (rc < 0)
    return rc;
  /* The owner's object at the top, 64-byte aligned; the stack proper
   * starts below it. The last object on this stack may have been larger
   * (a task's, now a generator's): its poison must not stay on the new
   * one's frames. */
  size_t obj = (obj_size + 63) & ~(size_t)63;
  weft__coro *co = (weft__coro *)(void *)(st.lo + st.size - obj);
  clear_stack(&st, obj > OBJECT_MAX ? obj : OBJECT_MAX);
  memset(co, 0, obj_size);
  fill(co, &st, st.size - obj, kind, name, entry);
  *out = co;
  return 0;
}

int weft__coro_init_apart(weft__coro *co, size_t stack_size, const char *kind,
                          const char *name, weft__coro_entry entry) {
  weft__stack st;
  int rc = weft__stack_get(&st, stack_size);
  if (rc < 0)
    return rc;
  /* The last coroutine on this stack may have kept its object at the
   * top. */
  clear_stack(&st, OBJECT_MAX);
  fill(co, &st, st.size, kind, name, entry);
  return 0;
}

int weft__coro_reserve_apart(weft__coro *co, size_t stack_size,
                             const char *kind, const char *name,
                             weft__coro_entry entry) {
  int rc = weft__stack_get(&co->stack, stack_size);
  if (rc == 0)
    weft__coro_name(co, kind, name, entry);
  return rc;
}

void weft__coro_start_reserved(weft__coro *co, const weft__stack *instead) {
  if (instead) {
    weft__stack_put_unused(&co->stack);
    co->stack = *instead;
  }
  weft__stack st = co->stack;
  clear_stack(&st, OBJECT_MAX); /* see weft__coro_init_apart */
  start_on(co, &st, st.size);
}

void weft__ctx_wait_saved_slow(weft__ctx *ctx) {
  for (int spins = 0; !weft__machine_saved(&ctx->machine); spins++)
    if (spins >= 100)
      sched_yield();
}

/* Under AddressSanitizer, the stacks of destroyed coroutines wait in a
 * ring of WEFT__TOOLS_QUARANTINE before they go back to the cache, so that
 * a coroutine's object, poisoned as it is let go, stays poisoned for a
 * while: a stale handle is then reported, not taken for a new coroutine's
 * at the same address. */
static struct {
  pthread_mutex_t lock;
  size_t next, n;
  weft__stack ring[WEFT__TOOLS_QUARANTINE ? WEFT__TOOLS_QUARANTINE : 1];
} quarantine = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void put_after_quarantine(const weft__stack *st) {
  if (!WEFT__TOOLS_QUARANTINE) {
    weft__stack_put(st);
    return;
  }
  weft__stack out;
  pthread_mutex_lock(&quarantine.lock);
  bool full = quarantine.n == WEFT__TOOLS_QUARANTINE;
  if (full)
    out = quarantine.ring[quarantine.next];
  else
    quarantine.n++;
  quarantine.ring[quarantine.next] = *st;
  if (++quarantine.next == WEFT__TOOLS_QUARANTINE)
    quarantine.next = 0;
  pthread_mutex_unlock(&quarantine.lock);
  if (full)
    weft__stack_put(&out);
}

void weft__coro_destroy_shared(weft__coro *co) {
  if (co->stack.lo)
    weft__tools_coro_fini_shared(&co->ctx.tools);
}

void weft__coro_destroy_keeping_stack(weft__coro *co) {
  weft__tools_coro_fini(&co->ctx.tools);
}

void weft__coro_destroy(weft__coro *co) {
  weft__stack st = co->stack;
  weft__tools_coro_fini(&co->ctx.tools);
  char *top = st.lo + st.size;
  if ((char *)co < st.lo || (char *)co >= top) { /* an object apart */
    weft__stack_put(&st);
    return;
  }
  /* The stack cache keeps its node in the top bytes (stack.h): those stay
   * the cache's to write. */
  weft__tools_object_gone(co,
                          (size_t)(top - WEFT__STACK_NODE_BYTES - (char *)co));
  put_after_quarantine(&st);
}

static size_t put_str(char *buf, size_t cap, size_t at, const char *s) {
  while (*s && at + 1 < cap)
    buf[at++] = *s++;
  return at;
}

size_t weft__coro_describe(const weft__coro *co, char *buf, size_t cap) {
  size_t at = put_str(buf, cap, 0, co->kind);
  if (co->name[0]) {
    at = put_str(buf, cap, at, " '");
    at = put_str(buf, cap, at, co->name);
    at = put_str(buf, cap, at, "'");
  } else {
    char digits[24];
    int i = (int)sizeof digits;
    uint64_t id = co->id;
    digits[--i] = '\0';
    do
      digits[--i] = (char)('0' + id % 10);
    while ((id /= 10) && i > 0);
    at = put_str(buf, cap, at, " #");
    at = put_str(buf, cap, at, digits + i);
  }
  if (cap)
    buf[at] = '\0';
  return at;
}
