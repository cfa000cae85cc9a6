/*
** test_meta.c — unit tests of meta/: types, ids, service names, label
** canonicalisation and operations, times and durations.  Every check has an
** exact expected value; rejects are checked to leave OUT parameters alone.
*/
#include "meta.h"
#include "check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- types, ids, services ---------------------------------------------- */

static void test_types(void) {
  static const char *names[] = {"cpu",       "heap",         "block",
                                "mutex",     "goroutine",    "threadcreate",
                                "other",     "trace",        "wall"};
  for (int t = 0; t < META_NTYPES; t++) {
    CHECK_STR(meta_type_name((meta_type)t), names[t]);
    CHECK_I64(meta_type_parse(names[t]), t);
  }
  CHECK_I64(META_NTYPES, 9);
  CHECK_I64(META_TRACE, 7); /* stored numbers never move */
  CHECK_I64(meta_type_parse("CPU"), -1);
  CHECK_I64(meta_type_parse("cpu "), -1);
  CHECK_I64(meta_type_parse(""), -1);
  CHECK_I64(meta_type_parse(NULL), -1);
  CHECK_I64(meta_type_parse("heapx"), -1);
}

/* Decodes the first 4 bytes (the second) of an id. */
static long long id_seconds(const char *id) {
  unsigned long long bits = 0;
  for (int i = 0; i < 7; i++) {
    const char *a = "0123456789abcdefghijklmnopqrstuv";
    bits = bits << 5 | (unsigned long long)(strchr(a, id[i]) - a);
  }
  return (long long)(bits >> 3);
}

static void test_ids(void) {
  char a[META_ID_LEN + 1], b[META_ID_LEN + 1], c[META_ID_LEN + 1];
  meta_id_new(1700000000, a);
  meta_id_new(1700000000, b);
  meta_id_new(1700000001, c);
  CHECK_I64((long long)strlen(a), 20);
  CHECK(meta_id_valid(a));
  CHECK(meta_id_valid(c));
  /* 1700000000 = 0x6553F100: the first 6 characters are fixed by it. */
  CHECK(strncmp(a, "cl9v20", 6) == 0);
  CHECK(strchr("01234567", a[6]) != NULL); /* 2 bits of time: 00 */
  CHECK(strchr("0g", a[19]) != NULL);      /* 4 data bits + 1 zero bit */
  CHECK_I64(id_seconds(a), 1700000000);
  CHECK_I64(id_seconds(c), 1700000001);
  CHECK(strcmp(a, b) != 0);
  CHECK(strcmp(a, c) < 0 && strcmp(b, c) < 0);
  meta_id_new(0, a);
  CHECK(strncmp(a, "000000", 6) == 0);
  meta_id_new(0xffffffffLL, a);
  CHECK(strncmp(a, "vvvvvv", 6) == 0);

  /* 1000 ids of one second are all different. */
  static char many[1000][META_ID_LEN + 1];
  int dups = 0;
  for (int i = 0; i < 1000; i++) meta_id_new(1700000000, many[i]);
  for (int i = 0; i < 1000; i++)
    for (int j = i + 1; j < 1000; j++) dups += strcmp(many[i], many[j]) == 0;
  CHECK_I64(dups, 0);

  CHECK(meta_id_valid("bo51acqs8snb9srq3p10"));
  CHECK(meta_id_valid("00000000000000000000"));
  CHECK(meta_id_valid("vvvvvvvvvvvvvvvvvvvv"));
  CHECK(!meta_id_valid("bo51acqs8snb9srq3p1"));   /* 19 */
  CHECK(!meta_id_valid("bo51acqs8snb9srq3p100")); /* 21 */
  CHECK(!meta_id_valid("bo51acqs8snb9srq3p1w"));  /* w is not base32hex */
  CHECK(!meta_id_valid("BO51ACQS8SNB9SRQ3P10"));  /* upper case */
  CHECK(!meta_id_valid("bo51acqs8snb9srq3p1/"));
  CHECK(!meta_id_valid(""));
  CHECK(!meta_id_valid(NULL));
}

