/*
 * weft_queue: a bounded queue of messages between processes, in a region
 * of its own. See include/weft/shm.h.
 *
 * The region starts with struct qshared, then the ring of `capacity`
 * bytes at DATA_OFFSET. A message is a record: an 8-byte header (its
 * length, and the length's complement as a check) then its bytes, padded
 * to 8, so a header never wraps round the ring's end; the bytes may.
 * `head` and `tail` are byte positions that only grow: the ring holds the
 * records from head to tail, at positions modulo capacity.
 *
 * Everything in qshared below the lock is guarded by it, except the
 * waiting counts and the two words, which are atomics. Consistency at a
 * holder's death: a put writes the whole record past the tail, then moves
 * the tail in one store; a get copies the record out, then moves the head
 * in one store. So a holder killed anywhere leaves head and tail each
 * either before or after its change, never a half-written message inside
 * them; only `count` may be off by one, and the next holder, told by the
 * lock that the last one died, counts the records again (repair).
 *
 * Waking: a getter that finds the queue empty counts itself in
 * getters_waiting and notes not_empty's value, under the lock; a putter,
 * under the lock, bumps not_empty when someone waits, then wakes one
 * sleeper after it lets go. A woken getter that leaves messages behind
 * wakes the next waiting getter the same way, so no message waits while a
 * getter sleeps. Putters waiting for room mirror this on not_full. The
 * counts are hints: a stale one (a waiter cancelled, or killed) costs a
 * bump, never a lost wake.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "shm-private.h"

enum {
  QUEUE_MAGIC = 0x51746677, /* "wftQ" */
  QUEUE_VERSION = 1,
  RECORD_CHECK = 0x5752u,
  HEADER = 8,
  DATA_OFFSET = 256,
  CAPACITY_MIN = 64,
  CAPACITY_DEFAULT = 64 * 1024,
};
#define CAPACITY_MAX ((size_t)1 << 30)

struct qshared {
  uint32_t magic;
  uint32_t version;
  uint64_t capacity; /* of the ring, a multiple of 8 */
  uint64_t maxsize;  /* messages at most, 0: as many as fit */
  struct weft__plock lock;
  _Atomic uint64_t head, tail; /* under lock; atomic for one-store commits */
  uint64_t count;              /* under lock; recounted after a death */
  _Atomic uint32_t getters_waiting, putters_waiting;
  weft__shared_word not_empty, not_full; /* bumped to wake */
};

_Static_assert(sizeof(struct qshared) <= DATA_OFFSET, "queue header fits");

struct weft_queue {
  uint32_t magic;
  weft_shm *shm;
  struct qshared *s;
  unsigned char *ring;
};

struct record {
  uint32_t len;
  uint32_t check;
};

static bool valid(const weft_queue *q) { return q && q->magic == QUEUE_MAGIC; }

static uint64_t record_size(uint64_t len) { return HEADER + (len + 7) / 8 * 8; }

