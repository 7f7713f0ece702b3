/*
 * weft_queue: a bounded queue of messages between processes, in a region
 * of its own. See include/weft/shm.h.
 *
 * The region starts with struct qshared, then the ring of `capacity`
 * bytes at DATA_OFFSET. A message is a record: an 8-byte header then its
 * bytes, padded to 8, so a header never wraps round the ring's end; the
 * bytes may. The header is the commit: one 64-bit word, its message's
 * number (modulo 2^32), a bit that is never 0 in a header, and its length.
 *
 * Two locks, as in a two-lock queue: producers take put_lock and move the
 * tail, consumers take get_lock and move the head, so a producer and a
 * consumer never wait for each other's lock. Each position is one 64-bit
 * word: the byte position, modulo twice the capacity (so that a full ring
 * is told from an empty one), in its low half, and the count of messages
 * that passed it, modulo 2^32, in its high half.
 *
 * A put writes its bytes, then a 0 where the next header will go (the
 * ring keeps 8 bytes free for it), then its header, then moves the tail.
 * So the header at the tail is 0, but while a put is between its header
 * and its tail (or died there), and a getter needs no tail: the header at
 * the head is either 0 (nothing to get) or the next message's, with the
 * head's number; any other word there is corruption. A getter thus
 * touches the record's cache lines and not the producers' (one cache miss
 * a message where there were two; docs/shm.md has what it saved).
 *
 * The tail may so be one record behind the head: its message stored and
 * got, its put not yet at the tail. Only a producer, under its lock,
 * reads the ring at the tail (where, once the head is past, another lap's
 * bytes may be going); anyone else counts such a tail as the head
 * (one_behind).
 *
 * Consistency at a holder's death: a put writes the whole record, then
 * its header in one store; a get copies the record out, then moves the
 * head in one store. So a holder killed anywhere leaves no half-written
 * message, and at most a tail one record behind a header, which the next
 * producer, told by its lock that the last one died, moves on.
 *
 * Producers keep what they last saw of the head (head_seen, under their
 * lock), and look at the consumers' cache line only when that says full.
 * A head seen is never ahead of the real one, so a producer may think the
 * ring fuller than it is, never the reverse.
 *
 * Waiting: a getter that finds the queue empty first spins on the header
 * at the head, holding its lock. The head then stays, so that word is
 * written only by the put that commits there; were the lock let go, the
 * head could move on and a put copy a message's bytes over the word under
 * the spin (a data race, if a harmless one), and other getters would find
 * nothing to take meanwhile anyway. A putter that finds no room spins on
 * the head with its lock let go: a spin that writes nothing the getters
 * read costs them nothing. Then a waiter counts itself in at its
 * waitpoint (`waiting`; getters at not_empty), notes the word's value,
 * and looks once more before it sleeps on the word. A putter stores its
 * header, then reads `waiting`, and if someone waits bumps the word and
 * wakes one sleeper. All sequentially consistent (Dekker's pattern):
 * either the putter sees the waiter, or the waiter's last look sees the
 * message. One wake is out at a time (`wake_out`): the getter it reaches
 * takes a message and, if it leaves more, wakes the next waiting getter
 * the same way. A waiter that leaves with an error passes a wake on.
 * Putters waiting for room mirror all this on not_full. The counts are
 * hints: a stale one (a waiter killed) costs a bump, never a lost wake,
 * and no sleep lasts more than 100 ms (shared-wait.h).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "../core/cpu.h"
#include "../hub/hub-private.h"
#include "../hub/timer.h"
#include "shm-private.h"

enum {
  QUEUE_MAGIC = 0x51746677, /* "wftQ" */
  QUEUE_VERSION = 3,
  HEADER = 8,
  DATA_OFFSET = 512,
  CAPACITY_MIN = 64,
  CAPACITY_DEFAULT = 64 * 1024,
  QSIZE_TRIES = 64,
};
#define CAPACITY_MAX ((size_t)1 << 30)
/* In every header, so that none is 0; lengths are below it. */
#define HEADER_MARK ((uint64_t)1 << 31)

