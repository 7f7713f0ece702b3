/*
 * Where weft's reports go (weft_hub_report_to, weft_hub_on_report in
 * weft/hub.h): the hub's deadlock report, the lock-order report
 * (WEFT_LOCKCHECK) and the watchdog's that WEFT_WATCHDOG starts.
 */
#ifndef WEFT_HUB_REPORT_H
#define WEFT_HUB_REPORT_H

#include <stddef.h>

/* Delivers one whole report, text (NUL-terminated, n = strlen(text)), to
 * the destination chosen now: the program's function, or an fd (stderr
 * unless chosen). Never from a signal handler, and with none of weft's
 * internal locks held: the program's function may call weft. */
void weft__report(const char *text, size_t n);

/* A growing text, for a report built line by line: on a failed malloc it
 * keeps what it has (a report cut short beats none). */
struct weft__report_text {
  char *s;
  size_t len, cap;
};
void weft__report_add(struct weft__report_text *t, const char *line);
/* Delivers the text (if any) and frees it. */
void weft__report_send(struct weft__report_text *t);

#endif
