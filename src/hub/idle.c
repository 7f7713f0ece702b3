/*
 * Idle stacks: the stack pages of tasks parked for long, given back to the
 * kernel. See hub-private.h.
 *
 * An idle queue is a list of the hub's tasks in the order of their
 * parked_at: weft__hub_stamp_parked moves each task it stamps to the
 * tail of its queue, and stamps only grow. Tasks with a threshold of their
 * own (weft_task_opts.idle_after) have a queue per threshold, so that each
 * queue's tasks fall due in its order. A task in the queue may have run since
 * its stamp (the sweep drops it then), or parked again without a stamp yet
 * (unstamped: the sweep drops it too, and the coming stamp queues it
 * again). Everything here runs on the hub's thread.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <weft/hub.h>

#include "../core/stack.h"
#include "../core/valgrind.h"
#include "hub-private.h"

int weft_hub_idle_after(int64_t after) {
  weft__hub *h = weft__hub_current;
  if (after < 0 && after != WEFT_FOREVER)
    return -EINVAL;
  if (!h)
    return -EPERM;
  h->idle[0].after = after == WEFT_FOREVER ? INT64_MAX : after;
  return 0;
}

int weft__hub_idle_queue_take_own(weft__hub *h, int64_t after) {
  if (after == WEFT_FOREVER)
    return WEFT__IDLE_NEVER;
  int free_q = -1;
  for (int i = 1; i < WEFT__IDLE_QUEUES; i++) {
    weft__idle_queue *q = &h->idle[i];
    if (q->tasks && q->after == after) {
      q->tasks++;
      return i;
    }
    if (!q->tasks && free_q < 0)
      free_q = i;
  }
  if (free_q < 0)
    return -ENOSPC;
  /* A free queue is empty: its last task left it before it was freed. */
  h->idle[free_q].after = after;
  h->idle[free_q].tasks = 1;
  if ((unsigned)free_q >= h->idle_queues)
    h->idle_queues = (unsigned)free_q + 1;
  return free_q;
}

static void unlink_idle(weft__hub *h, weft_task *t) {
  weft__idle_queue *q = &h->idle[t->idle_queue];
  if (t->idle_prev)
    t->idle_prev->idle_next = t->idle_next;
  else
    q->head = t->idle_next;
  if (t->idle_next)
    t->idle_next->idle_prev = t->idle_prev;
  else
    q->tail = t->idle_prev;
  t->idle_prev = t->idle_next = NULL;
  t->idle_queued = false;
}

void weft__hub_idle_stamped(weft__hub *h, weft_task *t) {
  if (t->idle_queue == WEFT__IDLE_NEVER)
    return;
  if (t->idle_queued)
    unlink_idle(h, t);
  weft__idle_queue *q = &h->idle[t->idle_queue];
  t->idle_queued = true;
  t->idle_prev = q->tail;
  if (q->tail)
    q->tail->idle_next = t;
  else
    q->head = t;
  q->tail = t;
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

/* Hibernated frames are kept packed: many words of an idle task's frames
 * are zero (a third of an idle httpd connection's: padding, NULL
 * pointers, cleared state), so the buffer holds a bitmap of the words
 * that are not, then those words. The frames are read and written as
 * plain words: under AddressSanitizer they lose the poison of their
 * redzones first (weft__tools_stack_reused), as copied generators' do. */
static size_t map_bytes(size_t words) { return (words + 7) / 8; }

/* Packs the n bytes of frames at `from` (n a multiple of 8) into a new
 * buffer; NULL without memory. */
static unsigned char *pack(char *from, size_t n) {
  size_t words = n / 8, map = map_bytes(words), kept = 0;
  weft__tools_stack_reused(from, n);
  weft__valgrind_make_defined(from, n);
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    memcpy(&w, from + i * 8, 8);
    kept += w != 0;
  }
  unsigned char *buf = malloc(map + kept * 8);
  if (!buf)
    return NULL;
  memset(buf, 0, map);
  unsigned char *out = buf + map;
  for (size_t i = 0; i < words; i++) {
    uint64_t w;
    memcpy(&w, from + i * 8, 8);
    if (w) {
      buf[i / 8] |= (unsigned char)(1u << (i % 8));
      memcpy(out, &w, 8);
      out += 8;
    }
  }
  return buf;
}

/* Writes the n bytes of frames packed in buf back at `to`. Only the words
 * that are not zero need storing: where the stack's pages were given
 * back it reads as zeros, and where they were not (a canary-guarded
 * stack's lowest page) it still holds these very frames, which nothing
 * wrote while the task was hibernated. */
static void unpack(char *to, const unsigned char *buf, size_t n) {
  const unsigned char *in = buf + map_bytes(n / 8);
  for (size_t b = 0; b < map_bytes(n / 8); b++)
    for (unsigned bits = buf[b]; bits; bits &= bits - 1) {
      memcpy(to + (b * 8 + (size_t)__builtin_ctz(bits)) * 8, in, 8);
      in += 8;
    }
}

/* Copies t's live frames, from its stack pointer up to the top of its
 * stack, packed into a buffer of their size, and gives the whole stack
 * back.
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
  /* A stack pointer is 8-byte aligned at least, and the top a page's. */
  void *frames = n % 8 == 0 ? pack(from, n) : NULL;
  if (!frames) {
    trim(t);
    return;
  }
  weft__stack_give_back(&co->stack);
  t->frames = frames;
  t->frames_len = n;
  t->before_run = true;
}

void weft__task_thaw(weft_task *t) {
  weft__coro *co = &t->coro;
  char *top = co->stack.lo + co->stack.size;
  weft__stack_commit_from(&co->stack, top - t->frames_len);
  unpack(top - t->frames_len, t->frames, t->frames_len);
  free(t->frames);
  t->frames = NULL;
  t->frames_len = 0;
}

/* Hibernates or trims the tasks of q due by now. */
static void sweep_queue(weft__hub *h, weft__idle_queue *q, int64_t now) {
  weft_task *t;
  while ((t = q->head) != NULL) {
    bool parked = t->state == WEFT__TASK_PARKED && !t->unstamped;
    if (parked && weft__idle_queue_due(q) > now)
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

void weft__hub_idle_sweep(weft__hub *h, int64_t now) {
  for (unsigned i = 0; i < h->idle_queues; i++)
    sweep_queue(h, &h->idle[i], now);
}
