/*
** fuzz_pprof_merge.c — libFuzzer target for the streaming merge
** (pprof_merge_add / pprof_merge_result, proto/pprof.h).
**
** Input layout: a 4-byte little-endian length n, then profile A (n bytes),
** then profile B (the rest).  When n does not fit, the input is split in
** half instead, so arbitrary mutations still reach the merge.  Seeds made
** by tests/integration/fuzz_short.sh pair two real fixtures this way.
**
** Checks: a failed add leaves the accumulator as it was (count unchanged,
** the result still what it was before); a result can be taken, more added,
** and a result taken again; every result decodes (or has only zero
** samples, which the merge drops, so it is "empty"); B merges after A
** only if B validates alone (pprof_check), since ids A left in the reused
** view once made a B with unknown ids pass (issue 13; regress/pprof_merge/
** stale-ids is that pair).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pprof.h"

#define FUZZ_MAX_INFLATE (8u << 20)


/* Takes a result of m and checks that it is a decodable profile (or one
** whose samples were all dropped as zero).  Returns its length, 0 when m
** is empty. */
static size_t take_result(pprof_merge *m) {
  void *out = NULL;
  size_t len = 0;
  pprof_profile *p = NULL;
  char err[PPROF_ERRMAX];
  pprof_rc rc;

  rc = pprof_merge_result(m, &out, &len, err);
  if (pprof_merge_count(m) == 0) {
    FUZZ_CHECK(rc == PPROF_EEMPTY);
    return 0;
  }
  if (rc == PPROF_ENOMEM) return 0;
  FUZZ_CHECK(rc == PPROF_OK && out != NULL && len > 0);
  rc = pprof_decode(out, len, 0, &p, err);
  FUZZ_CHECK(rc == PPROF_OK || rc == PPROF_EEMPTY);
  pprof_free(p);
  free(out);
  return len;
}

static pprof_rc add(pprof_merge *m, const uint8_t *buf, size_t len) {
  char err[PPROF_ERRMAX];
  size_t before = pprof_merge_count(m);
  pprof_rc rc;

  err[0] = '\0';
  rc = pprof_merge_add(m, buf, len, err);
  if (rc == PPROF_OK) {
    FUZZ_CHECK(pprof_merge_count(m) == before + 1);
  } else {
    FUZZ_CHECK(pprof_merge_count(m) == before);
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
  }
  return rc;
}

/* 1 when buf is a profile on its own: valid, or valid but without samples
** (which a merge accepts). */
static int valid_alone(const uint8_t *buf, size_t len) {
  char err[PPROF_ERRMAX];
  pprof_rc rc = pprof_check(buf, len, FUZZ_MAX_INFLATE, NULL, err);

  return rc == PPROF_OK || rc == PPROF_EEMPTY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *a = data, *b;
  size_t alen = size / 2, blen;
  pprof_merge *m;

  if (size >= 4) {
    uint32_t n = (uint32_t)data[0] | (uint32_t)data[1] << 8 |
                 (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    if (n <= size - 4) {
      a = data + 4;
      alen = n;
    }
  }
  b = a + alen;
  blen = size - (size_t)(b - data);

  m = pprof_merge_new(FUZZ_MAX_INFLATE);
  if (m == NULL) return 0;
  FUZZ_CHECK(pprof_merge_count(m) == 0);
  take_result(m);
  add(m, a, alen);
  take_result(m);         /* the accumulator stays usable after a result */
  if (add(m, b, blen) == PPROF_OK)
    FUZZ_CHECK(valid_alone(b, blen));
  take_result(m);
  add(m, a, alen);        /* adding the same profile again must also work */
  take_result(m);
  pprof_merge_free(m);
  return 0;
}