static void test_services(void) {
  char long255[256], long256[257];
  memset(long255, 'a', 255);
  long255[255] = '\0';
  memset(long256, 'a', 256);
  long256[256] = '\0';
  CHECK(meta_service_valid("api"));
  CHECK(meta_service_valid("my-service_v2.prod"));
  CHECK(meta_service_valid("with space"));
  CHECK(meta_service_valid("caf\xc3\xa9"));
  CHECK(!meta_service_valid("merge")); /* reserved for MNT/merge */
  CHECK(meta_service_valid("merger"));
  CHECK(meta_service_valid("a.."));
  CHECK(meta_service_valid(long255));
  CHECK(!meta_service_valid(long256));
  CHECK(!meta_service_valid(""));
  CHECK(!meta_service_valid(NULL));
  CHECK(!meta_service_valid("."));
  CHECK(!meta_service_valid(".."));
  CHECK(!meta_service_valid(".hidden"));
  CHECK(!meta_service_valid("a/b"));
  CHECK(!meta_service_valid("/"));
  CHECK(!meta_service_valid("tab\there"));
  CHECK(!meta_service_valid("nl\n"));
  CHECK(!meta_service_valid("del\x7f"));
}

/* ---- labels -------------------------------------------------------------- */

/* Parses in and checks the canonical result (want == NULL: must fail and
** leave the output untouched, with a message in err). */
static void parse_is(int line, const char *in, const char *want) {
  char err[META_ERRMAX] = "";
  char *sentinel = (char *)"untouched", *out = sentinel;
  int rc = meta_labels_parse(in, &out, err);
  if (want == NULL) {
    check_result(rc == -1 && out == sentinel && err[0] != '\0', __FILE__, line,
                 "parse \"%.60s\" should fail (rc %d)", in, rc);
    return;
  }
  if (check_result(rc == 0 && strcmp(out, want) == 0, __FILE__, line,
                   "parse \"%s\": got rc %d \"%s\" (%s), want \"%s\"", in, rc,
                   rc == 0 ? out : "", err, want))
    CHECK(meta_labels_canonical(out)); /* the result is a fixed point */
  if (rc == 0) free(out);
}

static void test_labels_parse(void) {
  parse_is(__LINE__, NULL, "");
  parse_is(__LINE__, "", "");
  parse_is(__LINE__, "a=1", "a=1");
  parse_is(__LINE__, "b=2,a=1", "a=1,b=2");
  parse_is(__LINE__, " region = eu-west , az=1 ", "az=1,region=eu-west");
  parse_is(__LINE__, "k=b,k=a,k=b", "k=a,k=b");          /* sorted, deduped */
  parse_is(__LINE__, "k=,a=", "a=,k=");                  /* empty values kept */
  parse_is(__LINE__, "=v,a=1", "a=1");                   /* empty key dropped */
  parse_is(__LINE__, "%20=v", "");                       /* key trims to empty */
  parse_is(__LINE__, "a=1,,b=2,", "a=1,b=2");            /* empty items */
  parse_is(__LINE__, ",", "");
  parse_is(__LINE__, "k=a=b", "k=a%3Db");                /* first '=' splits */
  parse_is(__LINE__, "path=%2Fusr%2Fbin", "path=%2Fusr%2Fbin");
  parse_is(__LINE__, "path=%2fusr", "path=%2Fusr");      /* upper-case hex */
  parse_is(__LINE__, "v=1.0%2Bbuild", "v=1.0%2Bbuild");  /* literal '+' */
  parse_is(__LINE__, "msg=hello+world", "msg=hello%20world"); /* '+' = space */
  parse_is(__LINE__, "msg=%20x%20", "msg=x");            /* trim after unescape */
  parse_is(__LINE__, "k=a%2Cb", "k=a%2Cb");
  parse_is(__LINE__, "k=100%25", "k=100%25");
  parse_is(__LINE__, "k=%09tab%0Ain", "k=tab%0Ain");
  parse_is(__LINE__, "k=caf\xc3\xa9", "k=caf%C3%A9");
  parse_is(__LINE__, "k=~!@#$&*()", "k=~!@#$&*()");
  /* Order is by the canonical bytes: '%' (0x25) sorts before '-' (0x2d). */
  parse_is(__LINE__, "a-b=1,a b=2,a=3", "a=3,a%20b=2,a-b=1");
  parse_is(__LINE__, "zone=b, zone=a ,host=x", "host=x,zone=a,zone=b");

  parse_is(__LINE__, "novalue", NULL);
  parse_is(__LINE__, "a=1,b", NULL);
  parse_is(__LINE__, "k=%zz", NULL);
  parse_is(__LINE__, "k=%2", NULL);
  parse_is(__LINE__, "k=%", NULL);
  parse_is(__LINE__, "%g0=v", NULL);
  parse_is(__LINE__, "k=%00", NULL);

  char err[META_ERRMAX];
  char *out = NULL;
  CHECK(meta_labels_parse("a=1,oops", &out, err) == -1);
  CHECK_STR(err, "missing '=' in labels: \"oops\"");
  CHECK(meta_labels_parse("k=%zz", &out, err) == -1);
  CHECK_STR(err, "bad %-escape in labels: \"k=%zz\"");
  CHECK(out == NULL);
  CHECK(meta_labels_parse("k=%zz", &out, NULL) == -1); /* err may be NULL */

  /* 1 MB of labels is refused cleanly, and so is 64 KiB + 1. */
  size_t big = 1 << 20;
  char *s = malloc(big + 1);
  for (size_t i = 0; i < big; i++) s[i] = "k=v,"[i % 4];
  s[big] = '\0';
  CHECK(meta_labels_parse(s, &out, err) == -1);
  CHECK_STR(err, "labels too long (over 64 KiB)");
  s[64 * 1024 + 1] = '\0';
  CHECK(meta_labels_parse(s, &out, err) == -1);
  /* Exactly 64 KiB is fine. */
  s[64 * 1024] = '\0';
  s[64 * 1024 - 1] = '1'; /* "k=v,...,k=v,k=v1" */
  CHECK(meta_labels_parse(s, &out, err) == 0);
  CHECK_STR(out, "k=v,k=v1");
  free(out);
  free(s);
}

