/*
 * The sections of the tour that live in files of their own; tour.c runs
 * them all in order.
 */
#ifndef WEFT_EXAMPLES_TOUR_H
#define WEFT_EXAMPLES_TOUR_H

void tour_section(const char *title);

struct sockaddr_in;
/* A listening TCP socket on 127.0.0.1, on a port of the kernel's choosing,
 * whose address goes to *addr; -1 if one cannot be made. */
int tour_listen_loopback(struct sockaddr_in *addr);
void tour_threads(void);
void tour_locks(void);
void tour_processes(void);
void tour_shared_memory(void);
void tour_cluster(void);
void tour_hooks(void);
void tour_exec(void);
void tour_group(void);

#endif