#define LINE _Alignas(64)

/* Where one side waits for the other (see "Waiting" above). */
struct waitpoint {
  _Atomic uint32_t waiting;  /* counted in, under the side's lock */
  _Atomic uint32_t wake_out; /* a wake sent, its sleeper not yet back */
  weft__shared_word word;    /* bumped to wake */
};

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
  LINE struct waitpoint not_empty; /* getters wait for a message */
};

_Static_assert(sizeof(struct qshared) <= DATA_OFFSET, "queue header fits");

struct weft_queue {
  uint32_t magic;
  weft_shm *shm;
  struct qshared *s;
  unsigned char *ring;
  /* The capacity, as checked against the mapping's size at create or
   * open: every bound is taken from this copy, never from the shared one,
   * which another process could overwrite (-EUCLEAN when they differ). */
  uint64_t cap;
};

static bool valid(const weft_queue *q) { return q && q->magic == QUEUE_MAGIC; }

static uint64_t record_size(uint64_t len) { return HEADER + (len + 7) / 8 * 8; }

/* A position's parts: the byte position, and the count of messages. */
static uint32_t pos_of(uint64_t p) { return (uint32_t)p; }
static uint32_t msgs_of(uint64_t p) { return (uint32_t)(p >> 32); }

/* Bytes from position a to position b, which is not behind it, in a ring
 * of cap bytes. */
static uint64_t span(uint64_t cap, uint64_t a, uint64_t b) {
  return (pos_of(b) + 2 * cap - pos_of(a)) % (2 * cap);
}

/* Position p moved past a record of `size` bytes. */
static uint64_t advance(uint64_t cap, uint64_t p, uint64_t size) {
  uint64_t pos = (pos_of(p) + size) % (2 * cap);
  return (uint64_t)(msgs_of(p) + 1u) << 32 | pos;
}

/* Whether a position can be one in a ring of cap bytes. */
static bool sound_pos(uint64_t cap, uint64_t p) {
  return pos_of(p) < 2 * cap && pos_of(p) % 8 == 0;
}

/* Whether from (a head) to to (a tail) can be a queue's contents. */
static bool sound(uint64_t cap, uint64_t from, uint64_t to) {
  uint64_t bytes = span(cap, from, to);
  uint32_t msgs = msgs_of(to) - msgs_of(from);
  return sound_pos(cap, from) && sound_pos(cap, to) && bytes <= cap &&
         (uint64_t)msgs * HEADER <= bytes && (msgs > 0) == (bytes > 0);
}

/* Whether a put of a record of `size` bytes fits between head and tail:
 * the ring keeps 8 bytes free for the 0 after the last record. */
static bool room_for(uint64_t cap, uint64_t head, uint64_t tail,
                     uint64_t size) {
  return size + HEADER <= cap - span(cap, head, tail);
}

/* The header of the record at position p (sound_pos). */
static _Atomic uint64_t *header_at(const weft_queue *q, uint64_t p) {
  return (_Atomic uint64_t *)(q->ring + pos_of(p) % q->cap);
}

static uint64_t header_of(uint64_t p, size_t len) {
  return (uint64_t)msgs_of(p) << 32 | HEADER_MARK | len;
}

/* The length in header h of the record at position p; -EAGAIN if h is 0
 * (no record yet); -EUCLEAN if h is not a header for p. */
static int64_t length_in(const weft_queue *q, uint64_t h, uint64_t p) {
  if (h == 0)
    return -EAGAIN;
  uint64_t len = h & (HEADER_MARK - 1);
  if ((h >> 32) != msgs_of(p) || !(h & HEADER_MARK) ||
      record_size(len) + HEADER > q->cap)
    return -EUCLEAN;
  return (int64_t)len;
}

