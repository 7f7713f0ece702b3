/*
 * The hooks section's part with hiredis (tour-hook-redis.c), or its stand-in
 * when the tour is built without hiredis (tour-hook-redis-none.c).
 */
#ifndef WEFT_EXAMPLES_TOUR_HOOK_H
#define WEFT_EXAMPLES_TOUR_HOOK_H

/* Runs hiredis from 100 tasks against a redis-server of its own, or says
 * why it cannot. */
void tour_hooks_redis(void);

#endif
