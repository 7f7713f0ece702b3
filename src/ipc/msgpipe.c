/*
 * weft_msgpipe: framed messages over a pipe or a stream socket. See
 * include/weft/ipc.h.
 *
 * A message is its length (8 bytes, this machine's order: both ends are on
 * one machine) and then its bytes. Each end has a lock per direction, so
 * that one sender and one receiver may work at once, from any tasks and
 * threads. A receive that times out keeps what it has read of a message in
 * the handle, and the next receive goes on from there. A send that times
 * out with part of its message written cannot take it back: this end is
 * broken from then on (-EPIPE), and the peer sees the message cut short
 * (-EPROTO) once this end is closed.
 *
 * On a socket, writes go through send(MSG_NOSIGNAL); on a pipe, the
 * calling thread blocks SIGPIPE around the write and takes back a SIGPIPE
 * it caused (not one pending before: src/core/sigpipe.h), so that a reader
 * gone away is -EPIPE, never a dead process.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <weft/io.h>
#include <weft/ipc.h>
#include <weft/sync.h>

#include "../core/sigpipe.h"
#include "../hub/timer.h"

#define MSGPIPE_MAGIC 0x6d736770u /* "msgp" */

struct weft_msgpipe {
  uint32_t magic;
  int fd;
  bool socket;
  bool broken; /* a send was cut: nothing more goes out (send_lock) */
  weft_lock send_lock, recv_lock;
  /* The message being received (recv_lock): its header, and its bytes. */
  uint64_t want;
  size_t head_got; /* of the 8 header bytes */
  char *body;
  size_t body_got;
};

static bool valid(const weft_msgpipe *m) {
  return m && m->magic == MSGPIPE_MAGIC;
}

int weft_msgpipe_open(weft_msgpipe **out, int fd) {
  if (!out || fd < 0)
    return -EINVAL;
  int type;
  socklen_t len = sizeof type;
  bool socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
  if (!socket && errno != ENOTSOCK)
    return -errno; /* -EBADF */
  if (socket && type != SOCK_STREAM)
    return -EINVAL;
  weft_msgpipe *m = calloc(1, sizeof *m);
  if (!m)
    return -ENOMEM;
  m->magic = MSGPIPE_MAGIC;
  m->fd = fd;
  m->socket = socket;
  weft_lock_init(&m->send_lock, "msgpipe send");
  weft_lock_init(&m->recv_lock, "msgpipe recv");
  *out = m;
  return 0;
}

int weft_msgpipe_pair(weft_msgpipe **a, weft_msgpipe **b) {
  if (!a || !b)
    return -EINVAL;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
    return -errno;
  int rc = weft_msgpipe_open(a, sv[0]);
  if (rc == 0) {
    rc = weft_msgpipe_open(b, sv[1]);
    if (rc < 0) {
      weft_msgpipe_free(*a);
      *a = NULL;
      close(sv[1]);
    }
  } else {
    close(sv[0]);
    close(sv[1]);
  }
  return rc;
}

int weft_msgpipe_fd(const weft_msgpipe *m) { return valid(m) ? m->fd : -1; }

/* One writev to a pipe, with SIGPIPE blocked only around a try that
 * cannot park: the mask is the thread's, and while a task waited, the
 * other tasks of its hub would run with SIGPIPE blocked (a child one of
 * them starts would keep it; a signal one of them blocks meanwhile would
 * be undone by the restore). A task whose try would block waits for room
 * unguarded and returns 0 (nothing written: the caller tries again); a
 * plain thread may block in the write itself, as a plain writev does. */
static ssize_t write_pipe(weft_msgpipe *m, const struct iovec *iov, int n,
                          int64_t left) {
  bool in_task = weft_task_current() != NULL;
  weft__sigpipe_guard g;
  weft__sigpipe_block(&g);
  ssize_t w = weft_io_writev(m->fd, iov, n, in_task ? 0 : left);
  weft__sigpipe_unblock(&g, w == -EPIPE);
  if (w != -ETIMEDOUT || !in_task || left == 0)
    return w;
  int rc = weft_io_wait(m->fd, WEFT_IO_WRITE, left);
  return rc < 0 ? rc : 0;
}

/* Writes some of iov (advancing it), as one send or writev; the count, or
 * an error (-EPIPE for a reader gone, never SIGPIPE). */
