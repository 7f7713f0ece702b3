/*
 * Stands in for tour-hook-redis.c when the tour is built without hiredis.
 */
#include <stdio.h>

#include "tour-hook.h"

void tour_hooks_redis(void) {
  printf("  (built without hiredis: install libhiredis-dev and "
         "redis-server, and hiredis runs here too)\n");
}