/* Whether the tail is one record behind the head (see above). */
static bool one_behind(uint64_t cap, uint64_t head, uint64_t tail) {
  uint64_t bytes = span(cap, tail, head);
  return sound_pos(cap, head) && sound_pos(cap, tail) &&
         msgs_of(head) - msgs_of(tail) == 1 && bytes >= HEADER &&
         bytes <= cap - HEADER;
}

/* The number of messages from head to tail, read as a snapshot; -EUCLEAN
 * if the two cannot be a queue's. */
static ssize_t count(uint64_t cap, uint64_t head, uint64_t tail) {
  if (one_behind(cap, head, tail))
    return 0;
  if (!sound(cap, head, tail))
    return -EUCLEAN;
  return (ssize_t)(uint32_t)(msgs_of(tail) - msgs_of(head));
}

/* The tail after a producer's death, under the producers' lock: past the
 * record whose header the dead put stored (see above). */
static uint64_t tail_after_death(const weft_queue *q, uint64_t tail) {
  if (!sound_pos(q->cap, tail))
    return tail; /* for sound() to refuse */
  int64_t len = length_in(q, atomic_load(header_at(q, tail)), tail);
  return len < 0 ? tail : advance(q->cap, tail, record_size((uint64_t)len));
}

/* Asks for the cache lines the next puts will write, past the line of the
 * next header (which a getter that caught up may be polling) and within
 * the room there is, so that their coming from the getters' CPU overlaps
 * this put's commit instead of stalling the next one. Asked for after the
 * copy and before the commit: one and one, 70 ns a message to 61, and 230
 * to 140 while the VM's vCPUs are far apart; asked for after the unlock,
 * nothing; before the copy, worse. */
static void ready_next_lines(weft_queue *q, uint64_t head, uint64_t tail) {
  uint64_t room = q->cap - span(q->cap, head, tail);
  for (uint64_t ahead = 64; ahead <= 256 && ahead + 64 <= room; ahead += 64)
    weft__cpu_prefetch_for_write(q->ring + (pos_of(tail) + ahead) % q->cap);
}

static void ring_write(weft_queue *q, uint64_t pos, const void *src, size_t n) {
  if (n == 0)
    return; /* an empty message, whose bytes may be NULL */
  uint64_t cap = q->cap, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(q->ring + off, src, first);
  memcpy(q->ring, (const unsigned char *)src + first, n - first);
}

static void ring_read(weft_queue *q, uint64_t pos, void *dst, size_t n) {
  if (n == 0)
    return; /* an empty message, whose bytes may be NULL */
  uint64_t cap = q->cap, off = pos % cap;
  size_t first = n < cap - off ? n : (size_t)(cap - off);
  memcpy(dst, q->ring + off, first);
  memcpy((unsigned char *)dst + first, q->ring, n - first);
}

/* Takes a side's lock, until the deadline. After a producer's death the
 * tail is moved past a header it stored (see above), and head_seen
 * refreshed; after a consumer's, there is nothing to put right. */
static int lock_side(weft_queue *q, bool put, int64_t deadline) {
  struct qshared *s = q->s;
  int rc = weft__plock_acquire(put ? &s->put_lock : &s->get_lock, deadline);
  if (rc == -EOWNERDEAD) {
    if (put) {
      atomic_store(&s->tail, tail_after_death(q, atomic_load(&s->tail)));
      s->head_seen = atomic_load(&s->head);
    }
    rc = 0;
  }
  return rc;
}

static void unlock_side(weft_queue *q, bool put) {
  weft__plock_release(put ? &q->s->put_lock : &q->s->get_lock);
}

/* After the caller's commit (a sequentially consistent store: a put's
 * header, a get's head), under its lock: whether someone waits at wp and no
 * wake is out already; if so bumps its word, and the caller wakes it (wake)
 * once its lock is let go. One wake out at a time: the waiter it reaches takes
 * what there is, and wakes the next if it leaves more (so a stream of puts to
 * sleeping getters costs a wake per getter's turn, not one per message). */
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
  /* A wake out that no sleeper holds (the waker was killed before it
   * woke; or it woke a watcher whose tasks had left) would keep every
   * later notify quiet: with nobody asleep, none is out. */
  if (atomic_load(&wp->wake_out) && !atomic_load(&wp->word.sleepers))
    atomic_store(&wp->wake_out, 0);
  return atomic_load(&wp->word.value);
}

