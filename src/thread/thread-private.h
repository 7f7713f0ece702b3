/*
 * What the thread layer offers the layers above it.
 */
#ifndef WEFT_THREAD_PRIVATE_H
#define WEFT_THREAD_PRIVATE_H

/* Waits for every non-daemon weft thread but the caller to end: what the
 * process does at exit (Python's threading._shutdown). Also for a child of
 * weft_proc_start, which ends by _exit. */
void weft__thread_wait_non_daemons(void);

#endif
