/*
** test_ingest.c — ingest/: the type table, Pyroscope names, label sets and
** folded / lines stacks turned into pprof (checked by proto's decoder).
*/
#include "ingest.h"
#include "pprof.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>

static void test_types(void) {
  char other[64] = "";
  CHECK_I64(ingest_type_of_name("process_cpu"), META_CPU);
  CHECK_I64(ingest_type_of_name("wall"), META_WALL);
  CHECK_I64(ingest_type_of_name("memory"), META_HEAP);
  CHECK_I64(ingest_type_of_name("inuse_space"), META_HEAP);
  CHECK_I64(ingest_type_of_name("goroutines"), META_GOROUTINE);
  CHECK_I64(ingest_type_of_name("mutex_duration"), META_MUTEX);
  CHECK_I64(ingest_type_of_name("block_count"), META_BLOCK);
  CHECK_I64(ingest_type_of_name("trace"), -1);
  CHECK_I64(ingest_type_of_name("exceptions"), -1);

  CHECK_I64(ingest_type_of_types("samples/count,cpu/nanoseconds", NULL, 0,
                                 other, sizeof other), META_CPU);
  /* Node.js: wall first whatever else is there */
  CHECK_I64(ingest_type_of_types("samples/count,wall/nanoseconds,cpu/nanoseconds",
                                 NULL, 0, other, sizeof other), META_WALL);
  CHECK_I64(ingest_type_of_types("objects/count,space/bytes", NULL, 0, other,
                                 sizeof other), META_HEAP);
  CHECK_I64(ingest_type_of_types("alloc_objects/count,alloc_space/bytes,"
                                 "inuse_objects/count,inuse_space/bytes",
                                 NULL, 0, other, sizeof other), META_HEAP);
  CHECK_I64(ingest_type_of_types("goroutine/count", NULL, 0, other,
                                 sizeof other), META_GOROUTINE);
  /* Go's contention profiles are mutex or block only by their config */
  ingest_display d[] = {{"contentions", "block_count"}, {"delay", "block_duration"}};
  CHECK_I64(ingest_type_of_types("contentions/count,delay/nanoseconds", d, 2,
                                 other, sizeof other), META_BLOCK);
  CHECK_I64(ingest_type_of_types("contentions/count,delay/nanoseconds", NULL, 0,
                                 other, sizeof other), META_OTHER);
  CHECK_STR(other, "delay");
  CHECK_I64(ingest_type_of_types("exceptions/count", NULL, 0, other, 4),
            META_OTHER);
  CHECK_STR(other, "exc");
}

static void test_names(void) {
  ingest_name n;
  char err[INGEST_ERRMAX] = "", *canon = NULL;

  CHECK_I64(ingest_name_parse("my.app.cpu{env=prod, region = eu-1 ,}", 1, &n, err), 0);
  CHECK_STR(n.service, "my.app");
  CHECK_I64(n.type, META_CPU);
  CHECK_STR(n.type_name, "cpu");
  CHECK_I64(ingest_labels_canonical(n.labels, &canon, err), 0);
  CHECK_STR(canon, "env=prod,region=eu-1");
  free(canon);
  ingest_name_clear(&n);

  /* no dot: cpu (Pyroscope's rule); unknown type: other + its name */
  CHECK_I64(ingest_name_parse("app", 1, &n, err), 0);
  CHECK_STR(n.service, "app");
  CHECK_I64(n.type, META_CPU);
  ingest_name_clear(&n);
  CHECK_I64(ingest_name_parse("app.exceptions{a=1}", 1, &n, err), 0);
  CHECK_I64(n.type, META_OTHER);
  CHECK_I64(ingest_labels_canonical(n.labels, &canon, err), 0);
  CHECK_STR(canon, "a=1,sample_type=exceptions");
  free(canon);
  ingest_name_clear(&n);

  /* untyped (pprof format): the whole name is the service; reserved
  ** labels dropped, syntax bytes of values kept literally */
  CHECK_I64(ingest_name_parse("my.app{__session_id__=12,v=a%b+c,spyName=x}", 0,
                              &n, err), 0);
  CHECK_STR(n.service, "my.app");
  CHECK_I64(ingest_labels_canonical(n.labels, &canon, err), 0);
  CHECK_STR(canon, "spyName=x,v=a%25b%2Bc");
  free(canon);
  ingest_name_clear(&n);

  CHECK_I64(ingest_name_parse("", 1, &n, err), -1);
  CHECK_STR(err, "missing \"name\"");
  CHECK_I64(ingest_name_parse("app{a=1", 1, &n, err), -1);
  CHECK(strstr(err, "unclosed") != NULL);
  CHECK_I64(ingest_name_parse("app{a}", 1, &n, err), -1);
  CHECK(strstr(err, "without '='") != NULL);
  CHECK_I64(ingest_name_parse("a/b.cpu", 1, &n, err), -1);
  CHECK(strstr(err, "invalid application name") != NULL);
  CHECK_I64(ingest_name_parse("{a=1}", 0, &n, err), -1);
}

