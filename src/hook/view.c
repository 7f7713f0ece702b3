/*
 * The program's view of an fd, kept for sockets. See view.h.
 *
 * A socket's record (its O_NONBLOCK as the program sees it, its access
 * mode, and whether it has a receive or send timeout) is kept in one
 * 64-bit word per fd number: the record in the low byte, a count of calls
 * under way that change the fd (holds) in the next, a generation in the
 * rest. The words sit in chunks of CHUNK_FDS, made on first need and never
 * freed, so that a reader needs no lock and a hold no allocation.
 *
 * The invariant: a kept record describes the file the number names now,
 * as the program last set it, and no record is used or kept while a call
 * that changes that is under way. Every hooked call that may change it
 * (close, dup2, dup3, close_range, closefrom, fclose; fcntl(F_SETFL),
 * ioctl(FIONBIO), setsockopt at SOL_SOCKET; the window in which connect
 * makes a socket non-blocking for itself) holds the fd's word before the
 * call and releases it after: both drop the record and move to the next
 * generation, and while a hold lasts the fd is looked at afresh each time.
 * Holding first matters for a close: once the number is free, another
 * thread may get it for a new file (socket(2), which is not hooked) and a
 * task use it at once, before the close's caller has returned. A new
 * number from accept, dup or F_DUPFD is dropped the same way. A filler
 * reads the word before the system calls that learn the record and stores
 * the record only if the word is still what it read, with no hold
 * (compare-and-swap): a hold or release in between makes the store fail,
 * so a record learnt before a change never outlives it. A chunk is made
 * before its first word is read, so a hold that finds no chunk came before
 * any filler's system calls on that number.
 *
 * What the hooks cannot see breaks the invariant: syscall(SYS_close) and
 * the like on a socket whose number is then reused, or another process
 * changing O_NONBLOCK on an open file description it shares. That is why
 * only sockets are kept: a process shares its terminal and pipes with
 * others far more often than its sockets. Sockets with a timeout keep only
 * that they have one; its value is read at each wait.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>

#include "view.h"

enum {
  KEPT = 1u << 0,
  NONBLOCK = 1u << 1,
  READS = 1u << 2,    /* the access mode allows reading */
  WRITES = 1u << 3,   /* ... writing */
  RCVTIMEO = 1u << 4, /* SO_RCVTIMEO is set */
  SNDTIMEO = 1u << 5, /* SO_SNDTIMEO is set */
};

#define RECORD          ((uint64_t)0xff)
#define HOLDS           ((uint64_t)0xff << 8)
#define ONE_HOLD        ((uint64_t)1 << 8)
#define NEXT_GENERATION ((uint64_t)1 << 16)

#define CHUNK_FDS 1024
#define CHUNKS    1024 /* fds up to 1,048,575 are kept */

static uint64_t *chunks[CHUNKS];

/* The word of fd, or NULL: fd out of range, or its chunk not made (and
 * `make` false, or no memory). */
