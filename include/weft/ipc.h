/*
 * weft/ipc.h — talking between processes: message pipes here, and shared
 * memory with the locks, semaphores, events and queue that live in it in
 * weft/shm.h (included). The IPC layer sits above the process layer
 * (weft/proc.h starts the children these connect) and below the pools of
 * weft/exec.h, which carry their calls over it.
 *
 * Threads: every call may be made from any task or thread; a message
 * pipe's end takes one sender and one receiver at once (more wait their
 * turn). From a signal handler: none. After fork: an end inherited by the
 * child is the child's too, as the fd is (see weft_msgpipe_pair).
 */
#ifndef WEFT_IPC_H
#define WEFT_IPC_H

#include <stddef.h>
#include <stdint.h>
#include <weft/core.h>
#include <weft/shm.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Message pipes: whole messages of any length (up to WEFT_MSGPIPE_MAX)
 * over a pipe or a stream socket, Python's multiprocessing.Connection.
 * send and recv park only the calling task (a thread: sleep), take a
 * timeout, and are cancellable; one sender and one receiver may use an end
 * at once, from any tasks and threads (more wait their turn). A peer that
 * closed, or died, is an error, never a hang nor a SIGPIPE.
 *
 *     a, b = Pipe()                   weft_msgpipe_pair(&a, &b)
 *     a.send_bytes(m)                 weft_msgpipe_send(a, m, len, timeout)
 *     m = b.recv_bytes()              weft_msgpipe_recv(b, &m, &len, timeout)
 */
typedef struct weft_msgpipe weft_msgpipe;

#define WEFT_MSGPIPE_MAX ((size_t)1 << 30) /* 1 GiB */

/* weft_msgpipe_open — make an end of fd (a pipe's end, or a stream
 * socket), which it then owns: weft_msgpipe_free closes it. Returns 0;
 * -EINVAL (out NULL, fd negative, a socket not SOCK_STREAM); -EBADF;
 * -ENOMEM. */
WEFT_API int weft_msgpipe_open(weft_msgpipe **out, int fd);

/* weft_msgpipe_pair — two ends joined both ways (a socketpair, closed on
 * exec): give one to a child made by weft_proc_start, keep the other. As
 * with any pipe, a forked child inherits both ends: each side frees the
 * one it does not use, or a close on the other side is never seen as the
 * end. Returns 0; -EINVAL; -EMFILE, -ENFILE; -ENOMEM. */
WEFT_API int weft_msgpipe_pair(weft_msgpipe **a, weft_msgpipe **b);

/* weft_msgpipe_fd — the end's fd (to poll, say), or -1 for NULL. */
WEFT_API int weft_msgpipe_fd(const weft_msgpipe *m);

/*
 * weft_msgpipe_send — send msg's len bytes as one message. Returns 0;
 * -EPIPE (the reader closed or died, or this end was broken by an earlier
 * send cut short); -ETIMEDOUT or -ECANCELED (a task, or a task group's thread
 * member) — if part of the message had gone out by then, the end is broken: the
 * stream cannot be framed any more, and the peer will see the message cut
 * (-EPROTO); -EMSGSIZE (over WEFT_MSGPIPE_MAX); -EINVAL (a bad timeout too:
 * nothing is sent). Blocks while the pipe is full.
 */
WEFT_API int weft_msgpipe_send(weft_msgpipe *m, const void *msg, size_t len,
                               int64_t timeout);

/*
 * weft_msgpipe_recv — receive the next message whole: *msg (malloc'd, the
 * caller frees it; never NULL, even for an empty message) and *len.
 * Returns 0; -EPIPE (the writer closed or died between messages, whether
 * the kernel reports an end or a reset: no more will come); -EPROTO (the
 * writer closed or died, or its socket was reset, after part of a message
 * was read; or what came is not a message of weft's); -ETIMEDOUT or -ECANCELED
 * (a task: what came of a message so far is kept, and the next receive goes on
 * from there); -ENOMEM (tried again by the next receive); -EINVAL (a bad
 * timeout too). Blocks until a whole message is in.
 */
WEFT_API int weft_msgpipe_recv(weft_msgpipe *m, void **msg, size_t *len,
                               int64_t timeout);

/* weft_msgpipe_free — close the end (its fd too). Not while a send or a
 * receive on it is under way. NULL is ignored. */
WEFT_API void weft_msgpipe_free(weft_msgpipe *m);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_IPC_H */
