/*
 * Threads of weft's own (the reaper, the shared-memory watcher): plain
 * pthreads that nobody joins and that end with the process.
 */
#ifndef WEFT_CORE_SERVICE_THREAD_H
#define WEFT_CORE_SERVICE_THREAD_H

/* Starts fn(arg) on a detached pthread with a small stack (64 KiB) and
 * every signal blocked, so that signals stay the program's threads'.
 * Returns 0 or a negative errno (-EAGAIN, -ENOMEM). */
int weft__service_thread_start(void *(*fn)(void *), void *arg);

#endif