static void test_labels_canonical(void) {
  CHECK(meta_labels_canonical(""));
  CHECK(meta_labels_canonical("a=1"));
  CHECK(meta_labels_canonical("a=1,b=2"));
  CHECK(meta_labels_canonical("a=,b=%2C"));
  CHECK(!meta_labels_canonical(NULL));
  CHECK(!meta_labels_canonical("b=2,a=1"));   /* unsorted */
  CHECK(!meta_labels_canonical("a=1,a=1"));   /* duplicate */
  CHECK(!meta_labels_canonical("a=1,"));      /* trailing comma */
  CHECK(!meta_labels_canonical("a"));         /* no '=' */
  CHECK(!meta_labels_canonical("a=1 "));      /* untrimmed */
  CHECK(!meta_labels_canonical("a=x+y"));     /* '+' must be %2B */
  CHECK(!meta_labels_canonical("a=%2c"));     /* lower-case hex */
  CHECK(!meta_labels_canonical("a=b/c"));     /* '/' must be escaped */
  CHECK(!meta_labels_canonical("=v"));
  CHECK(!meta_labels_canonical("a=%4F"));     /* 'O' needs no escape */
}

static void test_labels_match(void) {
  CHECK(meta_labels_match(NULL, "a=1"));
  CHECK(meta_labels_match("", ""));
  CHECK(meta_labels_match("", "a=1,b=2"));
  CHECK(meta_labels_match("a=1", "a=1,b=2"));
  CHECK(meta_labels_match("b=2", "a=1,b=2"));
  CHECK(meta_labels_match("a=1,b=2", "a=1,b=2"));
  CHECK(meta_labels_match("a=1,c=3", "a=1,b=2,c=3"));
  CHECK(meta_labels_match("k=b", "k=a,k=b,k=c"));
  CHECK(!meta_labels_match("a=1", ""));
  CHECK(!meta_labels_match("a=1", NULL));
  CHECK(!meta_labels_match("a=2", "a=1,b=2"));
  CHECK(!meta_labels_match("a=1,b=3", "a=1,b=2"));
  CHECK(!meta_labels_match("a=1,b=2,c=3", "a=1,b=2"));
  CHECK(!meta_labels_match("a=", "a=1"));
  CHECK(!meta_labels_match("a=1", "a=10"));
  CHECK(!meta_labels_match("a=10", "a=1"));
  CHECK(!meta_labels_match("ab=1", "a=1,b=1"));
  CHECK(!meta_labels_match("c=1", "a=1,b=1"));
  CHECK(!meta_labels_match("0=1", "a=1,b=1"));
}

