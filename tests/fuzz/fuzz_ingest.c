/*
** fuzz_ingest.c — libFuzzer target for the parsers of the Pyroscope doors
** (ingest/ingest.h).
**
** Input: one selector byte, then the bytes a client would send:
**   0  a Pyroscope name (`app.cpu{k=v}`), typed and untyped
**   1  folded stacks      2  lines stacks
**   3  a multipart/form-data body (boundary "B")
**   4  a Connect PushRequest in protobuf    5  the same in JSON
** Beyond "no crash, no sanitizer report" it checks the promises: a
** failure says why; stacks that convert are a valid pprof with samples;
** a name that parses has a valid service and canonical labels; a found
** multipart field lies inside the body; every pushed sample lies in
** memory the request owns (ASan checks the reads); a small budget is all
** given back.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ingest.h"
#include "pprof.h"

static void names(const char *s) {
  char err[INGEST_ERRMAX] = "", *canon = NULL;
  for (int typed = 0; typed < 2; typed++) {
    ingest_name n;
    if (ingest_name_parse(s, typed, &n, err) != 0) {
      FUZZ_CHECK(err[0] != '\0');
      continue;
    }
    FUZZ_CHECK(meta_service_valid(n.service));
    FUZZ_CHECK((int)n.type >= 0 && n.type < META_NTYPES);
    if (ingest_labels_canonical(n.labels, &canon, err) == 0) {
      FUZZ_CHECK(meta_labels_canonical(canon));
      free(canon);
    }
    ingest_name_clear(&n);
  }
}

static void stacks(const char *s, size_t n, int lines) {
  ingest_stacks_opts o = {.lines = lines, .type_name = n % 2 ? "wall" : "cpu",
                          .sample_rate = 100, .from = 1700000000,
                          .until = 1700000010};
  char err[INGEST_ERRMAX] = "", perr[PPROF_ERRMAX];
  budget *b = budget_new(1 << 20, 0);
  void *out = NULL;
  size_t len = 0;
  int busy = 0;
  budget_stats st;
  pprof_profile *p = NULL;

  if (ingest_stacks_to_pprof(s, n, &o, b, &out, &len, &busy, err) != 0) {
    FUZZ_CHECK(err[0] != '\0' && out == NULL);
  } else {
    FUZZ_CHECK(pprof_decode(out, len, 0, &p, perr) == PPROF_OK);
    FUZZ_CHECK(pprof_sample_count(p) > 0);
    pprof_free(p);
    free(out);
  }
  budget_get_stats(b, &st);
  FUZZ_CHECK(st.used == 0);
  budget_free(b);
}

static void multipart(const char *s, size_t n) {
  static const char *const fields[] = {"profile", "sample_type_config"};
  char err[INGEST_ERRMAX] = "";
  for (size_t i = 0; i < 2; i++) {
    const char *d = NULL;
    size_t dl = 0;
    int rc = ingest_multipart_field(s, n, "multipart/form-data; boundary=B",
                                    fields[i], &d, &dl, err);
    if (rc < 0) FUZZ_CHECK(err[0] != '\0');
    if (rc == 0) FUZZ_CHECK(d >= s && d + dl <= s + n);
  }
}

static void push(const char *s, size_t n, int json) {
  char err[INGEST_ERRMAX] = "";
  ingest_push *p = NULL;
  uint64_t sum = 0;
  if (ingest_push_decode(s, n, json, NULL, 0, &p, NULL, err) != 0) {
    FUZZ_CHECK(err[0] != '\0');
    return;
  }
  for (size_t i = 0; i < ingest_push_series(p); i++) {
    const char **k, **v;
    size_t nl = ingest_push_labels(p, i, &k, &v);
    for (size_t j = 0; j < nl; j++) sum += strlen(k[j]) + strlen(v[j]);
    for (size_t j = 0; j < ingest_push_samples(p, i); j++) {
      size_t len;
      const unsigned char *d = ingest_push_sample(p, i, j, &len);
      if (len > 0) sum += d[0] + d[len - 1];
    }
  }
  (void)sum;
  ingest_push_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s;
  if (size < 1) return 0;
  /* a NUL-terminated copy: names are C strings, and ASan sees overreads */
  if ((s = malloc(size)) == NULL) return 0;
  memcpy(s, data + 1, size - 1);
  s[size - 1] = '\0';
  switch (data[0] % 6) {
  case 0: names(s); break;
  case 1: stacks(s, size - 1, 0); break;
  case 2: stacks(s, size - 1, 1); break;
  case 3: multipart(s, size - 1); break;
  case 4: push(s, size - 1, 0); break;
  case 5: push(s, size - 1, 1); break;
  }
  free(s);
  return 0;
}
