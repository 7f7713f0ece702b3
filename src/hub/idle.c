/*
 * Idle stacks: the stack pages of tasks parked for long, given back to the
 * kernel. See hub-private.h.
 *
 * The idle queue is a list of the hub's tasks in the order of their
 * parked_at: weft__hub_stamp_parked moves each task it stamps to the
 * tail, and stamps only grow. A task in the queue may have run since its
 * stamp (the sweep drops it then), or parked again without a stamp yet
 * (unstamped: the sweep drops it too, and the coming stamp queues it
 * again). Everything here runs on the hub's thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <weft/hub.h>

#include "../core/stack.h"
#include "hub-private.h"

int weft_hub_idle_after(int64_t after) {
  weft__hub *h = weft__hub_current;
  if (after < 0 && after != WEFT_FOREVER)
    return -EINVAL;
  if (!h)
    return -EPERM;
  h->idle_after = after == WEFT_FOREVER ? INT64_MAX : after;
  return 0;
}

static void unlink_idle(weft__hub *h, weft_task *t) {
  if (t->idle_prev)
    t->idle_prev->idle_next = t->idle_next;
  else
    h->idle_head = t->idle_next;
  if (t->idle_next)
    t->idle_next->idle_prev = t->idle_prev;
  else
    h->idle_tail = t->idle_prev;
  t->idle_prev = t->idle_next = NULL;
  t->idle_queued = false;
}

void weft__hub_idle_stamped(weft__hub *h, weft_task *t) {
  if (t->idle_queued)
    unlink_idle(h, t);
  t->idle_queued = true;
  t->idle_prev = h->idle_tail;
  if (h->idle_tail)
    h->idle_tail->idle_next = t;
  else
    h->idle_head = t;
  h->idle_tail = t;
}

void weft__hub_idle_forget(weft__hub *h, weft_task *t) { unlink_idle(h, t); }

/* What runs on t's behalf (itself, or a generator it resumed that
 * parked in its place) has its dead stack pages given back. */
static void trim(weft_task *t) {
  weft__coro *co = t->active;
  void *sp = weft__machine_sp(&co->ctx.machine);
  if (sp)
    weft__stack_trim_below(&co->stack, sp);
}

/* Whether nothing but t itself reads or writes t's stack while it is
 * parked: its program promised so (weft_task_opts.hibernate), and it
 * parked on its own stack (not in a generator it resumed), and not on a
 * waiter (whose node, in its frame, a primitive's queue links to and a
 * waker writes) nor in a join (whose node is in the joined task's list).
 * So it waits on an fd or a timer: an idle connection, a sleep. */
static bool hibernatable(const weft_task *t) {
  return t->hibernate && t->active == &t->coro && !t->waiter && !t->waits_for;
}

/* Copies t's live frames, from its stack pointer up to the top of its
 * stack, into a buffer of their size, and gives the whole stack back.
 * Nothing below the stack pointer is live in a suspended context: the
 * switch saved the registers at and above it (switch-<arch>.S), and no
 * leaf function's red zone survives a call to the switch. Trims instead
 * when there is no memory for the buffer. */
static void hibernate(weft_task *t) {
  weft__coro *co = &t->coro;
  char *from = weft__machine_sp(&co->ctx.machine);
  if (!from)
    return;
  char *top = co->stack.lo + co->stack.size;
  size_t n = (size_t)(top - from);
  void *frames = malloc(n);
  if (!frames) {
    trim(t);
    return;
  }
  weft__tools_copy_stack(frames, from, n);
  weft__stack_give_back(&co->stack);
  t->frames = frames;
  t->frames_len = n;
}

void weft__task_thaw(weft_task *t) {
  weft__coro *co = &t->coro;
  char *top = co->stack.lo + co->stack.size;
  weft__tools_copy_stack(top - t->frames_len, t->frames, t->frames_len);
  free(t->frames);
  t->frames = NULL;
  t->frames_len = 0;
}

void weft__hub_idle_sweep(weft__hub *h, int64_t now) {
  weft_task *t;
  while ((t = h->idle_head) != NULL) {
    bool parked = t->state == WEFT__TASK_PARKED && !t->unstamped;
    if (parked && weft__hub_idle_due(h) > now)
      break; /* the rest parked later */
    if (parked && t == h->current)
      break; /* parking now (the sweep runs in its switch, before its stack
                pointer is saved): the next sweep takes it */
    unlink_idle(h, t);
    if (parked && hibernatable(t))
      hibernate(t);
    else if (parked)
      trim(t);
  }
}