typedef struct collect {
  char buf[256];
  int calls, stop_at;
} collect;

static int collect_fn(const char *k, const char *v, void *arg) {
  collect *c = arg;
  c->calls++;
  size_t n = strlen(c->buf);
  snprintf(c->buf + n, sizeof c->buf - n, "[%s|%s]", k, v);
  return c->calls == c->stop_at ? 42 : 0;
}

static void test_labels_foreach_union(void) {
  collect c = {.buf = "", .calls = 0, .stop_at = 0};
  CHECK_I64(meta_labels_foreach("a=1,path=%2Fx%2Cy,v=%20", collect_fn, &c), 0);
  CHECK_STR(c.buf, "[a|1][path|/x,y][v| ]");
  CHECK_I64(c.calls, 3);

  collect d = {.buf = "", .calls = 0, .stop_at = 2};
  CHECK_I64(meta_labels_foreach("a=1,b=2,c=3", collect_fn, &d), 42);
  CHECK_STR(d.buf, "[a|1][b|2]");

  collect e = {.buf = "", .calls = 0, .stop_at = 0};
  CHECK_I64(meta_labels_foreach("", collect_fn, &e), 0);
  CHECK_I64(meta_labels_foreach(NULL, collect_fn, &e), 0);
  CHECK_I64(e.calls, 0);
  CHECK_I64(meta_labels_foreach("a=1,broken", collect_fn, &e), -1);
  CHECK_I64(meta_labels_foreach("a=%zz", collect_fn, &e), -1);

  static const struct {
    const char *a, *b, *want;
  } u[] = {
    {"", "", ""},
    {"a=1", "", "a=1"},
    {"", "b=2", "b=2"},
    {"a=1", "b=2", "a=1,b=2"},
    {"b=2", "a=1", "a=1,b=2"},
    {"a=1,c=3", "b=2,c=3", "a=1,b=2,c=3"},
    {"k=a", "k=b", "k=a,k=b"},
    {"a=1,b=2", "a=1,b=2", "a=1,b=2"},
    {"a=3,a%20b=2", "a-b=1", "a=3,a%20b=2,a-b=1"},
  };
  for (size_t i = 0; i < sizeof u / sizeof u[0]; i++) {
    char *r = meta_labels_union(u[i].a, u[i].b);
    CHECK_STR(r, u[i].want);
    CHECK(r && meta_labels_canonical(r));
    free(r);
  }
  char *r = meta_labels_union(NULL, "a=1");
  CHECK_STR(r, "a=1");
  free(r);
}

/* ---- times and durations ---------------------------------------------------- */

static void time_is(int line, const char *s, long long want) {
  int64_t t = 12345;
  int rc = meta_time_parse(s, 1700000000, &t);
  check_result(rc == 0 && t == want, __FILE__, line,
               "time \"%s\": rc %d, got %lld, want %lld", s, rc, (long long)t,
               want);
}

static void time_bad(int line, const char *s) {
  int64_t t = 12345;
  int rc = meta_time_parse(s, 1700000000, &t);
  check_result(rc == -1 && t == 12345, __FILE__, line,
               "time \"%s\" should fail (rc %d, %lld)", s ? s : "(null)", rc,
               (long long)t);
}

