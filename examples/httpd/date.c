/*
 * The Date header. Every response carries one, so the string is made once
 * per second and thread (the cache is thread-local, as a cluster worker
 * has one hub but a test may run several), and by hand: strftime would
 * consult the locale, and neither costs a connection's stack more than
 * gmtime_r does.
 */
#define _GNU_SOURCE
#include "date.h"

#include <string.h>
#include <time.h>

static void two(char *out, int v) {
  out[0] = (char)('0' + v / 10 % 10);
  out[1] = (char)('0' + v % 10);
}

void httpd_date_format(char *out, time_t t) {
  static const char days[] = "SunMonTueWedThuFriSat";
  static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
  struct tm tm;
  if (!gmtime_r(&t, &tm)) {
    memcpy(out, "Thu, 01 Jan 1970 00:00:00 GMT", HTTPD_DATE_LEN);
    return;
  }
  int year = tm.tm_year + 1900;
  if (year < 0)
    year = 0;
  if (year > 9999)
    year = 9999;
  memcpy(out, days + 3 * tm.tm_wday, 3);
  memcpy(out + 3, ", ", 2);
  two(out + 5, tm.tm_mday);
  out[7] = ' ';
  memcpy(out + 8, months + 3 * tm.tm_mon, 3);
  out[11] = ' ';
  two(out + 12, year / 100);
  two(out + 14, year % 100);
  out[16] = ' ';
  two(out + 17, tm.tm_hour);
  out[19] = ':';
  two(out + 20, tm.tm_min);
  out[22] = ':';
  two(out + 23, tm.tm_sec);
  memcpy(out + 25, " GMT", 4);
}

static __thread struct {
  time_t sec;
  char text[HTTPD_DATE_LEN + 1];
} cache = {.sec = -1};

const char *httpd_date_now(void) {
  struct timespec ts;
  /* The coarse clock is read from the vDSO without a system call; its
   * tick (a few ms) is far below the second this cache resolves. */
  clock_gettime(CLOCK_REALTIME_COARSE, &ts);
  if (ts.tv_sec != cache.sec) {
    httpd_date_format(cache.text, ts.tv_sec);
    cache.text[HTTPD_DATE_LEN] = '\0';
    cache.sec = ts.tv_sec;
  }
  return cache.text;
}