static void wait_cancel(struct waitpoint *wp) {
  atomic_fetch_sub(&wp->waiting, 1);
}

/* Sleeps at wp (the side's lock let go) until a wake or the deadline
 * (weft__shared_word_wait also returns now and then to look again).
 * Returns 0, -ETIMEDOUT or -ECANCELED. */
static int wait_sleep(struct waitpoint *wp, uint32_t seen, int64_t deadline) {
  int rc = weft__shared_word_sleep(&wp->word, seen, deadline);
  atomic_fetch_sub(&wp->waiting, 1);
  /* Back, for whatever reason: a wake out may have been this one's. */
  atomic_store(&wp->wake_out, 0);
  if (rc < 0 && notify(wp))
    wake(wp); /* leaving: what it may have been woken for goes to another */
  return rc;
}

/* A call that only looks (timeout 0) still waits this long for its
 * side's lock, which is held only for a copy. */
#define LOOK_LOCK_WAIT WEFT_MS(1)

/* The deadline to take a side's lock again after a wait that ended at
 * deadline: a last look, after a timeout, waits a moment for the lock. */
static int64_t relock_deadline(int64_t deadline) {
  if (deadline == INT64_MAX)
    return deadline; /* no clock to read */
  int64_t look = weft__deadline_after(LOOK_LOCK_WAIT);
  return deadline > look ? deadline : look;
}

/* The start of a put or a get: bad input, the deadline, and the side's
 * lock. */
static int begin(weft_queue *q, bool put, int64_t timeout, int64_t *deadline) {
  if (!valid(q) || weft__timeout_bad(timeout))
    return -EINVAL;
  if (q->s->capacity != q->cap)
    return -EUCLEAN;
  /* A cancelled task's call fails only where it would wait: in the
   * waits below, which look at the cancellation themselves. */
  *deadline = weft__deadline_after(timeout);
  return lock_side(
      q, put, timeout == 0 ? weft__deadline_after(LOOK_LOCK_WAIT) : *deadline);
}

/*
 * A put that found no room (put) or a get that found no message waits for
 * the word `other` (the head, or the header at the head) to change from
 * seen; the caller holds its side's lock, and has looked at that word
 * since it took it. First, once per call (*spun), a thread spins on the
 * word (see "Waiting" above for which lock it holds meanwhile); then it
 * counts itself in at its waitpoint, looks once more, and sleeps. Returns
 * 0 with the lock held, having set *timed_out if the deadline passed
 * (then the caller looks a last time), or an error with the lock let go
 * (-ECANCELED, or the lock not taken back in time).
 */