static void ring_write(weft_queue *q, uint64_t pos, const void *src, size_t n) {
  uint64_t cap = q->s->capacity, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(q->ring + off, src, first);
  memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(weft_queue *q, uint64_t pos, void *dst, size_t n) {
  uint64_t cap = q->s->capacity, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(dst, q->ring + off, first);
  memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* The length of the record at pos, or -EUCLEAN if its header is not one or
 * it runs past tail. */
static int64_t record_at(weft_queue *q, uint64_t pos, uint64_t tail) {
  struct record r;
  memcpy(&r, q->ring + pos % q->s->capacity, sizeof r);
  if ((r.check ^ RECORD_CHECK) != ~r.len || record_size(r.len) > tail - pos)
    return -EUCLEAN;
  return r.len;
}

/* Whether head and tail can be a queue's. Called with the lock held. */
static bool bounds_sound(const struct qshared *s, uint64_t head,
                         uint64_t tail) {
  return head <= tail && tail - head <= s->capacity && head % 8 == 0 &&
         tail % 8 == 0;
}

/* After a holder died: walks the records, counts them. -EUCLEAN if they
 * are not a queue's (memory overwritten: a death alone cannot do that). */
static int repair(weft_queue *q) {
  struct qshared *s = q->s;
  uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail), n = 0;
  if (!bounds_sound(s, head, tail))
    return -EUCLEAN;
  for (uint64_t pos = head; pos < tail; n++) {
    int64_t len = record_at(q, pos, tail);
    if (len < 0)
      return (int)len;
    pos += record_size((uint64_t)len);
  }
  s->count = n;
  return 0;
}

static int lock(weft_queue *q, int64_t deadline) {
  int rc = weft__plock_acquire(&q->s->lock, deadline);
  if (rc == -EOWNERDEAD) {
    rc = repair(q);
    if (rc < 0)
      weft__plock_release(&q->s->lock);
  }
  return rc;
}

static void unlock(weft_queue *q) { weft__plock_release(&q->s->lock); }

/* Bumps w for its waiters, under the lock; they are woken once it is let
 * go (weft__shared_word_wake). */
static bool bump_if_waited(_Atomic uint32_t *waiting, weft__shared_word *w) {
  if (!atomic_load_explicit(waiting, memory_order_relaxed))
    return false;
  atomic_fetch_add(&w->value, 1);
  return true;
}

/* The start of a put or a get: bad input, a cancelled task, and the
 * deadline. The lock is waited for even by a call that only looks
 * (timeout 0): it is held only for a copy. */
static int begin(weft_queue *q, int64_t timeout, int64_t *deadline) {
  if (!valid(q) || weft__timeout_bad(timeout))
    return -EINVAL;
  weft_task *self = weft__task_running();
  if (self && self->cancelled)
    return -ECANCELED;
  *deadline = weft__deadline_after(timeout);
  return lock(q, INT64_MAX);
}

/* Waits on w (the caller counted itself in *waiting and holds the lock,
 * which this lets go and takes again). Returns 0, or the wait's error with
 * the lock held (a timeout: the caller looks once more) or not (any other
 * error). */
static int wait_for(weft_queue *q, _Atomic uint32_t *waiting,
                    weft__shared_word *w, int64_t deadline) {
  atomic_fetch_add_explicit(waiting, 1, memory_order_relaxed);
  uint32_t seen = atomic_load(&w->value);
  unlock(q);
  int rc = weft__shared_word_wait(w, seen, deadline);
  atomic_fetch_sub_explicit(waiting, 1, memory_order_relaxed);
  if (rc < 0 && rc != -ETIMEDOUT)
    return rc;
  int lrc = lock(q, INT64_MAX);
  return lrc < 0 ? lrc : rc;
}

int weft_queue_put(weft_queue *q, const void *msg, size_t len,
                   int64_t timeout) {
  if (!msg && len > 0)
    return -EINVAL;
  if (valid(q) && len > weft_queue_max_message(q))
    return -EMSGSIZE;
  int64_t deadline;
  int rc = begin(q, timeout, &deadline);
  if (rc < 0)
    return rc;
  struct qshared *s = q->s;
  uint64_t need = record_size(len);
  for (;;) {
    uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail);
    if (!bounds_sound(s, head, tail)) {
      unlock(q);
      return -EUCLEAN;
    }
    if (need <= s->capacity - (tail - head) &&
        (s->maxsize == 0 || s->count < s->maxsize)) {
      struct record r = {.len = (uint32_t)len,
                         .check = ~(uint32_t)len ^ RECORD_CHECK};
      memcpy(q->ring + tail % s->capacity, &r, sizeof r);
      ring_write(q, tail + HEADER, msg, len);
      atomic_store_explicit(&s->tail, tail + need, memory_order_release);
      s->count++;
      bool wake_getter = bump_if_waited(&s->getters_waiting, &s->not_empty);
      bool wake_putter = s->capacity - (tail + need - head) >= HEADER + 8 &&
                         (s->maxsize == 0 || s->count < s->maxsize) &&
                         bump_if_waited(&s->putters_waiting, &s->not_full);
      unlock(q);
      if (wake_getter)
        weft__shared_word_wake(&s->not_empty, 1);
      if (wake_putter)
        weft__shared_word_wake(&s->not_full, 1);
      return 0;
    }
    if (timeout == 0 || rc == -ETIMEDOUT) {
      unlock(q);
      return -ETIMEDOUT;
    }
    rc = wait_for(q, &s->putters_waiting, &s->not_full, deadline);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc;
  }
}

