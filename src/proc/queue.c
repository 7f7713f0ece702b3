/*
 * weft_queue: a bounded queue of messages between processes, in a region
 * of its own. See include/weft/shm.h.
 *
 * The region starts with struct qshared, then the ring of `capacity`
 * bytes at DATA_OFFSET. A message is a record: an 8-byte header (its
 * length, and the length's complement as a check) then its bytes, padded
 * to 8, so a header never wraps round the ring's end; the bytes may.
 *
 * Two locks, as in a two-lock queue: producers take put_lock and move the
 * tail, consumers take get_lock and move the head, so a producer and a
 * consumer never wait for each other's lock. Each position is one 64-bit
 * word: the byte position, modulo twice the capacity (so that a full ring
 * is told from an empty one), in its low half, and the count of messages
 * that passed it, modulo 2^32, in its high half. The ring holds the
 * records from head to tail; their number is the difference of the
 * counts.
 *
 * Consistency at a holder's death: a put writes the whole record past the
 * tail, then moves the tail in one store; a get copies the record out,
 * then moves the head in one store. So a holder killed anywhere leaves
 * each position before or after its change, never a half-written message
 * between them, and nothing to repair: the next holder, told by its lock
 * that the last one died, only looks afresh.
 *
 * Each side keeps what it last saw of the other's position (head_seen,
 * tail_seen, under its own lock), and looks at the other's cache line only
 * when that says full or empty. A position seen is never ahead of the real
 * one, so a side may think the ring fuller or emptier than it is, never
 * the reverse.
 *
 * Waking: a getter that finds the queue empty counts itself in
 * getters_waiting, notes not_empty's value, and looks at the tail once
 * more before it sleeps; a putter moves the tail, then reads
 * getters_waiting, and if someone waits bumps not_empty and wakes one
 * sleeper. All sequentially consistent (Dekker's pattern): either the
 * putter sees the waiter, or the waiter's last look sees the message. A
 * getter that leaves messages behind wakes the next waiting getter the
 * same way, so no message waits while a getter sleeps. Putters waiting
 * for room mirror this on not_full. The counts are hints: a stale one (a
 * waiter killed) costs a bump, never a lost wake.
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
  QUEUE_VERSION = 2,
  RECORD_CHECK = 0x5752u,
  HEADER = 8,
  DATA_OFFSET = 512,
  CAPACITY_MIN = 64,
  CAPACITY_DEFAULT = 64 * 1024,
};
#define CAPACITY_MAX ((size_t)1 << 30)

#define LINE _Alignas(64)

/* Where one side waits for the other (see "Waking" above). */
struct waitpoint {
  _Atomic uint32_t waiting;  /* counted in, under the side's lock */
  _Atomic uint32_t wake_out; /* a wake sent, its sleeper not yet back */
  weft__shared_word word;    /* bumped to wake */
};

/* How long a waiter sleeps at most before it looks again by itself: what
 * a message waits, at worst, when the waiter a wake went to was killed
 * before it could take it. */
#define RELOOK WEFT_MS(100)

struct qshared {
  uint32_t magic;
  uint32_t version;
  uint64_t capacity; /* of the ring, a multiple of 8 */
  uint64_t maxsize;  /* messages at most, 0: as many as fit */

  LINE struct weft__plock put_lock;
  LINE _Atomic uint64_t tail;     /* moved under put_lock */
  uint64_t head_seen;             /* under put_lock */
  LINE struct waitpoint not_full; /* putters wait for room */