static uint64_t *word_of(int fd, bool make) {
  if (fd < 0 || fd >= CHUNK_FDS * CHUNKS)
    return NULL;
  uint64_t **slot = &chunks[fd / CHUNK_FDS];
  uint64_t *c = __atomic_load_n(slot, __ATOMIC_SEQ_CST);
  if (!c && make) {
    int saved = errno;
    uint64_t *fresh = calloc(CHUNK_FDS, sizeof *fresh);
    errno = saved;
    if (!fresh)
      return NULL;
    if (__atomic_compare_exchange_n(slot, &c, fresh, false, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      c = fresh;
    else
      free(fresh); /* another thread made it first: c is its chunk */
  }
  return c ? &c[fd % CHUNK_FDS] : NULL;
}

/* Whether a word holds a record that may be used: kept, and no change of
 * the fd under way. */
static bool usable(uint64_t word) { return (word & KEPT) && !(word & HOLDS); }

static int access_mode(uint64_t record) {
  if ((record & (READS | WRITES)) == (READS | WRITES))
    return O_RDWR;
  return (record & WRITES) ? O_WRONLY : O_RDONLY;
}

static uint64_t record_of(int flags, weft__hook_timeout rcv,
                          weft__hook_timeout snd) {
  int mode = flags & O_ACCMODE;
  return KEPT | ((flags & O_NONBLOCK) ? NONBLOCK : 0) |
         (mode == O_RDONLY || mode == O_RDWR ? READS : 0) |
         (mode == O_WRONLY || mode == O_RDWR ? WRITES : 0) |
         (rcv >= 0 ? RCVTIMEO : 0) | (snd >= 0 ? SNDTIMEO : 0);
}

void weft__hook_view_of(int fd, unsigned dir, struct weft__hook_view *v) {
  int optname = dir == WEFT_IO_READ ? SO_RCVTIMEO : SO_SNDTIMEO;
  uint64_t *w = word_of(fd, true);
  uint64_t seen = w ? __atomic_load_n(w, __ATOMIC_SEQ_CST) : 0;
  if (usable(seen)) {
    v->flags = access_mode(seen) | ((seen & NONBLOCK) ? O_NONBLOCK : 0);
    v->socket = true;
    v->timeout = WEFT_FOREVER;
    if (seen & (dir == WEFT_IO_READ ? RCVTIMEO : SNDTIMEO))
      v->timeout = weft__hook_sock_timeout(fd, optname);
    return;
  }
  v->flags = weft__hook_user_flags(fd);
  v->socket = false;
  v->timeout = WEFT_FOREVER;
  if (v->flags < 0)
    return;
  weft__hook_timeout rcv, snd = WEFT_FOREVER;
  v->socket = weft__hook_socket_timeout(fd, SO_RCVTIMEO, &rcv);
  if (v->socket)
    snd = weft__hook_sock_timeout(fd, SO_SNDTIMEO);
  v->timeout = dir == WEFT_IO_READ ? rcv : snd;
  if (v->socket && w && !(seen & HOLDS))
    __atomic_compare_exchange_n(
        w, &seen, (seen & ~RECORD) | record_of(v->flags, rcv, snd), false,
        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

bool weft__hook_view_kept_blocking(int fd, unsigned dir) {
  uint64_t *w = word_of(fd, false);
  uint64_t seen = w ? __atomic_load_n(w, __ATOMIC_SEQ_CST) : 0;
  uint64_t want = dir == WEFT_IO_READ ? READS : WRITES;
  uint64_t unwanted = NONBLOCK | (dir == WEFT_IO_READ ? RCVTIMEO : SNDTIMEO);
  return usable(seen) && (seen & want) && !(seen & unwanted);
}

/* Moves fd's word to the next generation with no record, its holds
 * changed by `holds` (+1, -1 or 0). */
static void next_generation(int fd, int holds) {
  uint64_t *w = word_of(fd, false);
  if (!w)
    return;
  uint64_t old = __atomic_load_n(w, __ATOMIC_SEQ_CST), fresh;
  do {
    uint64_t h = (old & HOLDS) >> 8;
    if (holds > 0 && h < 0xff)
      h++;
    else if (holds < 0 && h > 0)
      h--;
    fresh = ((old & ~(RECORD | HOLDS)) + NEXT_GENERATION) | (h << 8);
  } while (!__atomic_compare_exchange_n(w, &old, fresh, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST));
}

void weft__hook_view_drop(int fd) { next_generation(fd, 0); }
void weft__hook_view_hold(int fd) { next_generation(fd, +1); }
void weft__hook_view_release(int fd) { next_generation(fd, -1); }

/* Calls each(fd) for the fds from first to last (both included) whose
 * chunk is made: the others have nothing kept nor any filler under way. */
static void each_kept(unsigned first, unsigned last, void (*each)(int)) {
  if (last >= CHUNK_FDS * CHUNKS)
    last = CHUNK_FDS * CHUNKS - 1;
  for (unsigned fd = first; fd <= last;) {
    if (!__atomic_load_n(&chunks[fd / CHUNK_FDS], __ATOMIC_SEQ_CST)) {
      fd = (fd / CHUNK_FDS + 1) * CHUNK_FDS;
      continue;
    }
    each((int)fd);
    fd++;
  }
}

void weft__hook_view_hold_range(unsigned first, unsigned last) {
  each_kept(first, last, weft__hook_view_hold);
}

void weft__hook_view_release_range(unsigned first, unsigned last) {
  each_kept(first, last, weft__hook_view_release);
}
