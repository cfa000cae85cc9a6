/*
** test_scrape.c — unit tests of scrape/'s parsing: type lists and the
** targets file (values, defaults left at 0, comments, and the
** "file:line: reason" of each kind of bad line).  Scraping itself is
** covered by tests/integration/scrape.sh against a real Go program.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "scrape.h"
#include "check.h"

static char path[64];

static void write_file(const char *text) {
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

static void test_types(void) {
  unsigned t = 12345;

  CHECK_I64(scrape_types_parse("cpu", &t), 0);
  CHECK_I64(t, 1u << META_CPU);
  CHECK_I64(scrape_types_parse("cpu,heap,goroutine,mutex,block", &t), 0);
  CHECK_I64(t, SCRAPE_DEFAULT_TYPES);
  CHECK_I64(scrape_types_parse("trace,other,threadcreate", &t), 0);
  CHECK_I64(t, (1u << META_TRACE) | (1u << META_OTHER) | (1u << META_THREADCREATE));
  t = 7;
  CHECK_I64(scrape_types_parse("cpu,bogus", &t), -1);
  CHECK_I64(scrape_types_parse("", &t), -1);
  CHECK_I64(scrape_types_parse("cpu,wall", &t), -1);
  CHECK_I64(scrape_types_parse(",", &t), -1);
  CHECK_I64(t, 7);
}

static void test_config_good(void) {
  scrape_target *v = NULL;
  size_t n = 0;
  char err[SCRAPE_ERRMAX] = "";

  write_file("# targets\n"
             "\n"
             "http://127.0.0.1:6060/ service=api labels=region=eu,env=prod every=2m "
             "types=cpu,heap seconds=5   # the api\n"
             "  https://b:7070/debug/pprof service=b\n");
  CHECK_I64(scrape_config_load(path, &v, &n, err), 0);
  CHECK_I64(n, 2);
  if (n == 2) {
    CHECK_STR(v[0].url, "http://127.0.0.1:6060");
    CHECK_STR(v[0].service, "api");
    CHECK_STR(v[0].labels, "env=prod,region=eu");
    CHECK_I64(v[0].every_sec, 120);
    CHECK_I64(v[0].cpu_seconds, 5);
    CHECK_I64(v[0].types, (1u << META_CPU) | (1u << META_HEAP));
    CHECK_STR(v[1].url, "https://b:7070");
    CHECK_STR(v[1].service, "b");
    CHECK_STR(v[1].labels, "");
    CHECK_I64(v[1].every_sec, 0);   /* defaults are applied by scrape_start */
    CHECK_I64(v[1].cpu_seconds, 0);
    CHECK_I64(v[1].types, 0);
  }
  scrape_targets_free(v, n);
  scrape_targets_free(NULL, 0);
}

static void check_bad(const char *text, const char *want) {
  scrape_target untouched, *v = &untouched; /* must stay as is */
  size_t n = 99;
  char err[SCRAPE_ERRMAX] = "", full[SCRAPE_ERRMAX];

  write_file(text);
  CHECK_I64(scrape_config_load(path, &v, &n, err), -1);
  snprintf(full, sizeof full, "%s:%s", path, want);
  CHECK_STR(err, full);
  CHECK(v == &untouched);
  CHECK_I64(n, 99);
}

static void test_config_bad(void) {
  check_bad("http://a:1 service=a\nhttp://b:1\n", "2: missing service=NAME");
  check_bad("a:1 service=a\n", "1: the line must start with the target's http:// URL");
  check_bad("http://a:1 service=a bogus=1\n",
            "1: unknown key (want service, labels, every, types, seconds)");
  check_bad("\n\nhttp://a:1 service=a every=soon\n", "3: invalid every (e.g. 60s, 5m)");
  check_bad("http://a:1 service=a types=cpu,gpu\n",
            "1: invalid types (e.g. cpu,heap,goroutine,mutex,block)");
  check_bad("http://a:1 service=a/b\n", "1: invalid service name");
  check_bad("http://a:1 service=a labels=novalue\n", "1: invalid labels (want k=v,k=v)");
  check_bad("http://a:1 service=a seconds=0\n", "1: invalid seconds (e.g. 10)");
  check_bad("http://a:1 service=a standalone\n", "1: expected key=value");
  check_bad("# nothing\n\n", " no targets");
}

int main(void) {
  int fd;

  snprintf(path, sizeof path, "/tmp/test_scrape.XXXXXX");
  if ((fd = mkstemp(path)) < 0) return 2;
  close(fd);
  test_types();
  test_config_good();
  test_config_bad();
  unlink(path);
  {
    scrape_target *v = NULL;
    size_t n = 0;
    char err[SCRAPE_ERRMAX];
    CHECK_I64(scrape_config_load(path, &v, &n, err), -1); /* now missing */
    CHECK(strstr(err, "No such file") != NULL);
  }
  return check_done("test_scrape");
}