static ssize_t write_some(weft_msgpipe *m, struct iovec *iov, int *n,
                          int64_t left) {
  ssize_t w;
  if (m->socket) {
    struct iovec *v = &iov[0];
    w = weft_io_send(m->fd, v->iov_base, v->iov_len, 0, left);
  } else {
    w = write_pipe(m, iov, *n, left);
  }
  if (w < 0)
    return w;
  size_t done = (size_t)w;
  while (*n > 0 && done >= iov[0].iov_len) {
    done -= iov[0].iov_len;
    memmove(iov, iov + 1, (size_t)(*n - 1) * sizeof *iov);
    (*n)--;
  }
  if (*n > 0) {
    iov[0].iov_base = (char *)iov[0].iov_base + done;
    iov[0].iov_len -= done;
  }
  return w;
}

int weft_msgpipe_send(weft_msgpipe *m, const void *msg, size_t len,
                      int64_t timeout) {
  if (!valid(m) || (!msg && len > 0) || weft__timeout_bad(timeout))
    return -EINVAL;
  if (len > WEFT_MSGPIPE_MAX)
    return -EMSGSIZE;
  int64_t deadline = weft__deadline_after(timeout);
  int rc = weft_lock_acquire(&m->send_lock, timeout);
  if (rc < 0)
    return rc;
  if (m->broken) {
    weft_lock_release(&m->send_lock);
    return -EPIPE;
  }
  uint64_t head = len;
  struct iovec iov[2] = {{&head, sizeof head}, {(void *)msg, len}};
  int n = len ? 2 : 1;
  size_t sent = 0;
  while (n > 0) {
    int64_t left =
        deadline == INT64_MAX ? WEFT_FOREVER : deadline - weft__now();
    if (deadline != INT64_MAX && left < 0)
      left = 0;
    ssize_t w = write_some(m, iov, &n, left);
    if (w < 0) {
      rc = (int)w;
      break;
    }
    sent += (size_t)w;
  }
  if (rc < 0 && sent > 0)
    m->broken = true; /* cut in the middle: the stream is no longer framed */
  weft_lock_release(&m->send_lock);
  return rc < 0 ? rc : 0;
}

/* Reads into buf what is still to come of the header or the body; 0 at the
 * end of the stream, or the count, or an error. */
static ssize_t read_some(weft_msgpipe *m, void *buf, size_t len, int64_t left) {
  return m->socket ? weft_io_recv(m->fd, buf, len, 0, left)
                   : weft_io_read(m->fd, buf, len, left);
}

int weft_msgpipe_recv(weft_msgpipe *m, void **msg, size_t *len,
                      int64_t timeout) {
  if (!valid(m) || !msg || !len || weft__timeout_bad(timeout))
    return -EINVAL;
  int64_t deadline = weft__deadline_after(timeout);
  int rc = weft_lock_acquire(&m->recv_lock, timeout);
  if (rc < 0)
    return rc;
  for (;;) {
    bool in_head = m->head_got < sizeof m->want;
    if (!in_head) {
      if (m->want > WEFT_MSGPIPE_MAX) {
        rc = -EPROTO; /* not a frame of ours */
        break;
      }
      if (!m->body) { /* after a -ENOMEM, the next receive tries again */
        m->body = malloc(m->want ? m->want : 1);
        if (!m->body) {
          rc = -ENOMEM;
          break;
        }
        m->body_got = 0;
      }
      if (m->body_got == m->want)
        break; /* whole */
    }
    int64_t left =
        deadline == INT64_MAX ? WEFT_FOREVER : deadline - weft__now();
    if (deadline != INT64_MAX && left < 0)
      left = 0;
    ssize_t r = in_head ? read_some(m, (char *)&m->want + m->head_got,
                                    sizeof m->want - m->head_got, left)
                        : read_some(m, m->body + m->body_got,
                                    m->want - m->body_got, left);
    /* The end, or a reset (a writer that died with data it had not read
     * still in its socket: the kernel then reports ECONNRESET once what
     * came is read): between messages the writer is gone (-EPIPE); in the
     * middle of one, what was read of it can never be whole (-EPROTO). */
    if (r == 0 || r == -ECONNRESET) {
      rc = m->head_got == 0 ? -EPIPE : -EPROTO;
      break;
    }
    if (r < 0) {
      rc = (int)r;
      break;
    }
    if (in_head)
      m->head_got += (size_t)r;
    else
      m->body_got += (size_t)r;
  }
  if (rc == 0) {
    *msg = m->body;
    *len = m->want;
  }
  if (rc == 0 || rc == -EPIPE || rc == -EPROTO) {
    if (rc != 0)
      free(m->body);
    m->body = NULL;
    m->head_got = 0;
    m->body_got = 0;
    m->want = 0;
  }
  weft_lock_release(&m->recv_lock);
  return rc;
}

void weft_msgpipe_free(weft_msgpipe *m) {
  if (!valid(m))
    return;
  m->magic = 0;
  close(m->fd);
  free(m->body);
  free(m);
}
