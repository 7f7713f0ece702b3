/*
 * The tour's hooks section, with a real library: hiredis's synchronous
 * API, unmodified, from 100 tasks on one thread against a redis-server the
 * tour starts (when one is installed). One task waits in BLPOP for 0.2 s
 * while the others go on. Built when hiredis is found; else
 * tour-hook-redis-none.c stands in.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis.h>
#include <stdio.h>
#include <string.h>
#include <weft.h>

#include "../tests/redis-server.h"
#include "tour-hook.h"

enum { CLIENTS = 100 };

static struct redis_server server;
static long replies;

struct client {
  int id;
  bool ok;
};

static void *client(void *arg) {
  struct client *cl = arg;
  redisContext *c = redisConnect("127.0.0.1", server.port);
  if (!c || c->err) {
    if (c)
      redisFree(c);
    return NULL;
  }
  char key[32], value[32];
  snprintf(key, sizeof key, "tour:%d", cl->id);
  snprintf(value, sizeof value, "value %d", cl->id * cl->id);
  redisReply *set = redisCommand(c, "SET %s %s", key, value);
  redisReply *get = redisCommand(c, "GET %s", key);
  cl->ok = set && get && get->type == REDIS_REPLY_STRING &&
           strcmp(get->str, value) == 0;
  replies += 2;
  if (set)
    freeReplyObject(set);
  if (get)
    freeReplyObject(get);
  redisFree(c);
  return NULL;
}

struct blpop {
  long before, after;
  int64_t took;
};

static void *slow(void *arg) {
  struct blpop *b = arg;
  redisContext *c = redisConnect("127.0.0.1", server.port);
  if (!c || c->err) {
    if (c)
      redisFree(c);
    return NULL;
  }
  b->before = replies;
  int64_t t0 = weft_now();
  redisReply *r = redisCommand(c, "BLPOP tour:empty 0.2");
  b->took = weft_now() - t0;
  b->after = replies;
  if (r)
    freeReplyObject(r);
  redisFree(c);
  return NULL;
}

static void *clients(void *arg) {
  (void)arg;
  struct client cl[CLIENTS];
  weft_task *t[CLIENTS], *s;
  struct blpop b = {0};
  weft_task_spawn(&s, slow, &b, NULL);
  int64_t t0 = weft_now();
  for (int i = 0; i < CLIENTS; i++) {
    cl[i] = (struct client){.id = i};
    weft_task_spawn(&t[i], client, &cl[i], NULL);
  }
  int right = 0;
  for (int i = 0; i < CLIENTS; i++) {
    weft_task_join(t[i], WEFT_FOREVER, NULL);
    weft_task_detach(t[i]);
    right += cl[i].ok;
  }
  int64_t took = weft_now() - t0;
  weft_task_join(s, WEFT_FOREVER, NULL);
  weft_task_detach(s);
  printf("  hiredis, unmodified: %d tasks each SET and GET, %d right, in "
         "%.3f s;\n  meanwhile one task waited %.2f s in BLPOP while %ld "
         "replies came to the others\n",
         CLIENTS, right, took / 1e9, b.took / 1e9, b.after - b.before);
  return NULL;
}

void tour_hooks_redis(void) {
  int rc = redis_server_start(&server);
  if (rc == -ENOENT) {
    printf("  (with a redis-server installed, hiredis would run here too)\n");
    return;
  }
  if (rc < 0) {
    printf("  redis-server did not start: %s\n", weft_strerror(rc));
    return;
  }
  weft_run(clients, NULL, NULL);
  redis_server_stop(&server);
}
