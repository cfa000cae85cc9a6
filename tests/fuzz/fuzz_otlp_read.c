/*
** fuzz_otlp_read.c — libFuzzer target for otlp_read (otlp/otlp.h).
**
** Input: any bytes, as an OTLP exporter would POST them.  Beyond "no
** crash, no sanitizer report" it checks the converter's promises: every
** profile it hands over is a valid pprof (pprof_decode takes it, with at
** least one sample, and so does pprof_check_types, which the store skips
** for it) whose time and sample types are the ones reported; the counts
** add up; a failed call says why; the memory bound holds (a small max_mem
** makes OTLP_ETOOBIG, never an allocation past it).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "otlp.h"
#include "pprof.h"

#define FUZZ_MAX_MEM (16u << 20)

static int each(const otlp_profile *p, void *arg, char err[OTLP_ERRMAX]) {
  size_t *taken = arg;
  pprof_profile *pp = NULL;
  char perr[PPROF_ERRMAX], types[PPROF_TYPES_MAX];
  int64_t nanos = -1;

  FUZZ_CHECK(p->pprof != NULL && p->len > 0);
  FUZZ_CHECK(pprof_decode(p->pprof, p->len, 0, &pp, perr) == PPROF_OK);
  FUZZ_CHECK(pprof_sample_count(pp) > 0);
  FUZZ_CHECK(pprof_time_nanos(pp) == p->time_nanos);
  /* what the store's store_ingest_built takes on trust */
  FUZZ_CHECK(pprof_check_types(p->pprof, p->len, 0, NULL, &nanos, types,
                               perr) == PPROF_OK);
  FUZZ_CHECK(nanos == p->time_nanos && p->types != NULL &&
             strcmp(types, p->types) == 0);
  FUZZ_CHECK(p->sample_type != NULL && p->sample_unit != NULL &&
             p->period_type != NULL);
  for (size_t i = 0; i < p->nattrs; i++)
    FUZZ_CHECK(p->attrs[i].key[0] != '\0' && p->attrs[i].value != NULL);
  pprof_free(pp);
  /* refuse every other one, as a store might */
  if ((*taken)++ % 2) {
    strcpy(err, "refused by the fuzzer");
    return 1;
  }
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char err[OTLP_ERRMAX] = "";
  otlp_result res;
  size_t taken = 0;
  otlp_rc rc = otlp_read(data, size, FUZZ_MAX_MEM, NULL, each, &taken, &res,
                         err);

  FUZZ_CHECK(res.rejected <= res.profiles);
  if (rc != OTLP_OK) {
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    return 0;
  }
  /* each refused every other profile it was given */
  FUZZ_CHECK(res.rejected >= taken / 2);
  FUZZ_CHECK(res.rejected == 0 || res.first_error[0] != '\0');
  return 0;
}
