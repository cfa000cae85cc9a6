/*
** test_remote.c — unit tests of the remote backend's parts that need no
** server: the LRU byte cache (bounds, eviction order, generations) and the
** reading of profefe-shaped JSON answers into store metas.  The HTTP side
** is covered by tests/integration/remote_mount.sh against a real server.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_cache.h"
#include "remote_json.h"
#include "check.h"

/* 1 when key is cached under gen with exactly the value want. */
static int has(store_rcache *c, const char *key, uint64_t gen, const char *want) {
  void *data = NULL;
  size_t len = 0;
  int ok;
  if (!store_rcache_get(c, key, gen, &data, &len)) return 0;
  ok = len == strlen(want) && memcmp(data, want, len) == 0 &&
       ((char *)data)[len] == 0;
  free(data);
  return ok;
}

static void test_cache_basics(void) {
  store_rcache *c = store_rcache_new(4000);
  void *data = (void *)"untouched";
  size_t len = 42;

  CHECK(c != NULL);
  CHECK(!store_rcache_get(c, "a", 0, &data, &len));
  CHECK_STR((char *)data, "untouched"); /* OUT params unchanged on a miss */
  CHECK_I64(len, 42);

  store_rcache_put(c, "a", 0, "alpha", 5);
  store_rcache_put(c, "b", 7, "beta", 4);
  CHECK(has(c, "a", 0, "alpha"));
  CHECK(has(c, "b", 7, "beta"));
  CHECK(!has(c, "b", 8, "beta"));        /* other generation: a miss */
  CHECK_I64(store_rcache_bytes(c), 2 + 5 + 2 + 4);

  store_rcache_put(c, "a", 0, "ALPHA!", 6); /* replaces */
  CHECK(has(c, "a", 0, "ALPHA!"));
  CHECK_I64(store_rcache_bytes(c), 2 + 6 + 2 + 4);
  store_rcache_put(c, "b", 9, "", 0);       /* empty values are values */
  CHECK(has(c, "b", 9, ""));
  CHECK(!has(c, "b", 7, "beta"));

  store_rcache_del(c, "a");
  store_rcache_del(c, "nothing");
  CHECK(!has(c, "a", 0, "ALPHA!"));
  CHECK_I64(store_rcache_bytes(c), 2);

  /* A value over a quarter of the bound is not kept. */
  char big[1001];
  memset(big, 'x', sizeof big);
  store_rcache_put(c, "big", 0, big, sizeof big);
  CHECK(!store_rcache_get(c, "big", 0, &data, &len));
  store_rcache_free(c);
  store_rcache_free(NULL);
}

static void test_cache_lru(void) {
  /* Each entry costs 4 (key "kNN" + NUL) + 96 = 100 bytes: 10 fit. */
  store_rcache *c = store_rcache_new(1000);
  char key[8], val[97];

  memset(val, 'v', 96);
  val[96] = 0;
  for (int i = 0; i < 10; i++) {
    snprintf(key, sizeof key, "k%02d", i);
    store_rcache_put(c, key, 0, val, 96);
  }
  CHECK_I64(store_rcache_bytes(c), 1000);
  CHECK(has(c, "k00", 0, val)); /* k00 is now the most recently used */
  store_rcache_put(c, "k10", 0, val, 96); /* evicts the LRU: k01 */
  CHECK(!has(c, "k01", 0, val));
  CHECK(has(c, "k00", 0, val));
  CHECK(has(c, "k02", 0, val));
  CHECK(has(c, "k10", 0, val));
  CHECK_I64(store_rcache_bytes(c), 1000);

  /* Many entries: the table grows and everything stays consistent. */
  store_rcache *d = store_rcache_new(1 << 20);
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "%d", i);
    store_rcache_put(d, key, (uint64_t)i, key, strlen(key));
  }
  int found = 0;
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "%d", i);
    found += has(d, key, (uint64_t)i, key);
  }
  CHECK_I64(found, 5000);
  store_rcache_free(c);
  store_rcache_free(d);
}

