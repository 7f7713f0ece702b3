/*
 * weft/io.h — cooperative I/O: fd operations that block only the calling
 * task, not its thread.
 *
 * Inside a task, a call that would block parks the task until the fd is
 * ready, the timeout passes (-ETIMEDOUT), the task is cancelled
 * (-ECANCELED) or the fd is closed with weft_io_close (-EBADF); the hub runs
 * other tasks meanwhile. Outside a task the same calls block the thread,
 * as the plain system calls do, with the same timeouts.
 *
 * One task at a time may wait to read an fd, and one to write it; a second
 * gets -EBUSY (gevent refuses two greenlets on one socket the same way).
 *
 * This first part has the wait and the close; read, write, accept,
 * connect and the rest build on them next.
 */
#ifndef WEFT_IO_H
#define WEFT_IO_H

#include <stdint.h>
#include <weft/core.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WEFT_IO_READ  1u /* readable, a peer's EOF, or an error pending */
#define WEFT_IO_WRITE 2u /* writable, or an error pending */

/*
 * weft_io_wait — wait up to timeout ns until fd is readable and/or writable,
 * as events asks (WEFT_IO_READ, WEFT_IO_WRITE or both).
 *
 * Returns the events ready (a non-empty subset of what was asked; an
 * error or hang-up on the fd reports all that was asked, so that the next
 * read or write reports it), or: -ETIMEDOUT, -ECANCELED (in a task),
 * -EBADF (fd closed by weft_io_close while waiting, or not an open fd),
 * -EBUSY (another task waits on fd the same way), -EINVAL (events empty
 * or unknown), -EPERM (in a task with the epoll poller, an fd epoll cannot
 * watch, such as a regular file, which poll(2) reports always ready; or a
 * call from inside a generator that runs in a task), -ENOMEM. A timeout of
 * 0 polls and never blocks, so it reports readiness, not a cancellation.
 * Blocks the calling task (outside a task: the thread).
 */
WEFT_API int weft_io_wait(int fd, unsigned events, int64_t timeout);

/*
 * weft_io_close — close fd, first waking every task of this thread's hub
 * that waits on it with -EBADF (closing an fd others wait on with plain
 * close(2) leaves them waiting). Returns 0 or close(2)'s negative errno.
 * Does not block. From a task or any thread; tasks of other threads' hubs
 * are not woken.
 */
WEFT_API int weft_io_close(int fd);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_IO_H */