static int await_other_side(weft_queue *q, bool put, _Atomic uint64_t *other,
                            uint64_t seen, int64_t deadline, bool *spun,
                            bool *timed_out) {
  struct waitpoint *wp = put ? &q->s->not_full : &q->s->not_empty;
  if (!*spun && weft__shared_may_spin()) {
    *spun = true;
    if (put)
      unlock_side(q, put);
    weft__shared_spin_while(other, seen);
    return put ? lock_side(q, put, relock_deadline(deadline)) : 0;
  }
  uint32_t word = wait_begin(wp);
  if (atomic_load(other) != seen) {
    wait_cancel(wp);
    return 0;
  }
  unlock_side(q, put);
  int rc = wait_sleep(wp, word, deadline);
  if (rc < 0 && rc != -ETIMEDOUT)
    return rc;
  *timed_out = rc == -ETIMEDOUT;
  return lock_side(q, put, relock_deadline(deadline));
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
  bool spun = false;   /* on the head (await_other_side) */
  bool timed_out = false;
  for (;;) {
    uint64_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
    uint64_t head = s->head_seen;
    if (!sound(q->cap, head, tail)) {
      unlock_side(q, true);
      return -EUCLEAN;
    }
    bool fits = room_for(q->cap, head, tail, need) &&
                (s->maxsize == 0 || msgs_of(tail) - msgs_of(head) < s->maxsize);
    if (!fits && !looked) {
      s->head_seen = atomic_load_explicit(&s->head, memory_order_acquire);
      looked = true;
      continue;
    }
    if (fits) {
      ring_write(q, pos_of(tail) + HEADER, msg, len);
      uint64_t moved = advance(q->cap, tail, need);
      ready_next_lines(q, head, moved);
      atomic_store_explicit(header_at(q, moved), 0, memory_order_relaxed);
      /* The commit, sequentially consistent against a getter's count in
       * at not_empty (Dekker's pattern). */
      atomic_store(header_at(q, tail), header_of(tail, len));
      atomic_store_explicit(&s->tail, moved, memory_order_release);
      bool wake_getter = notify(&s->not_empty);
      /* Room left for another putter waiting? By the head as it is now,
       * if the one seen says no. */
      bool wake_putter =
          atomic_load(&s->not_full.waiting) &&
          (room_for(q->cap, head, moved, HEADER) ||
           room_for(q->cap, atomic_load(&s->head), moved, HEADER)) &&
          notify(&s->not_full);
      unlock_side(q, true);
      if (wake_getter)
        wake(&s->not_empty);
      if (wake_putter)
        wake(&s->not_full);
      return 0;
    }
    if (timeout == 0 || timed_out) {
      unlock_side(q, true);
      return -ETIMEDOUT;
    }
    rc = await_other_side(q, true, &s->head, head, deadline, &spun, &timed_out);
    if (rc < 0)
      return rc;
    looked = false;
  }
}

/* For a get that found no header at the head: 0 if the queue is empty
 * indeed by its tail, -EAGAIN if a message came meanwhile, -EUCLEAN if
 * the tail says there is one where there is none. Looked at only before a
 * wait or a timeout, not on every look, to keep off the producers' line. */
static int empty_by_tail(weft_queue *q, uint64_t head) {
  ssize_t n = count(q->cap, head,
                    atomic_load_explicit(&q->s->tail, memory_order_acquire));
  if (n < 0)
    return (int)n;
  /* A message put meanwhile, or before the tail was read (its header
   * comes first): it is there now. */
  if (atomic_load(header_at(q, head)) != 0)
    return -EAGAIN;
  return n == 0 ? 0 : -EUCLEAN;
}

ssize_t weft_queue_get(weft_queue *q, void *buf, size_t size, int64_t timeout) {
  if (!buf && size > 0)
    return -EINVAL;
  int64_t deadline;
  int rc = begin(q, false, timeout, &deadline);
  if (rc < 0)
    return rc;
  struct qshared *s = q->s;
  bool spun = false; /* on the header (await_other_side) */
  bool timed_out = false;
  for (;;) {
    uint64_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
    if (!sound_pos(q->cap, head)) {
      unlock_side(q, false);
      return -EUCLEAN;
    }
    _Atomic uint64_t *at = header_at(q, head);
    uint64_t header = atomic_load_explicit(at, memory_order_acquire);
    int64_t len = length_in(q, header, head);
    if (len >= 0 && (uint64_t)len > size) {
      /* The message stays, for another getter, which may be waiting: this
       * one may have been woken for it. */
      bool pass_on = notify(&s->not_empty);
      unlock_side(q, false);
      if (pass_on)
        wake(&s->not_empty);
      return -EMSGSIZE;
    }
    if (len >= 0) {
      ring_read(q, pos_of(head) + HEADER, buf, (size_t)len);
      uint64_t moved = advance(q->cap, head, record_size((uint64_t)len));
      atomic_store(&s->head, moved); /* the commit */
      bool wake_putter = notify(&s->not_full);
      /* A message left for another getter waiting? */
      bool wake_getter = atomic_load(&s->not_empty.waiting) &&
                         atomic_load(header_at(q, moved)) != 0 &&
                         notify(&s->not_empty);
      unlock_side(q, false);
      if (wake_putter)
        wake(&s->not_full);
      if (wake_getter)
        wake(&s->not_empty);
      return len;
    }
    if (len == -EUCLEAN) {
      unlock_side(q, false);
      return len;
    }
    /* No message. Before a last look or a sleep (not before a spin, which
     * ends at the header), the tail must agree. */
    bool waits = timeout != 0 && !timed_out;
    if (!waits || spun || !weft__shared_may_spin()) {
      rc = empty_by_tail(q, head);
      if (rc == -EAGAIN)
        continue;
      if (rc < 0 || !waits) {
        unlock_side(q, false);
        return rc < 0 ? rc : -ETIMEDOUT;
      }
    }
    rc = await_other_side(q, false, at, header, deadline, &spun, &timed_out);
    if (rc < 0)
      return rc;
  }
}