static void test_json_meta(void) {
  /* As profefe sends it: xid id, RFC 3339 with nanoseconds and offset,
  ** labels as key/value objects in no particular order. */
  static const char one[] =
    "{\"code\":200,\"body\":{\"id\":\"bo51acqs8snb9srq3p10\",\"type\":\"cpu\","
    "\"service\":\"api\",\"labels\":[{\"key\":\"region\",\"value\":\"eu west\"},"
    "{\"key\":\"a,b\",\"value\":\"x=y\"}],"
    "\"created_at\":\"2019-06-04T13:43:25.123456789+02:00\"}}";
  store_meta m = { .size = 77 };
  char err[STORE_ERRMAX];

  CHECK_I64(store_rjson_meta(one, strlen(one), &m, err), STORE_OK);
  CHECK_STR(m.id, "bo51acqs8snb9srq3p10");
  CHECK_STR(m.service, "api");
  CHECK_I64(m.type, META_CPU);
  CHECK_STR(m.labels, "a%2Cb=x%3Dy,region=eu%20west");
  CHECK_I64(m.created_at, 1559648605); /* 2019-06-04T11:43:25Z */
  CHECK_I64(m.size, -1);
  store_meta_clear(&m);

  static const char bad[] = "{\"code\":200,\"body\":{\"id\":\"short\"}}";
  m.size = 5;
  m.service = NULL;
  CHECK(store_rjson_meta(bad, strlen(bad), &m, err) == STORE_IO);
  CHECK_I64(m.size, 5);
  CHECK(store_rjson_meta("<html>", 6, &m, err) == STORE_IO);
}

static void test_json_lists(void) {
  static const char list[] =
    "{\"code\":200,\"body\":["
    "{\"id\":\"bo51acqs8snb9srq3p10\",\"type\":\"heap\",\"service\":\"s\","
    "\"created_at\":\"2019-06-04T11:43:25Z\"},"
    "{\"id\":\"not\\nan id\",\"type\":\"heap\",\"service\":\"s\"},"
    "{\"id\":\"bo51acqs8snb9srq3p1g\",\"type\":\"nope\",\"service\":\"s\"},"
    "{\"id\":\"bo51acqs8snb9srq3p20\",\"type\":\"trace\",\"service\":\"t\","
    "\"labels\":null,\"created_at\":\"2019-06-04T11:43:26Z\"}]}";
  static const char names[] = "{\"code\":200,\"body\":[\"a\",\"b b\"]}";
  static const char err_answer[] = "{\"code\":404,\"error\":\"nothing found\"}";
  store_meta_list l = { 0 };
  char **v = NULL, *e;
  size_t n = 0;
  char err[STORE_ERRMAX];

  CHECK_I64(store_rjson_meta_list(list, strlen(list), &l, err), STORE_OK);
  CHECK_I64(l.n, 2); /* the two invalid entries are skipped */
  if (l.n == 2) {
    CHECK_STR(l.v[0].id, "bo51acqs8snb9srq3p10");
    CHECK_I64(l.v[0].type, META_HEAP);
    CHECK_STR(l.v[0].labels, "");
    CHECK_I64(l.v[1].type, META_TRACE);
    CHECK_I64(l.v[1].created_at, 1559648606);
  }
  store_meta_list_free(&l);

  CHECK_I64(store_rjson_names(names, strlen(names), &v, &n, err), STORE_OK);
  CHECK_I64(n, 2);
  if (n == 2) {
    CHECK_STR(v[0], "a");
    CHECK_STR(v[1], "b b");
  }
  store_names_free(v, n);
  CHECK(store_rjson_names(list, strlen(list), &v, &n, err) == STORE_IO);

  /* Names from the server become FUSE names: those that cannot be service
  ** names are skipped, in lists of names and of profiles (issue 13). */
  static const char bad_names[] =
    "{\"code\":200,\"body\":[\"..\",\"a/b\",\"merge\",\"ok\",\".x\","
    "\"c\\u0001d\",\"\",\"../../etc\"]}";
  CHECK_I64(store_rjson_names(bad_names, strlen(bad_names), &v, &n, err), STORE_OK);
  CHECK_I64(n, 1);
  if (n == 1) CHECK_STR(v[0], "ok");
  store_names_free(v, n);
  static const char bad_svc[] = "[{\"id\":\"bo51acqs8snb9srq3p10\",\"type\":\"cpu\","
    "\"service\":\"../x\"},{\"id\":\"bo51acqs8snb9srq3p20\",\"type\":\"cpu\","
    "\"service\":\"merge\"},{\"id\":\"bo51acqs8snb9srq3p30\",\"type\":\"cpu\","
    "\"service\":\"fine\"}]";
  CHECK_I64(store_rjson_meta_list(bad_svc, strlen(bad_svc), &l, err), STORE_OK);
  CHECK_I64(l.n, 1);
  if (l.n == 1) CHECK_STR(l.v[0].service, "fine");
  store_meta_list_free(&l);
  static const char one_bad[] = "{\"id\":\"bo51acqs8snb9srq3p10\",\"type\":\"cpu\","
    "\"service\":\"a\\nb\"}";
  store_meta m = { 0 };
  CHECK(store_rjson_meta(one_bad, strlen(one_bad), &m, err) == STORE_IO);
  CHECK(m.service == NULL);

  /* Some profefe versions send the bare body, without the envelope. */
  static const char bare[] = "[{\"id\":\"bo51acqs8snb9srq3p10\",\"type\":\"mutex\","
                             "\"service\":\"s\"}]";
  CHECK_I64(store_rjson_meta_list(bare, strlen(bare), &l, err), STORE_OK);
  CHECK_I64(l.n, 1);
  if (l.n == 1) CHECK_I64(l.v[0].type, META_MUTEX);
  store_meta_list_free(&l);
  static const char bare_names[] = "[\"x\"]";
  CHECK_I64(store_rjson_names(bare_names, strlen(bare_names), &v, &n, err), STORE_OK);
  CHECK_I64(n, 1);
  store_names_free(v, n);

  CHECK(store_rjson_is_code("{\"code\":200,\"body\":{}}", 22, 200));
  CHECK(!store_rjson_is_code("{\"code\":404}", 12, 200));
  CHECK(!store_rjson_is_code("\x1f\x8b\x08", 3, 200)); /* profile bytes */

  e = store_rjson_error(err_answer, strlen(err_answer));
  CHECK_STR(e, "nothing found");
  free(e);
  CHECK(store_rjson_error("garbage", 7) == NULL);
}

