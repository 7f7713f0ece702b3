/*
 * The program's view of an fd, kept for sockets. See view.h.
 *
 * A socket's record (its O_NONBLOCK as the program sees it, its access
 * mode, and whether it has a receive or send timeout) is kept in one
 * 32-bit word per fd number: the record in the low byte, a generation in
 * the rest. The words sit in chunks of CHUNK_FDS, made on first need and
 * never freed, so that a reader needs no lock and a drop no allocation.
 *
 * The invariant: a kept record describes the file the number names now,
 * as the program last set it. Every hooked call that breaks it (close,
 * dup2, dup3, close_range, closefrom, fclose; fcntl(F_SETFL),
 * ioctl(FIONBIO), setsockopt at SOL_SOCKET; a new number from accept, dup
 * or F_DUPFD) drops the record after the call has taken effect, by moving
 * the word to the next generation with no record. A filler reads the word
 * before the system calls that learn the record and stores the record
 * only if the word is still what it read (compare-and-swap): a drop in
 * between, which came after the change it stands for, makes the store
 * fail, so a record learnt before a change never outlives the drop. A
 * chunk is made before its first word is read, so a drop that finds no
 * chunk came before any filler's system calls on that number.
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
  RECORD = 0xffu,
  NEXT_GENERATION = 1u << 8,
};

#define CHUNK_FDS 1024
#define CHUNKS    1024 /* fds up to 1,048,575 are kept */

static uint32_t *chunks[CHUNKS];

/* The word of fd, or NULL: fd out of range, or its chunk not made (and
 * `make` false, or no memory). */
static uint32_t *word_of(int fd, bool make) {
  if (fd < 0 || fd >= CHUNK_FDS * CHUNKS)
    return NULL;
  uint32_t **slot = &chunks[fd / CHUNK_FDS];
  uint32_t *c = __atomic_load_n(slot, __ATOMIC_SEQ_CST);
  if (!c && make) {
    int saved = errno;
    uint32_t *fresh = calloc(CHUNK_FDS, sizeof *fresh);
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

static int access_mode(uint32_t record) {
  if ((record & (READS | WRITES)) == (READS | WRITES))
    return O_RDWR;
  return (record & WRITES) ? O_WRONLY : O_RDONLY;
}

static uint32_t record_of(int flags, weft__hook_timeout rcv,
                          weft__hook_timeout snd) {
  int mode = flags & O_ACCMODE;
  return KEPT | ((flags & O_NONBLOCK) ? NONBLOCK : 0) |
         (mode == O_RDONLY || mode == O_RDWR ? READS : 0) |
         (mode == O_WRONLY || mode == O_RDWR ? WRITES : 0) |
         (rcv >= 0 ? RCVTIMEO : 0) | (snd >= 0 ? SNDTIMEO : 0);
}

void weft__hook_view_of(int fd, unsigned dir, struct weft__hook_view *v) {
  int optname = dir == WEFT_IO_READ ? SO_RCVTIMEO : SO_SNDTIMEO;
  uint32_t *w = word_of(fd, true);
  uint32_t seen = w ? __atomic_load_n(w, __ATOMIC_SEQ_CST) : 0;
  if (seen & KEPT) {
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
  if (v->socket && w)
    __atomic_compare_exchange_n(
        w, &seen, (seen & ~RECORD) | record_of(v->flags, rcv, snd), false,
        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

bool weft__hook_view_kept_blocking(int fd, unsigned dir) {
  uint32_t *w = word_of(fd, false);
  uint32_t seen = w ? __atomic_load_n(w, __ATOMIC_SEQ_CST) : 0;
  uint32_t want = KEPT | (dir == WEFT_IO_READ ? READS : WRITES);
  uint32_t unwanted = NONBLOCK | (dir == WEFT_IO_READ ? RCVTIMEO : SNDTIMEO);
  return (seen & want) == want && !(seen & unwanted);
}

void weft__hook_view_drop(int fd) {
  uint32_t *w = word_of(fd, false);
  if (!w)
    return;
  uint32_t old = __atomic_load_n(w, __ATOMIC_SEQ_CST);
  while (!__atomic_compare_exchange_n(w, &old,
                                      (old & ~RECORD) + NEXT_GENERATION, false,
                                      __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
    ;
}

void weft__hook_view_drop_range(unsigned first, unsigned last) {
  if (last >= CHUNK_FDS * CHUNKS)
    last = CHUNK_FDS * CHUNKS - 1;
  for (unsigned fd = first; fd <= last;) {
    if (!__atomic_load_n(&chunks[fd / CHUNK_FDS], __ATOMIC_SEQ_CST)) {
      fd = (fd / CHUNK_FDS + 1) * CHUNK_FDS; /* nothing kept in this chunk */
      continue;
    }
    weft__hook_view_drop((int)fd);
    fd++;
  }
}
