/*
 * The sections of the tour that live in files of their own; tour.c runs
 * them all in order.
 */
#ifndef WEFT_EXAMPLES_TOUR_H
#define WEFT_EXAMPLES_TOUR_H

void tour_section(const char *title);
void tour_threads(void);
void tour_locks(void);
void tour_processes(void);
void tour_shared_memory(void);
void tour_cluster(void);
void tour_hooks(void);
void tour_exec(void);
void tour_group(void);

#endif