ssize_t weft_queue_get(weft_queue *q, void *buf, size_t size, int64_t timeout) {
  if (!buf && size > 0)
    return -EINVAL;
  int64_t deadline;
  int rc = begin(q, timeout, &deadline);
  if (rc < 0)
    return rc;
  struct qshared *s = q->s;
  for (;;) {
    uint64_t head = atomic_load(&s->head), tail = atomic_load(&s->tail);
    if (!bounds_sound(s, head, tail)) {
      unlock(q);
      return -EUCLEAN;
    }
    if (head != tail) {
      int64_t len = record_at(q, head, tail);
      if (len < 0 || (uint64_t)len > size) {
        unlock(q);
        return len < 0 ? len : -EMSGSIZE;
      }
      ring_read(q, head + HEADER, buf, (size_t)len);
      atomic_store_explicit(&s->head, head + record_size((uint64_t)len),
                            memory_order_release);
      s->count--;
      bool wake_putter = bump_if_waited(&s->putters_waiting, &s->not_full);
      bool wake_getter =
          s->count > 0 && bump_if_waited(&s->getters_waiting, &s->not_empty);
      unlock(q);
      if (wake_putter)
        weft__shared_word_wake(&s->not_full, 1);
      if (wake_getter)
        weft__shared_word_wake(&s->not_empty, 1);
      return len;
    }
    if (timeout == 0 || rc == -ETIMEDOUT) {
      unlock(q);
      return -ETIMEDOUT;
    }
    rc = wait_for(q, &s->getters_waiting, &s->not_empty, deadline);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc;
  }
}

ssize_t weft_queue_qsize(weft_queue *q) {
  if (!valid(q))
    return -EINVAL;
  int rc = lock(q, INT64_MAX);
  if (rc < 0)
    return rc;
  ssize_t n = (ssize_t)q->s->count;
  unlock(q);
  return n;
}

size_t weft_queue_max_message(const weft_queue *q) {
  if (!valid(q))
    return 0;
  uint64_t room = q->s->capacity - HEADER;
  return room < UINT32_MAX ? (size_t)room : UINT32_MAX;
}

int weft_queue_fd(const weft_queue *q) {
  return valid(q) ? weft_shm_fd(q->shm) : -1;
}

static weft_queue *handle_of(weft_shm *shm) {
  weft_queue *q = malloc(sizeof *q);
  if (q)
    *q = (weft_queue){.magic = QUEUE_MAGIC,
                      .shm = shm,
                      .s = shm->addr,
                      .ring = (unsigned char *)shm->addr + DATA_OFFSET};
  return q;
}

int weft_queue_create(weft_queue **out, const weft_queue_opts *opts) {
  size_t capacity = opts && opts->capacity ? opts->capacity : CAPACITY_DEFAULT;
  if (!out || capacity < CAPACITY_MIN || capacity > CAPACITY_MAX)
    return -EINVAL;
  capacity = (capacity + 7) / 8 * 8;
  weft_shm *shm;
  int rc = weft_shm_create(&shm, DATA_OFFSET + capacity, "weft-queue");
  if (rc < 0)
    return rc;
  weft_queue *q = handle_of(shm);
  if (!q) {
    weft_shm_free(shm);
    return -ENOMEM;
  }
  struct qshared *s = q->s; /* zero-filled */
  s->version = QUEUE_VERSION;
  s->capacity = capacity;
  s->maxsize = opts ? opts->maxsize : 0;
  weft__plock_init(&s->lock);
  atomic_store_explicit((_Atomic uint32_t *)&s->magic, QUEUE_MAGIC,
                        memory_order_release);
  *out = q;
  return 0;
}

int weft_queue_open(weft_queue **out, int fd) {
  if (!out)
    return -EINVAL;
  weft_shm *shm;
  int rc = weft_shm_open(&shm, fd);
  if (rc < 0)
    return rc;
  const struct qshared *s = shm->addr;
  if (shm->size < DATA_OFFSET + CAPACITY_MIN ||
      atomic_load((_Atomic uint32_t *)&s->magic) != QUEUE_MAGIC)
    rc = -EINVAL;
  else if (s->version != QUEUE_VERSION || s->capacity < CAPACITY_MIN ||
           s->capacity % 8 || s->capacity > shm->size - DATA_OFFSET ||
           s->lock.magic != SHARED_LOCK_MAGIC ||
           !bounds_sound(s, atomic_load(&s->head), atomic_load(&s->tail)))
    rc = -EUCLEAN;
  weft_queue *q = rc == 0 ? handle_of(shm) : NULL;
  if (!q) {
    /* Unmapped, but fd stays the caller's. */
    munmap(shm->addr, shm->size);
    free(shm);
    return rc < 0 ? rc : -ENOMEM;
  }
  *out = q;
  return 0;
}

void weft_queue_free(weft_queue *q) {
  if (!valid(q))
    return;
  weft_shm_free(q->shm);
  q->magic = 0;
  free(q);
}