static void test_stacks(void) {
  static const char folded[] = "main;work;hot 30\r\nmain;work;hot 12\n\n"
                               "main;idle 5\n";
  ingest_stacks_opts o = {.lines = 0, .type_name = "cpu", .sample_rate = 100,
                          .from = 1700000000, .until = 1700000010};
  char err[INGEST_ERRMAX] = "", types[PPROF_TYPES_MAX], perr[PPROF_ERRMAX];
  void *out = NULL;
  size_t len = 0;
  int64_t tn = 0;
  pprof_profile *p = NULL;
  int busy = 0;

  CHECK_I64(ingest_stacks_to_pprof(folded, strlen(folded), &o, NULL, &out,
                                   &len, &busy, err), 0);
  CHECK_I64(pprof_check_types(out, len, 0, NULL, &tn, types, perr), PPROF_OK);
  CHECK_STR(types, "samples/count,cpu/nanoseconds");
  CHECK_I64(tn, 1700000000LL * 1000000000);
  CHECK_I64(pprof_decode(out, len, 0, &p, perr), PPROF_OK);
  CHECK_I64(pprof_sample_count(p), 2); /* equal stacks summed */
  pprof_free(p);
  free(out);

  /* lines: one sample per line, value 1; units give the type */
  static const char lines[] = "a;b\na;b\na;c\n";
  o.lines = 1;
  o.type_name = "inuse_space";
  CHECK_I64(ingest_stacks_to_pprof(lines, strlen(lines), &o, NULL, &out, &len,
                                   &busy, err), 0);
  CHECK_I64(pprof_check_types(out, len, 0, NULL, NULL, types, perr), PPROF_OK);
  CHECK_STR(types, "inuse_space/bytes");
  free(out);
  o.type_name = "exceptions";
  o.units = "objects";
  CHECK_I64(ingest_stacks_to_pprof(lines, strlen(lines), &o, NULL, &out, &len,
                                   &busy, err), 0);
  CHECK_I64(pprof_check_types(out, len, 0, NULL, NULL, types, perr), PPROF_OK);
  CHECK_STR(types, "objects/count");
  free(out);

  /* bad input: each names its line */
  o.lines = 0;
  out = NULL;
  CHECK_I64(ingest_stacks_to_pprof("a;b 1\na;b\n", 10, &o, NULL, &out, &len,
                                   &busy, err), -1);
  CHECK(strstr(err, "line 2: no value") != NULL);
  CHECK_I64(ingest_stacks_to_pprof("a;b x1\n", 7, &o, NULL, &out, &len,
                                   &busy, err), -1);
  CHECK(strstr(err, "line 1: bad value") != NULL);
  CHECK_I64(ingest_stacks_to_pprof("a;b -1\n", 7, &o, NULL, &out, &len,
                                   &busy, err), -1);
  CHECK_I64(ingest_stacks_to_pprof("a;;b 1\n", 7, &o, NULL, &out, &len,
                                   &busy, err), -1);
  CHECK(strstr(err, "empty frame") != NULL);
  CHECK_I64(ingest_stacks_to_pprof("\n\n", 2, &o, NULL, &out, &len, &busy,
                                   err), -1);
  CHECK_STR(err, "no stacks");
  CHECK(out == NULL);
  /* a value whose product with the period overflows: refused before the
  ** multiplication (UBSan), and no product at all when nothing is counted */
  o.type_name = "cpu";
  CHECK_I64(ingest_stacks_to_pprof("a;b 9223372036854775807\n", 24, &o, NULL,
                                   &out, &len, &busy, err), -1);
  CHECK(strstr(err, "line 1: value too large") != NULL);
  o.type_name = "inuse_space";
  CHECK_I64(ingest_stacks_to_pprof("a;b 9223372036854775807\n", 24, &o, NULL,
                                   &out, &len, &busy, err), 0);
  CHECK_I64(pprof_decode(out, len, 0, &p, perr), PPROF_OK);
  CHECK_I64(pprof_sample_count(p), 1);
  pprof_free(p);
  free(out);
  out = NULL;
  /* equal stacks whose sum overflows: wrapped as a merge does */
  CHECK_I64(ingest_stacks_to_pprof("a 9223372036854775807\na 2\n", 26, &o,
                                   NULL, &out, &len, &busy, err), 0);
  free(out);
  out = NULL;
  o.type_name = "exceptions";

  /* a budget too small: busy, nothing returned */
  budget *b = budget_new(4096, 0);
  char *big = malloc(200000);
  size_t n = 0;
  for (int i = 0; n + 40 < 200000; i++)
    n += (size_t)snprintf(big + n, 200000 - n, "main;f%d;g%d 1\n", i, i);
  busy = 0;
  CHECK_I64(ingest_stacks_to_pprof(big, n, &o, b, &out, &len, &busy, err), -1);
  CHECK_I64(busy, 1);
  budget_stats st;
  budget_get_stats(b, &st);
  CHECK_I64(st.used, 0); /* everything given back */
  free(big);
  budget_free(b);
}

