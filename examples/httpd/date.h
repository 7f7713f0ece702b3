/*
 * Dates as HTTP writes them (RFC 9110's IMF-fixdate):
 * "Sun, 06 Nov 1994 08:49:37 GMT", always 29 bytes.
 */
#ifndef HTTPD_DATE_H
#define HTTPD_DATE_H

#include <time.h>

#define HTTPD_DATE_LEN 29

/* The current date, formatted once per second per thread: the string
 * lives until the thread's next call. */
const char *httpd_date_now(void);

/* Formats t into out (HTTPD_DATE_LEN bytes, no NUL). */
void httpd_date_format(char *out, time_t t);

#endif
