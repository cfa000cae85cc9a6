/*
** test_otlp.c — unit tests of otlp/'s wire reader, through otlp_read with
** requests written byte by byte here: packed, unpacked and mixed repeated
** scalars read alike; unknown fields skipped; repeated dictionaries
** merged; truncated varints, over-long varints, lengths past the end,
** wrong wire types, groups and ragged packed fixed64 refused as
** malformed, before any profile is handed over (a bad entry nothing uses
** included); an index outside its table rejects only its profile; the
** converted pprof decodes with the values, frames and types sent.
**
** Requests are built in a fixed buffer by the put_* helpers below; each
** message is written to its own buffer first, then embedded (msg()).
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "otlp.h"
#include "pprof.h"

#define MAX_MEM (16u << 20)

/* A message being written. */
typedef struct buf {
  uint8_t b[4096];
  size_t n;
} buf;

static void put_byte(buf *m, uint8_t x) {
  if (m->n < sizeof m->b) m->b[m->n++] = x;
}

static void put_varint(buf *m, uint64_t v) {
  while (v >= 0x80) {
    put_byte(m, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  put_byte(m, (uint8_t)v);
}

static void put_tag(buf *m, unsigned field, unsigned wt) {
  put_varint(m, (uint64_t)field << 3 | wt);
}

/* A varint field. */
static void vf(buf *m, unsigned field, uint64_t v) {
  put_tag(m, field, 0);
  put_varint(m, v);
}

/* A fixed64 field. */
static void f64(buf *m, unsigned field, uint64_t v) {
  put_tag(m, field, 1);
  for (int i = 0; i < 8; i++) put_byte(m, (uint8_t)(v >> (8 * i)));
}

/* A length-delimited field of n bytes. */
static void bytes(buf *m, unsigned field, const void *p, size_t n) {
  put_tag(m, field, 2);
  put_varint(m, n);
  for (size_t i = 0; i < n; i++) put_byte(m, ((const uint8_t *)p)[i]);
}

static void str(buf *m, unsigned field, const char *s) {
  bytes(m, field, s, strlen(s));
}

/* Embeds message sub as field. */
static void msg(buf *m, unsigned field, const buf *sub) {
  bytes(m, field, sub->b, sub->n);
}

/* A packed run of varints. */
static void packed(buf *m, unsigned field, const uint64_t *v, size_t n) {
  buf run = { .n = 0 };
  for (size_t i = 0; i < n; i++) put_varint(&run, v[i]);
  msg(m, field, &run);
}

/* ---- the request: one function "main" at a location, one stack ----------- */

/* How a test varies the request. */
typedef struct shape {
  const buf *sample;        /* the profile's sample (default: values 5, 7) */
  int split_dictionary;     /* strings in a second dictionary message */
  const buf *extra_string;  /* a raw extra entry appended to the dictionary */
  int unknown_fields;       /* unknown fields of every wire type here and there */
} shape;

/* The dictionary: strings "", "main", "cpu", "nanoseconds", "svc"; one
** function, one location, one stack [1]. */
static void dictionary(buf *req, const shape *sh) {
  buf d = { .n = 0 }, d2 = { .n = 0 }, fn = { .n = 0 }, loc = { .n = 0 },
      ln = { .n = 0 }, st = { .n = 0 }, empty = { .n = 0 };
  buf *strs = sh->split_dictionary ? &d2 : &d;
  static const uint64_t one[] = { 1 };

  vf(&fn, 1, 1);           /* name_strindex: "main" */
  vf(&ln, 1, 1);           /* function_index */
  vf(&ln, 2, 10);          /* line */
  msg(&loc, 3, &ln);
  packed(&st, 1, one, 1);  /* location_indices */
  msg(&d, 2, &empty);      /* location 0 */
  msg(&d, 2, &loc);
  msg(&d, 3, &empty);      /* function 0 */
  msg(&d, 3, &fn);
  msg(&d, 7, &empty);      /* stack 0 */
  msg(&d, 7, &st);
  if (sh->unknown_fields) {
    vf(&d, 99, 7);
    str(&d, 98, "skipped");
    f64(&d, 97, 1);
    put_tag(&d, 96, 5);
    for (int i = 0; i < 4; i++) put_byte(&d, 0xff);
  }
  str(strs, 5, "");
  str(strs, 5, "main");
  str(strs, 5, "cpu");
  str(strs, 5, "nanoseconds");
  if (sh->extra_string) msg(strs, 5, sh->extra_string);
  msg(req, 2, &d);
  if (sh->split_dictionary) msg(req, 2, &d2);
}

static size_t request(buf *req, const shape *sh) {
  buf rp = { .n = 0 }, res = { .n = 0 }, kv = { .n = 0 }, any = { .n = 0 },
      sp = { .n = 0 }, prof = { .n = 0 }, vt = { .n = 0 }, smp = { .n = 0 };
  static const uint64_t values[] = { 5, 7 };

  req->n = 0;
  str(&any, 1, "svc");
  str(&kv, 1, "service.name");
  msg(&kv, 2, &any);
  msg(&res, 1, &kv);
  vf(&vt, 1, 2);
  vf(&vt, 2, 3);
  msg(&prof, 1, &vt);
  if (sh->sample == NULL) {
    vf(&smp, 1, 1);
    packed(&smp, 4, values, 2);
  }
  msg(&prof, 2, sh->sample ? sh->sample : &smp);
  f64(&prof, 3, 123456789);
  if (sh->unknown_fields) vf(&prof, 77, 1);
  msg(&sp, 2, &prof);
  msg(&rp, 1, &res);
  msg(&rp, 2, &sp);
  msg(req, 1, &rp);
  dictionary(req, sh);
  return req->n;
}

/* ---- the callback: what it was given ---------------------------------------- */

typedef struct got {
  int calls;
  char service[64], type[64];
  int64_t value, time;
  char frame[64];
} got;

/* otlp.h's promise, on which the store's store_ingest_built relies: what
** otlp_read hands over is a valid pprof whose time and sample types are
** those reported with it. */
static void check_built(const otlp_profile *p) {
  char types[PPROF_TYPES_MAX] = "", perr[PPROF_ERRMAX] = "";
  int64_t nanos = -1;
  CHECK(pprof_check_types(p->pprof, p->len, 0, NULL, &nanos, types, perr) ==
        PPROF_OK);
  CHECK(nanos == p->time_nanos);
  CHECK(p->types != NULL && strcmp(types, p->types) == 0);
}

static int each(const otlp_profile *p, void *arg, char err[OTLP_ERRMAX]) {
  got *g = arg;
  pprof_stacks *s = NULL;
  char perr[PPROF_ERRMAX];
  const uint32_t *fr;
  size_t n = 0;

  (void)err;
  g->calls++;
  snprintf(g->service, sizeof g->service, "%s", p->service ? p->service : "");
  snprintf(g->type, sizeof g->type, "%s/%s", p->sample_type, p->sample_unit);
  g->time = p->time_nanos;
  check_built(p);
  if (!CHECK(pprof_stacks_decode(p->pprof, p->len, 0, &s, perr) == PPROF_OK))
    return 0;
  if (CHECK(pprof_stacks_nsamples(s) == 1)) {
    g->value = pprof_stacks_value(s, 0, 0);
    fr = pprof_stacks_frames(s, 0, &n);
    if (CHECK(n == 1))
      snprintf(g->frame, sizeof g->frame, "%s",
               pprof_stacks_name(s, fr[0] & ~PPROF_FRAME_INLINED));
  }
  pprof_stacks_free(s);
  return 0;
}

static otlp_rc run(const void *b, size_t n, got *g, otlp_result *res,
                   char *err) {
  memset(g, 0, sizeof *g);
  err[0] = '\0';
  return otlp_read(b, n, MAX_MEM, NULL, each, g, res, err);
}

/* The request of sh converts to one profile of value want. */
static void converts(const shape *sh, int64_t want, int line) {
  buf req;
  got g;
  otlp_result res;
  char err[OTLP_ERRMAX];
  otlp_rc rc;

  request(&req, sh);
  rc = run(req.b, req.n, &g, &res, err);
  check_result(rc == OTLP_OK, __FILE__, line, "otlp_read: %d %s", rc, err);
  check_result(g.calls == 1 && res.profiles == 1 && res.rejected == 0,
               __FILE__, line, "calls %d profiles %zu rejected %zu (%s)",
               g.calls, res.profiles, res.rejected, res.first_error);
  check_result(g.value == want, __FILE__, line, "value %lld, want %lld",
               (long long)g.value, (long long)want);
  check_result(strcmp(g.frame, "main") == 0 && strcmp(g.service, "svc") == 0 &&
               strcmp(g.type, "cpu/nanoseconds") == 0 && g.time == 123456789,
               __FILE__, line, "frame %s service %s type %s time %lld",
               g.frame, g.service, g.type, (long long)g.time);
}

/* bytes b..n are malformed: EDECODE with the reason, nothing handed over. */
static void malformed(const void *b, size_t n, int line) {
  got g;
  otlp_result res;
  char err[OTLP_ERRMAX];
  otlp_rc rc = run(b, n, &g, &res, err);

  check_result(rc == OTLP_EDECODE && g.calls == 0 &&
               strstr(err, "malformed request") != NULL,
               __FILE__, line, "rc %d calls %d err \"%s\"", rc, g.calls, err);
}

/* The request of sh is malformed. */
static void malformed_shape(const shape *sh, int line) {
  buf req;
  request(&req, sh);
  malformed(req.b, req.n, line);
}

int main(void) {
  buf req, smp;
  shape sh;
  got g;
  otlp_result res;
  char err[OTLP_ERRMAX];
  static const uint64_t five[] = { 5 }, ts[] = { 1, 2, 3 };

  /* packed values (as the Collector's Go encoder sends), the default */
  memset(&sh, 0, sizeof sh);
  converts(&sh, 12, __LINE__);

  /* unpacked values: one field per value */
  smp.n = 0;
  vf(&smp, 1, 1);
  vf(&smp, 4, 5);
  vf(&smp, 4, 7);
  sh.sample = &smp;
  converts(&sh, 12, __LINE__);

  /* mixed: a packed run and a single value, and the stack index last */
  smp.n = 0;
  packed(&smp, 4, five, 1);
  vf(&smp, 4, 7);
  vf(&smp, 1, 1);
  converts(&sh, 12, __LINE__);

  /* timestamps only, unpacked fixed64 then a packed run: one event each */
  smp.n = 0;
  vf(&smp, 1, 1);
  f64(&smp, 5, 1);
  {
    buf run = { .n = 0 };
    for (int k = 1; k < 3; k++) {
      uint64_t t = ts[k];
      for (int i = 0; i < 8; i++) put_byte(&run, (uint8_t)(t >> (8 * i)));
    }
    msg(&smp, 5, &run);
  }
  converts(&sh, 3, __LINE__);

  /* unknown fields of every wire type skipped; dictionary split in two */
  memset(&sh, 0, sizeof sh);
  sh.unknown_fields = 1;
  sh.split_dictionary = 1;
  converts(&sh, 12, __LINE__);

  /* ---- malformed ---- */
  memset(&sh, 0, sizeof sh);
  request(&req, &sh);
  /* every proper prefix that cuts a field short is malformed; the ones
  ** ending between top-level fields are requests too (fewer fields) */
  {
    static const uint8_t trunc_varint[] = { 0x0a, 0x80 };
    static const uint8_t past_end[] = { 0x0a, 0x05, 0x00 };
    static const uint8_t long_varint[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                           0xff, 0xff, 0xff, 0xff, 0xff, 0x01 };
    static const uint8_t over64[] = { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0x7f };
    static const uint8_t group[] = { 0x0b, 0x0c };
    static const uint8_t wt7[] = { 0x0f, 0x00 };
    static const uint8_t field0[] = { 0x00, 0x00 };
    static const uint8_t wrong_wt[] = { 0x08, 0x01 };   /* resource_profiles as varint */
    static const uint8_t trunc_fixed[] = { 0x19, 0x01, 0x02 };
    malformed(trunc_varint, sizeof trunc_varint, __LINE__);
    malformed(past_end, sizeof past_end, __LINE__);
    malformed(long_varint, sizeof long_varint, __LINE__);
    malformed(over64, sizeof over64, __LINE__);
    malformed(group, sizeof group, __LINE__);
    malformed(wt7, sizeof wt7, __LINE__);
    malformed(field0, sizeof field0, __LINE__);
    malformed(wrong_wt, sizeof wrong_wt, __LINE__);
    malformed(trunc_fixed, sizeof trunc_fixed, __LINE__);
    /* the whole request cut one byte short */
    malformed(req.b, req.n - 1, __LINE__);
  }
  /* nested: a sample whose stack index is a fixed64 */
  smp.n = 0;
  f64(&smp, 1, 1);
  vf(&smp, 4, 5);
  sh.sample = &smp;
  malformed_shape(&sh, __LINE__);
  /* nested: a truncated varint at the end of a sample */
  smp.n = 0;
  vf(&smp, 4, 5);
  put_tag(&smp, 1, 0);
  put_byte(&smp, 0x80);
  malformed_shape(&sh, __LINE__);
  /* nested: a packed run whose last varint is cut */
  smp.n = 0;
  vf(&smp, 1, 1);
  {
    static const uint8_t cut[] = { 0x05, 0x87 };
    bytes(&smp, 4, cut, sizeof cut);
  }
  malformed_shape(&sh, __LINE__);
  /* nested: packed timestamps of 12 bytes (not a whole number of fixed64) */
  smp.n = 0;
  vf(&smp, 1, 1);
  {
    static const uint8_t twelve[12] = { 0 };
    bytes(&smp, 5, twelve, sizeof twelve);
  }
  malformed_shape(&sh, __LINE__);
  /* a dictionary string sent as a varint, though no profile uses it */
  memset(&sh, 0, sizeof sh);
  {
    buf d = { .n = 0 };
    request(&req, &sh);
    vf(&d, 5, 3);
    msg(&req, 2, &d);
    malformed(req.b, req.n, __LINE__);
  }
  /* a location nobody reaches, with a length past its end */
  {
    buf d = { .n = 0 }, loc = { .n = 0 };
    request(&req, &sh);
    put_tag(&loc, 3, 2);
    put_varint(&loc, 9);
    put_byte(&loc, 0x08);
    msg(&d, 2, &loc);
    msg(&req, 2, &d);
    malformed(req.b, req.n, __LINE__);
  }

  /* ---- rejected: an index outside its table, only that profile ---- */
  smp.n = 0;
  vf(&smp, 1, 9);
  vf(&smp, 4, 5);
  sh.sample = &smp;
  request(&req, &sh);
  CHECK(run(req.b, req.n, &g, &res, err) == OTLP_OK);
  CHECK(g.calls == 0 && res.profiles == 1 && res.rejected == 1);
  CHECK_STR(res.first_error,
            "profile 0: stack index 9 outside its table (2 entries)");

  /* an empty body: a request of nothing */
  CHECK(run("", 0, &g, &res, err) == OTLP_OK);
  CHECK(res.profiles == 0 && g.calls == 0);

  return check_done("test_otlp");
}