static void test_times(void) {
  time_is(__LINE__, "2006-01-02T15:04:05", 1136214245);
  time_is(__LINE__, "2006-01-02T15:04:05Z", 1136214245);
  time_is(__LINE__, "2006-01-02t15:04:05z", 1136214245);
  time_is(__LINE__, "2006-01-02T15:04:05.999999999Z", 1136214245);
  time_is(__LINE__, "2006-01-02T15:04:05.5", 1136214245);
  time_is(__LINE__, "2006-01-02T22:04:05+07:00", 1136214245);
  time_is(__LINE__, "2006-01-02T10:34:05-04:30", 1136214245);
  time_is(__LINE__, "2006-01-02T15:04:05+00:00", 1136214245);
  time_is(__LINE__, "1970-01-01T00:00:00", 0);
  time_is(__LINE__, "1969-12-31T23:59:59Z", -1);
  time_is(__LINE__, "2024-02-29T00:00:00", 1709164800);
  time_is(__LINE__, "2000-02-29T00:00:00", 951782400);
  time_is(__LINE__, "9999-12-31T23:59:59", 253402300799LL);
  time_is(__LINE__, "0000-01-01T00:00:00Z", -62167219200LL);
  time_is(__LINE__, "1136214245", 1136214245);
  time_is(__LINE__, "0", 0);
  time_is(__LINE__, "253402300799", 253402300799LL);
  time_is(__LINE__, "now", 1700000000);
  time_is(__LINE__, "now-1h30m", 1700000000 - 5400);
  time_is(__LINE__, "now+5m", 1700000000 + 300);
  time_is(__LINE__, "now-7d", 1700000000 - 7 * 86400);

  time_bad(__LINE__, NULL);
  time_bad(__LINE__, "");
  time_bad(__LINE__, "2006-13-02T15:04:05");
  time_bad(__LINE__, "2006-13-40T15:04:05");
  time_bad(__LINE__, "2006-00-02T15:04:05");
  time_bad(__LINE__, "2006-01-00T15:04:05");
  time_bad(__LINE__, "2006-01-32T15:04:05");
  time_bad(__LINE__, "2006-02-29T15:04:05"); /* not a leap year */
  time_bad(__LINE__, "1900-02-29T00:00:00"); /* nor is 1900 */
  time_bad(__LINE__, "2006-04-31T00:00:00");
  time_bad(__LINE__, "2006-01-02T24:00:00");
  time_bad(__LINE__, "2006-01-02T15:60:05");
  time_bad(__LINE__, "2006-01-02T15:04:60");
  time_bad(__LINE__, "2006-01-02 15:04:05");
  time_bad(__LINE__, "2006-01-02");
  time_bad(__LINE__, "2006-1-02T15:04:05");
  time_bad(__LINE__, "2006-01-02T15:04:05.");
  time_bad(__LINE__, "2006-01-02T15:04:05ZZ");
  time_bad(__LINE__, "2006-01-02T15:04:05+7:00");
  time_bad(__LINE__, "2006-01-02T15:04:05+07");
  time_bad(__LINE__, "2006-01-02T15:04:05+24:00");
  time_bad(__LINE__, "2006-01-02T15:04:05 ");
  time_bad(__LINE__, " 1136214245");
  time_bad(__LINE__, "-1");
  time_bad(__LINE__, "+1136214245");
  time_bad(__LINE__, "12ab");
  time_bad(__LINE__, "253402300800");            /* past 9999 */
  time_bad(__LINE__, "99999999999999999999999"); /* int64 overflow */
  time_bad(__LINE__, "0000-01-01T00:00:00+01:00");
  time_bad(__LINE__, "now-");
  time_bad(__LINE__, "now-1");
  time_bad(__LINE__, "now-1x");
  time_bad(__LINE__, "now -1h");
  time_bad(__LINE__, "nowish");
  time_bad(__LINE__, "NOW");
  time_bad(__LINE__, "now+99999999999999w");

  char buf[META_TIME_MAX];
  meta_time_format(1136214245, buf);
  CHECK_STR(buf, "2006-01-02T15:04:05Z");
  meta_time_format(0, buf);
  CHECK_STR(buf, "1970-01-01T00:00:00Z");
  meta_time_format(1709164800 + 86399, buf);
  CHECK_STR(buf, "2024-02-29T23:59:59Z");
  meta_time_format(-1, buf);
  CHECK_STR(buf, "1969-12-31T23:59:59Z");
  meta_time_stamp(1136214245, buf);
  CHECK_STR(buf, "20060102T150405Z");
  meta_time_stamp(253402300799LL, buf);
  CHECK_STR(buf, "99991231T235959Z");

  /* Formatting then parsing gives the same second back. */
  for (int64_t t = -86400 * 400; t < 4102444800LL; t += 7777777) {
    int64_t back = 0;
    meta_time_format(t, buf);
    CHECK(meta_time_parse(buf, 0, &back) == 0 && back == t);
  }
}