ssize_t weft_queue_qsize(weft_queue *q) {
  if (!valid(q))
    return -EINVAL;
  /* A tail read while the head stayed put makes, with that head, a
   * queue's contents; without a lock, so that no stopped consumer holds
   * this up. From the positions only: a put between its header and its
   * tail, or dead there, is not counted yet (see above). */
  uint64_t head, tail;
  int tries = 0;
  do {
    if (++tries == QSIZE_TRIES) { /* consumers that never pause */
      int rc = lock_side(q, false, INT64_MAX);
      if (rc < 0)
        return rc;
      head = atomic_load(&q->s->head);
      tail = atomic_load(&q->s->tail);
      unlock_side(q, false);
      break;
    }
    head = atomic_load(&q->s->head);
    tail = atomic_load(&q->s->tail);
  } while (atomic_load(&q->s->head) != head);
  return count(q->cap, head, tail);
}

size_t weft_queue_max_message(const weft_queue *q) {
  if (!valid(q))
    return 0;
  uint64_t room = q->cap - 2 * HEADER; /* its header, and the 0 after */
  return room < UINT32_MAX ? (size_t)room : UINT32_MAX;
}

int weft_queue_fd(const weft_queue *q) {
  return valid(q) ? weft_shm_fd(q->shm) : -1;
}

static weft_queue *handle_of(weft_shm *shm, uint64_t cap) {
  weft_queue *q = malloc(sizeof *q);
  if (q)
    *q = (weft_queue){.magic = QUEUE_MAGIC,
                      .shm = shm,
                      .s = shm->addr,
                      .ring = (unsigned char *)shm->addr + DATA_OFFSET,
                      .cap = cap};
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
  weft_queue *q = handle_of(shm, capacity);
  struct qshared *s = shm->addr; /* zero-filled */
  rc = q ? weft__plock_init(&s->put_lock) : -ENOMEM;
  if (rc == 0)
    rc = weft__plock_init(&s->get_lock);
  if (rc < 0) {
    free(q);
    weft_shm_free(shm);
    return rc;
  }
  s->version = QUEUE_VERSION;
  s->capacity = capacity;
  s->maxsize = opts ? opts->maxsize : 0;
  weft__shared_mark(s, QUEUE_MAGIC);
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
  struct qshared *s = shm->addr;
  uint64_t cap = s->capacity; /* read once: then checked, then trusted */
  if (shm->size < DATA_OFFSET + CAPACITY_MIN ||
      !weft__shared_checked(s, QUEUE_MAGIC))
    rc = -EINVAL;
  else if (s->version != QUEUE_VERSION || cap < CAPACITY_MIN || cap % 8 ||
           cap > shm->size - DATA_OFFSET || !weft__plock_sound(&s->put_lock) ||
           !weft__plock_sound(&s->get_lock))
    rc = -EUCLEAN;
  weft_queue *q = rc == 0 ? handle_of(shm, cap) : NULL;
  if (q && weft_queue_qsize(q) < 0) { /* its positions, as qsize reads them */
    free(q);
    q = NULL;
    rc = -EUCLEAN;
  }
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