/* Ids of an S3-backed server are object keys: kept whole in key, with a
** 20-character name in id; anything else is bounded and named by a hash. */
static void test_json_long_ids(void) {
  static const char s3[] =
    "{\"code\":200,\"body\":[{\"id\":\"P0.web/1/dc30ctr8di19hau9oijg,i=0\","
    "\"type\":\"cpu\",\"service\":\"web\",\"created_at\":\"%s\","
    "\"labels\":[{\"key\":\"i\",\"value\":\"0\"}]}]}";
  char text[512], when[META_TIME_MAX], name[META_ID_LEN + 1], other[META_ID_LEN + 1];
  char err[STORE_ERRMAX], big[STORE_RJSON_ID_MAX + 2];
  int64_t t = meta_id_time("dc30ctr8di19hau9oijg");
  store_meta_list l = { 0 };

  meta_time_format(t, when);
  snprintf(text, sizeof text, s3, when);
  CHECK_I64(store_rjson_meta_list(text, strlen(text), &l, err), STORE_OK);
  CHECK_I64(l.n, 1);
  if (l.n == 1) {
    CHECK_STR(l.v[0].key, "P0.web/1/dc30ctr8di19hau9oijg,i=0");
    CHECK_STR(store_meta_id(&l.v[0]), "P0.web/1/dc30ctr8di19hau9oijg,i=0");
    CHECK_STR(l.v[0].id, "dc30ctr8di19hau9oijg"); /* the key's digest */
    CHECK_STR(l.v[0].labels, "i=0");
  }
  store_meta_list_free(&l);

  /* a digest that is not created_at's, or no digest: a hash, time first */
  store_rjson_id_name("P0.web/1/dc30ctr8di19hau9oijg,i=0", t + 60, name);
  CHECK(meta_id_valid(name));
  CHECK_I64(meta_id_time(name), t + 60);
  store_rjson_id_name("some/other id", t, other);
  CHECK(meta_id_valid(other) && strcmp(name, other) != 0);
  CHECK_I64(meta_id_time(other), t);
  store_rjson_id_name("some/other id2", t, name);
  CHECK(strcmp(name, other) != 0);
  store_rjson_id_name("bo51acqs8snb9srq3p10", t, name); /* its own name */
  CHECK_STR(name, "bo51acqs8snb9srq3p10");

  CHECK_I64(store_rjson_id_time("P0.web/1/dc30ctr8di19hau9oijg,i=0"), t);
  CHECK_I64(store_rjson_id_time("no digest"), -1);
  CHECK(store_rjson_id_valid("P0.a b/1/x+y"));
  CHECK(!store_rjson_id_valid(""));
  CHECK(!store_rjson_id_valid(".."));
  CHECK(!store_rjson_id_valid("a\tb"));
  memset(big, 'k', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  CHECK(!store_rjson_id_valid(big));           /* one byte over the bound */
  big[STORE_RJSON_ID_MAX] = '\0';
  CHECK(store_rjson_id_valid(big));
}

int main(void) {
  test_cache_basics();
  test_cache_lru();
  test_json_meta();
  test_json_lists();
  test_json_long_ids();
  return check_done("test_remote");
}