static void dur_is(int line, const char *s, long long want) {
  int64_t d = 777;
  int rc = meta_duration_parse(s, &d);
  check_result(rc == 0 && d == want, __FILE__, line,
               "duration \"%s\": rc %d, got %lld, want %lld", s, rc,
               (long long)d, want);
}

static void dur_bad(int line, const char *s) {
  int64_t d = 777;
  int rc = meta_duration_parse(s, &d);
  check_result(rc == -1 && d == 777, __FILE__, line,
               "duration \"%s\" should fail (rc %d, %lld)", s ? s : "(null)",
               rc, (long long)d);
}

static void test_durations(void) {
  dur_is(__LINE__, "1s", 1);
  dur_is(__LINE__, "90s", 90);
  dur_is(__LINE__, "5m", 300);
  dur_is(__LINE__, "120h", 432000);
  dur_is(__LINE__, "1h30m", 5400);
  dur_is(__LINE__, "7d", 604800);
  dur_is(__LINE__, "2w", 1209600);
  dur_is(__LINE__, "1w2d3h4m5s", 604800 + 172800 + 10800 + 240 + 5);
  dur_is(__LINE__, "1h1h", 7200);
  dur_is(__LINE__, "1.5h", 5400);
  dur_is(__LINE__, "0.5m", 30);
  dur_is(__LINE__, ".5m", 30);
  dur_is(__LINE__, "0h10s", 10);
  dur_is(__LINE__, "1.000000000s", 1);

  dur_bad(__LINE__, NULL);
  dur_bad(__LINE__, "");
  dur_bad(__LINE__, "0s");
  dur_bad(__LINE__, "0h0m");
  dur_bad(__LINE__, "90");        /* missing unit */
  dur_bad(__LINE__, "1h30");
  dur_bad(__LINE__, "5ms");       /* below a second */
  dur_bad(__LINE__, "1.5s");      /* not whole seconds */
  dur_bad(__LINE__, "0.0000000001h");
  dur_bad(__LINE__, "1y");
  dur_bad(__LINE__, "-1h");
  dur_bad(__LINE__, "+1h");
  dur_bad(__LINE__, "1 h");
  dur_bad(__LINE__, "h");
  dur_bad(__LINE__, ".h");
  dur_bad(__LINE__, "1H");
  dur_bad(__LINE__, "99999999999999999999s");   /* int64 overflow */
  dur_bad(__LINE__, "9999999999999999w");      /* overflow on multiply */
  dur_bad(__LINE__, "500000000w");             /* past the time range */
}

/* Raw pairs (another protocol's attributes) give the set a client would
** get by sending them escaped. */
static void test_labels_from_pairs(void) {
  const char *k[] = {"service.name", "region", "", "path", "a", "a"};
  const char *v[] = {"x", "eu,west=1", "dropped", "/a b+c%", "1", "1"};
  char err[META_ERRMAX] = "", *out = NULL, *big;

  CHECK(meta_labels_from_pairs(k, v, 6, &out, err) == 0);
  CHECK_STR(out, "a=1,path=%2Fa%20b%2Bc%25,region=eu%2Cwest%3D1,service.name=x");
  CHECK(meta_labels_canonical(out));
  free(out);
  out = NULL;
  CHECK(meta_labels_from_pairs(NULL, NULL, 0, &out, err) == 0);
  CHECK_STR(out, "");
  free(out);
  big = malloc(70000);
  memset(big, 'x', 69999);
  big[69999] = '\0';
  out = (char *)k;   /* sentinel: unchanged on failure */
  v[0] = big;
  CHECK(meta_labels_from_pairs(k, v, 1, &out, err) == -1);
  CHECK(out == (char *)k);
  CHECK(strstr(err, "too long") != NULL);
  free(big);
}

int main(void) {
  test_types();
  test_ids();
  test_services();
  test_labels_parse();
  test_labels_canonical();
  test_labels_match();
  test_labels_foreach_union();
  test_labels_from_pairs();
  test_times();
  test_durations();
  return check_done("test_meta");
}