/* A push's memory is counted before it is decoded: 1 MiB of empty series
** (2 bytes each on the wire, hundreds decoded) needs more than a whole
** 16 MiB budget (too big: never); one small series fits, proto or JSON,
** but not beside a body that holds the budget (too big) nor while others
** hold it (busy: later); all is given back. */
static void test_push_budget(void) {
  static const char one[] = "\x0a\x10\x0a\x0e\x0a\x0c" "service_name";
  static const char js[] = "{\"series\":[{\"labels\":[{\"name\":\"a\","
                           "\"value\":\"b\"}]}]}";
  size_t n = (size_t)1 << 20;
  char *empty = malloc(n), err[INGEST_ERRMAX] = "";
  budget *b = budget_new((size_t)16 << 20, 0);
  ingest_push *p = NULL;
  budget_stats st;
  int busy = 0;

  for (size_t i = 0; i < n; i += 2) {
    empty[i] = 0x0a;
    empty[i + 1] = 0;
  }
  CHECK_I64(ingest_push_decode(empty, n, 0, b, 0, &p, &busy, err), -1);
  CHECK_I64(busy, INGEST_PUSH_TOOBIG);
  CHECK(strstr(err, "more than the memory budget") != NULL);
  CHECK(p == NULL);
  busy = 0;
  CHECK_I64(ingest_push_decode(one, sizeof one - 1, 0, b, (size_t)16 << 20,
                               &p, &busy, err), -1);
  CHECK_I64(busy, INGEST_PUSH_TOOBIG);
  busy = 0;
  CHECK_I64(budget_reserve(b, ((size_t)16 << 20) - 64), 0);
  CHECK_I64(ingest_push_decode(one, sizeof one - 1, 0, b, 0, &p, &busy, err),
            -1);
  CHECK_I64(busy, INGEST_PUSH_BUSY);
  budget_release(b, ((size_t)16 << 20) - 64);
  busy = 0;
  CHECK_I64(ingest_push_decode(one, sizeof one - 1, 0, b, 0, &p, &busy, err),
            0);
  CHECK_I64(ingest_push_series(p), 1);
  ingest_push_free(p);
  p = NULL;
  CHECK_I64(ingest_push_decode(js, sizeof js - 1, 1, b, 0, &p, &busy, err), 0);
  CHECK_I64(ingest_push_series(p), 1);
  ingest_push_free(p);
  /* truncated protobuf: refused before anything is decoded */
  CHECK_I64(ingest_push_decode("\x0a\x05\x0a", 3, 0, b, 0, &p, &busy, err),
            -1);
  CHECK(strstr(err, "not a PushRequest") != NULL);
  budget_get_stats(b, &st);
  CHECK_I64(st.used, 0);
  CHECK_I64(busy, 0);
  budget_free(b);
  free(empty);
}

int main(void) {
  test_types();
  test_names();
  test_stacks();
  test_push_budget();
  return check_done("test_ingest");
}