  LINE struct weft__plock get_lock;
  LINE _Atomic uint64_t head;      /* moved under get_lock */
  uint64_t tail_seen;              /* under get_lock */
  LINE struct waitpoint not_empty; /* getters wait for a message */
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

/* A position's parts: the byte position, and the count of messages. */
static uint32_t pos_of(uint64_t p) { return (uint32_t)p; }
static uint32_t msgs_of(uint64_t p) { return (uint32_t)(p >> 32); }

/* Bytes from position a to position b, which is not behind it. */
static uint64_t span(const struct qshared *s, uint64_t a, uint64_t b) {
  uint64_t wrap = 2 * s->capacity;
  return (pos_of(b) + wrap - pos_of(a)) % wrap;
}

/* Position p moved past a record of `size` bytes. */
static uint64_t advance(const struct qshared *s, uint64_t p, uint64_t size) {
  uint64_t pos = (pos_of(p) + size) % (2 * s->capacity);
  return (uint64_t)(msgs_of(p) + 1u) << 32 | pos;
}

/* Whether from (a head) to to (a tail) can be a queue's contents. */
static bool sound(const struct qshared *s, uint64_t from, uint64_t to) {
  uint64_t bytes = span(s, from, to);
  uint32_t msgs = msgs_of(to) - msgs_of(from);
  return pos_of(from) < 2 * s->capacity && pos_of(to) < 2 * s->capacity &&
         pos_of(from) % 8 == 0 && pos_of(to) % 8 == 0 && bytes <= s->capacity &&
         (uint64_t)msgs * HEADER <= bytes && (msgs > 0) == (bytes > 0);
}

static void ring_write(weft_queue *q, uint64_t pos, const void *src, size_t n) {
  if (n == 0)
    return; /* an empty message, whose bytes may be NULL */
  uint64_t cap = q->s->capacity, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(q->ring + off, src, first);
  memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(weft_queue *q, uint64_t pos, void *dst, size_t n) {
  if (n == 0)
    return; /* an empty message, whose bytes may be NULL */
  uint64_t cap = q->s->capacity, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(dst, q->ring + off, first);
  memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* The length of the first record from head to tail, or -EUCLEAN if its
 * header is not one or it runs past the tail. */
static int64_t first_record(weft_queue *q, uint64_t head, uint64_t tail) {
  struct record r;
  memcpy(&r, q->ring + pos_of(head) % q->s->capacity, sizeof r);
  if ((r.check ^ RECORD_CHECK) != ~r.len ||
      record_size(r.len) > span(q->s, head, tail))
    return -EUCLEAN;
  return r.len;
}

/* Takes a side's lock. After a holder's death there is nothing to put
 * right (see above); the side's view of the other is refreshed. */
static int lock_side(weft_queue *q, bool put) {
  struct qshared *s = q->s;
  int rc = weft__plock_acquire(put ? &s->put_lock : &s->get_lock, INT64_MAX);
  if (rc == -EOWNERDEAD) {
    if (put)
      s->head_seen = atomic_load(&s->head);
    else
      s->tail_seen = atomic_load(&s->tail);
    rc = 0;
  }
  return rc;
}

static void unlock_side(weft_queue *q, bool put) {
  weft__plock_release(put ? &q->s->put_lock : &q->s->get_lock);
}

/* After the caller moved its position (sequentially consistent), under
 * its lock: whether someone waits at wp and no wake is out already; if so
 * bumps its word, and the caller wakes it (wake) once its lock is let go.
 * One wake out at a time: the waiter it reaches takes what there is, and
 * wakes the next if it leaves more (so a stream of puts to sleeping
 * getters costs a wake per getter's turn, not one per message). */
static bool notify(struct waitpoint *wp) {
  if (!atomic_load(&wp->waiting) || atomic_load(&wp->wake_out) ||
      atomic_exchange(&wp->wake_out, 1))
    return false;
  atomic_fetch_add(&wp->word.value, 1);
  return true;
}

static void wake(struct waitpoint *wp) {
  /* Nobody asleep to take it (the waiter was still spinning, and the bump
   * ends its spin; or it left): no wake is out. */
  if (weft__shared_word_wake(&wp->word, 1) == 0)
    atomic_store(&wp->wake_out, 0);
}

/* Counts the caller in at wp, under its side's lock, and returns the
 * word's value to sleep on, once the caller has looked at the other side
 * again (Dekker's pattern, see above). */
static uint32_t wait_begin(struct waitpoint *wp) {
  atomic_fetch_add(&wp->waiting, 1);
  return atomic_load(&wp->word.value);
}

static void wait_cancel(struct waitpoint *wp) {
  atomic_fetch_sub(&wp->waiting, 1);
}

/* Sleeps at wp (the side's lock let go) until a wake, the deadline, or
 * RELOOK. Returns 0, -ETIMEDOUT or -ECANCELED. */
static int wait_sleep(struct waitpoint *wp, uint32_t seen, int64_t deadline) {
  int64_t relook = weft__deadline_after(RELOOK);
  int rc = weft__shared_word_wait(&wp->word, seen,
                                  relook < deadline ? relook : deadline);
  if (rc == -ETIMEDOUT && relook < deadline)
    rc = 0;
  atomic_fetch_sub(&wp->waiting, 1);
  /* Back, for whatever reason: a wake out may have been this one's. */
  atomic_store(&wp->wake_out, 0);
  return rc;
}

/* The start of a put or a get: bad input, a cancelled task, the deadline,
 * and the side's lock. The lock is waited for even by a call that only
 * looks (timeout 0): it is held only for a copy. */
static int begin(weft_queue *q, bool put, int64_t timeout, int64_t *deadline) {
  if (!valid(q) || weft__timeout_bad(timeout))
    return -EINVAL;
  weft_task *self = weft__task_running();
  if (self && self->cancelled)
    return -ECANCELED;
  *deadline = weft__deadline_after(timeout);
  return lock_side(q, put);
}

int weft_queue_put(weft_queue *q, const void *msg, size_t len,
                   int64_t timeout) {
  if (!msg && len > 0)
    return -EINVAL;
  if (valid(q) && len > weft_queue_max_message(q))
    return -EMSGSIZE;
  int64_t deadline;
  int rc = begin(q, true, timeout, &deadline);
  if (rc < 0)
    return rc;
  struct qshared *s = q->s;
  uint64_t need = record_size(len);
  bool looked = false; /* at the head, since the last wait */
  for (;;) {
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    uint64_t head = s->head_seen;
    if (!sound(s, head, tail)) {
      unlock_side(q, true);
      return -EUCLEAN;
    }
    bool fits = need <= s->capacity - span(s, head, tail) &&
                (s->maxsize == 0 || msgs_of(tail) - msgs_of(head) < s->maxsize);
    if (!fits && !looked) {
      s->head_seen = atomic_load_explicit(&s->head, memory_order_acquire);
      looked = true;
      continue;
    }
    if (fits) {
      struct record r = {.len = (uint32_t)len,
                         .check = ~(uint32_t)len ^ RECORD_CHECK};
      memcpy(q->ring + pos_of(tail) % s->capacity, &r, sizeof r);
      ring_write(q, pos_of(tail) + HEADER, msg, len);
      uint64_t moved = advance(s, tail, need);
      atomic_store(&s->tail, moved); /* the commit */
      bool wake_getter = notify(&s->not_empty);
      bool wake_putter = s->capacity - span(s, head, moved) >= HEADER + 8 &&
                         notify(&s->not_full);
      unlock_side(q, true);
      if (wake_getter)
        wake(&s->not_empty);
      if (wake_putter)
        wake(&s->not_full);
      return 0;
    }
    if (timeout == 0 || rc == -ETIMEDOUT) {
      unlock_side(q, true);
      return -ETIMEDOUT;
    }
    /* Count in, note the word, and look once more (see above). */
    uint32_t seen = wait_begin(&s->not_full);
    if (atomic_load(&s->head) != head) {
      wait_cancel(&s->not_full);
      looked = false;
      continue;
    }
    unlock_side(q, true);
    rc = wait_sleep(&s->not_full, seen, deadline);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc;
    int lrc = lock_side(q, true);
    if (lrc < 0)
      return lrc;
    looked = false;
  }
}

ssize_t weft_queue_get(weft_queue *q, void *buf, size_t size, int64_t timeout) {
  if (!buf && size > 0)
    return -EINVAL;
  int64_t deadline;
  int rc = begin(q, false, timeout, &deadline);
  if (rc < 0)
    return rc;
  struct qshared *s = q->s;
  bool looked = false; /* at the tail, since the last wait */
  for (;;) {
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    uint64_t tail = s->tail_seen;
    if (!sound(s, head, tail)) {
      unlock_side(q, false);
      return -EUCLEAN;
    }
    if (head == tail && !looked) {
      s->tail_seen = atomic_load_explicit(&s->tail, memory_order_acquire);
      looked = true;
      continue;
    }
    if (head != tail) {
      int64_t len = first_record(q, head, tail);
      if (len < 0 || (uint64_t)len > size) {
        unlock_side(q, false);
        return len < 0 ? len : -EMSGSIZE;
      }
      ring_read(q, pos_of(head) + HEADER, buf, (size_t)len);
      uint64_t moved = advance(s, head, record_size((uint64_t)len));
      atomic_store(&s->head, moved); /* the commit */
      bool wake_putter = notify(&s->not_full);
      bool wake_getter = moved != tail && notify(&s->not_empty);
      unlock_side(q, false);
      if (wake_putter)
        wake(&s->not_full);
      if (wake_getter)
        wake(&s->not_empty);
      return len;
    }
    if (timeout == 0 || rc == -ETIMEDOUT) {
      unlock_side(q, false);
      return -ETIMEDOUT;
    }
    uint32_t seen = wait_begin(&s->not_empty);
    if (atomic_load(&s->tail) != tail) {
      wait_cancel(&s->not_empty);
      looked = false;
      continue;
    }
    unlock_side(q, false);
    rc = wait_sleep(&s->not_empty, seen, deadline);
    if (rc < 0 && rc != -ETIMEDOUT)
      return rc;
    int lrc = lock_side(q, false);
    if (lrc < 0)
      return lrc;
    looked = false;
  }
}

ssize_t weft_queue_qsize(weft_queue *q) {
  if (!valid(q))
    return -EINVAL;
  /* Under the consumers' lock, the head stays put while the tail is read,
   * so the two make a queue's contents. */
  int rc = lock_side(q, false);
  if (rc < 0)
    return rc;
  uint64_t head = atomic_load(&q->s->head);
  uint64_t tail = atomic_load(&q->s->tail);
  unlock_side(q, false);
  if (!sound(q->s, head, tail))
    return -EUCLEAN;
  return (ssize_t)(uint32_t)(msgs_of(tail) - msgs_of(head));
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
  weft__plock_init(&s->put_lock);
  weft__plock_init(&s->get_lock);
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
           s->put_lock.magic != SHARED_LOCK_MAGIC ||
           s->get_lock.magic != SHARED_LOCK_MAGIC ||
           !sound(s, atomic_load(&s->head), atomic_load(&s->tail)))
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
