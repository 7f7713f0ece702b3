/*
 * An unmodified blocking client library made cooperative by the hooks:
 * hiredis's synchronous API, 1,000 tasks on one hub against a real
 * redis-server that the test starts on a loopback port. Each task has its
 * own connection and checks every reply; a task blocked in BLPOP does not
 * hold the others up.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <weft/hook.h>
#include <weft/hub.h>

#include "harness.h"
#include "redis-server.h"

static struct redis_server server;

static void start_server(void) {
  int rc = redis_server_start(&server);
  if (rc == -ENOENT)
    harness_skip("redis-server is not installed (apt-get install "
                 "redis-server)");
  CHECK_EQ(rc, 0);
}

enum { CLIENTS = 1000, ROUNDS = 10 };

/* Replies checked, across all clients: the progress a slow command must
 * not stop. */
static volatile long replies;

struct client {
  int id;
  int failures;
  char why[256];
};

static void *client(void *arg) {
  struct client *cl = arg;
  redisContext *c = redisConnect("127.0.0.1", server.port);
  if (!c || c->err) {
    snprintf(cl->why, sizeof cl->why, "connect: %.128s",
             c ? c->errstr : "no memory");
    cl->failures++;
    if (c)
      redisFree(c);
    return NULL;
  }
  for (int r = 0; r < ROUNDS; r++) {
    char key[32], value[64];
    snprintf(key, sizeof key, "key:%d", cl->id);
    snprintf(value, sizeof value, "value-%d-%d-%08x", cl->id, r,
             (unsigned)(cl->id * 2654435761u + (unsigned)r));
    redisReply *rep = redisCommand(c, "SET %s %s", key, value);
    if (!rep || rep->type != REDIS_REPLY_STATUS || strcmp(rep->str, "OK")) {
      snprintf(cl->why, sizeof cl->why, "SET: %.128s",
               rep ? "bad reply" : c->errstr);
      cl->failures++;
    }
    if (rep)
      freeReplyObject(rep);
    replies++;
    rep = redisCommand(c, "GET %s", key);
    if (!rep || rep->type != REDIS_REPLY_STRING || strcmp(rep->str, value)) {
      snprintf(cl->why, sizeof cl->why, "GET %s: %.128s", key,
               rep && rep->type == REDIS_REPLY_STRING ? rep->str : "bad reply");
      cl->failures++;
    }
    if (rep)
      freeReplyObject(rep);
    replies++;
  }
  redisFree(c);
  return NULL;
}

/* BLPOP on an empty list for 1 s: the others must get replies meanwhile. */
struct slow {
  long before, after;
  int64_t took;
  bool nil;
};

static void *slow_command(void *arg) {
  struct slow *s = arg;
  redisContext *c = redisConnect("127.0.0.1", server.port);
  CHECK(c && !c->err);
  s->before = replies;
  int64_t t0 = weft_now();
  redisReply *rep = redisCommand(c, "BLPOP weft:empty 1");
  s->took = weft_now() - t0;
  s->after = replies;
  s->nil = rep && rep->type == REDIS_REPLY_NIL;
  if (rep)
    freeReplyObject(rep);
  redisFree(c);
  return NULL;
}

static void *many_clients(void *arg) {
  (void)arg;
  struct client *cl = calloc(CLIENTS, sizeof *cl);
  weft_task **t = calloc(CLIENTS, sizeof *t);
  struct slow slow = {0};
  weft_task *st;
  CHECK_EQ(weft_task_spawn(&st, slow_command, &slow, NULL), 0);
  for (int i = 0; i < CLIENTS; i++) {
    cl[i].id = i;
    CHECK_EQ(weft_task_spawn(&t[i], client, &cl[i], NULL), 0);
  }
  int failed = 0;
  for (int i = 0; i < CLIENTS; i++) {
    CHECK_EQ(weft_task_join(t[i], WEFT_FOREVER, NULL), 0);
    weft_task_detach(t[i]);
    if (cl[i].failures) {
      if (!failed)
        fprintf(stderr, "client %d: %s\n", i, cl[i].why);
      failed++;
    }
  }
  CHECK_EQ(weft_task_join(st, WEFT_FOREVER, NULL), 0);
  weft_task_detach(st);
  CHECK_EQ(failed, 0);
  CHECK_EQ(replies, 2L * CLIENTS * ROUNDS);
  CHECK(slow.nil);
  CHECK(slow.took >= WEFT_MS(900));
  /* Replies kept coming while BLPOP waited. */
  CHECK(slow.after - slow.before > 0);
  free(cl);
  free(t);
  return NULL;
}

TEST_TIMEOUT(a_thousand_hiredis_clients_on_one_hub, 120) {
  CHECK(weft_hook_installed());
  start_server();
  int rc = weft_run(many_clients, NULL, NULL);
  redis_server_stop(&server);
  CHECK_EQ(rc, 0);
}

/* The same client code on a plain thread: libc's blocking calls. */
TEST(the_same_client_on_a_thread) {
  start_server();
  struct client cl = {.id = 7};
  client(&cl);
  redis_server_stop(&server);
  if (cl.failures)
    fprintf(stderr, "%s\n", cl.why);
  CHECK_EQ(cl.failures, 0);
}
