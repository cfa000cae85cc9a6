/*
** test_proto.c — unit tests of proto/: decoding every fixture (gzip and
** plain), encode/decode round trips, each kind of malformed input with its
** exact error code and message, and the merge's semantics (headers, keys,
** zero samples, address rebasing, labels, type mismatches, failed adds
** leaving the accumulator unchanged), and the two-step merge (prepare on
** any thread, commit in order: the same bytes as pprof_merge_add).
**
** Malformed and synthetic profiles are built with the protoc-c generated
** API (struct tp below) or as raw bytes; results are inspected by
** unpacking them with the same API.
*/
#include <glob.h>
#include <libdeflate.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof.h"
#include "profile.pb-c.h"
#include "check.h"

/* ---- helpers ------------------------------------------------------------- */

typedef struct buf {
  unsigned char *p;
  size_t len;
} buf;

static buf read_file(const char *path) {
  buf b = {NULL, 0};
  FILE *f = fopen(path, "rb");
  long n;

  if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
      fseek(f, 0, SEEK_SET) != 0) {
    fprintf(stderr, "cannot read %s\n", path);
    exit(2);
  }
  b.p = malloc((size_t)n + 1);
  if (b.p == NULL || fread(b.p, 1, (size_t)n, f) != (size_t)n)
    exit(2);
  b.len = (size_t)n;
  fclose(f);
  return b;
}

static const char *tests_dir(void) {
  const char *d = getenv("TESTS_DIR");
  return d ? d : "tests";
}

static buf fixture(const char *name) {
  char path[4096];

  snprintf(path, sizeof path, "%s/fixtures/%s", tests_dir(), name);
  return read_file(path);
}

static buf gunzip(buf in) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  buf out = {malloc(64 << 20), 0};

  if (d == NULL || out.p == NULL ||
      libdeflate_gzip_decompress(d, in.p, in.len, out.p, 64 << 20, &out.len) !=
          LIBDEFLATE_SUCCESS)
    exit(2);
  libdeflate_free_decompressor(d);
  return out;
}

static buf gzip(const void *p, size_t len) {
  struct libdeflate_compressor *c = libdeflate_alloc_compressor(6);
  buf out;

  out.p = malloc(libdeflate_gzip_compress_bound(c, len));
  out.len = libdeflate_gzip_compress(c, p, len, out.p,
                                     libdeflate_gzip_compress_bound(c, len));
  libdeflate_free_compressor(c);
  if (out.len == 0)
    exit(2);
  return out;
}

/* Unpacks a gzip result for inspection (caller frees with unpacked_free). */
static Perftools__Profiles__Profile *unpack(const void *gz, size_t len) {
  buf in = {(unsigned char *)gz, len}, raw = gunzip(in);
  Perftools__Profiles__Profile *p =
      perftools__profiles__profile__unpack(NULL, raw.len, raw.p);

  free(raw.p);
  if (p == NULL) {
    fprintf(stderr, "result does not unpack\n");
    exit(2);
  }
  return p;
}

static void unpacked_free(Perftools__Profiles__Profile *p) {
  perftools__profiles__profile__free_unpacked(p, NULL);
}

/* 1 when string ix of p is s. */
static int str_is(const Perftools__Profiles__Profile *p, int64_t ix,
                  const char *s) {
  return ix >= 0 && (size_t)ix < p->n_string_table &&
         p->string_table[ix].len == strlen(s) &&
         memcmp(p->string_table[ix].data, s, strlen(s)) == 0;
}

static const Perftools__Profiles__Location *
find_loc(const Perftools__Profiles__Profile *p, uint64_t id) {
  for (size_t i = 0; i < p->n_location; i++)
    if (p->location[i]->id == id)
      return p->location[i];
  return NULL;
}

static const Perftools__Profiles__Function *
find_fn(const Perftools__Profiles__Profile *p, uint64_t id) {
  for (size_t i = 0; i < p->n_function; i++)
    if (p->function[i]->id == id)
      return p->function[i];
  return NULL;
}

/* ---- building test profiles ---------------------------------------------- */

#define TP_MAX 16

/* A profile under construction with the generated API: sample types
** samples/count + cpu/nanoseconds, period type cpu/nanoseconds. */
typedef struct tp {
  Perftools__Profiles__Profile p;
  ProtobufCBinaryData str[64];
  char strbuf[64][64];
  Perftools__Profiles__ValueType vt[4], *vtp[4], period_type;
  Perftools__Profiles__Sample s[TP_MAX], *sp[TP_MAX];
  uint64_t locid[TP_MAX][8];
  int64_t val[TP_MAX][4];
  Perftools__Profiles__Label lab[TP_MAX][4], *labp[TP_MAX][4];
  Perftools__Profiles__Mapping m[TP_MAX], *mp[TP_MAX];
  Perftools__Profiles__Location l[TP_MAX], *lp[TP_MAX];
  Perftools__Profiles__Line ln[TP_MAX], *lnp[TP_MAX];
  Perftools__Profiles__Function f[TP_MAX], *fp[TP_MAX];
  int64_t comment[4];
} tp;

static int64_t tp_str(tp *t, const char *s) {
  size_t i;

  for (i = 0; i < t->p.n_string_table; i++)
    if (t->str[i].len == strlen(s) && memcmp(t->str[i].data, s, t->str[i].len) == 0)
      return (int64_t)i;
  snprintf(t->strbuf[i], sizeof t->strbuf[i], "%s", s);
  t->str[i].data = (uint8_t *)t->strbuf[i];
  t->str[i].len = strlen(s);
  t->p.n_string_table++;
  return (int64_t)i;
}

static void tp_types(tp *t, const char *t0, const char *u0, const char *t1,
                     const char *u1) {
  t->vt[0].type = tp_str(t, t0);
  t->vt[0].unit = tp_str(t, u0);
  t->vt[1].type = tp_str(t, t1);
  t->vt[1].unit = tp_str(t, u1);
  t->p.n_sample_type = 2;
}

static void tp_init(tp *t) {
  memset(t, 0, sizeof *t);
  perftools__profiles__profile__init(&t->p);
  t->p.string_table = t->str;
  tp_str(t, "");
  for (int i = 0; i < 4; i++) {
    perftools__profiles__value_type__init(&t->vt[i]);
    t->vtp[i] = &t->vt[i];
  }
  t->p.sample_type = t->vtp;
  tp_types(t, "samples", "count", "cpu", "nanoseconds");
  perftools__profiles__value_type__init(&t->period_type);
  t->period_type.type = tp_str(t, "cpu");
  t->period_type.unit = tp_str(t, "nanoseconds");
  t->p.period_type = &t->period_type;
  t->p.period = 10000000;
  t->p.time_nanos = 1000;
  t->p.duration_nanos = 5;
  t->p.sample = t->sp;
  t->p.mapping = t->mp;
  t->p.location = t->lp;
  t->p.function = t->fp;
  t->p.comment = t->comment;
}

static void tp_fn(tp *t, uint64_t id, const char *name, int64_t start_line) {
  Perftools__Profiles__Function *f = &t->f[t->p.n_function];

  perftools__profiles__function__init(f);
  f->id = id;
  f->name = tp_str(t, name);
  f->system_name = f->name;
  f->filename = tp_str(t, "main.go");
  f->start_line = start_line;
  t->fp[t->p.n_function++] = f;
}

static void tp_map(tp *t, uint64_t id, uint64_t start, uint64_t limit,
                   const char *file) {
  Perftools__Profiles__Mapping *m = &t->m[t->p.n_mapping];

  perftools__profiles__mapping__init(m);
  m->id = id;
  m->memory_start = start;
  m->memory_limit = limit;
  m->filename = tp_str(t, file);
  m->has_functions = 1;
  t->mp[t->p.n_mapping++] = m;
}

/* A location with one line (fn_id 0: no line). */
static void tp_loc(tp *t, uint64_t id, uint64_t map_id, uint64_t addr,
                   uint64_t fn_id, int64_t line) {
  size_t i = t->p.n_location;
  Perftools__Profiles__Location *l = &t->l[i];

  perftools__profiles__location__init(l);
  l->id = id;
  l->mapping_id = map_id;
  l->address = addr;
  if (fn_id != 0) {
    perftools__profiles__line__init(&t->ln[i]);
    t->ln[i].function_id = fn_id;
    t->ln[i].line = line;
    t->lnp[i] = &t->ln[i];
    l->n_line = 1;
    l->line = &t->lnp[i];
  }
  t->lp[t->p.n_location++] = l;
}

/* A sample on locations ids[0..n) (leaf first) with values v0, v1. */
static Perftools__Profiles__Sample *tp_sample(tp *t, size_t n,
                                              const uint64_t *ids, int64_t v0,
                                              int64_t v1) {
  size_t i = t->p.n_sample;
  Perftools__Profiles__Sample *s = &t->s[i];

  perftools__profiles__sample__init(s);
  memcpy(t->locid[i], ids, n * sizeof *ids);
  s->n_location_id = n;
  s->location_id = t->locid[i];
  t->val[i][0] = v0;
  t->val[i][1] = v1;
  s->n_value = 2;
  s->value = t->val[i];
  s->label = t->labp[i];
  t->sp[t->p.n_sample++] = s;
  return s;
}

/* Adds a label to sample i: a string one when str != NULL, else numeric. */
static void tp_label(tp *t, size_t i, const char *key, const char *str,
                     int64_t num, const char *unit) {
  Perftools__Profiles__Sample *s = &t->s[i];
  Perftools__Profiles__Label *l = &t->lab[i][s->n_label];

  perftools__profiles__label__init(l);
  l->key = tp_str(t, key);
  if (str != NULL) {
    l->str = tp_str(t, str);
  } else {
    l->num = num;
    l->num_unit = unit ? tp_str(t, unit) : 0;
  }
  t->labp[i][s->n_label++] = l;
}

/* The usual small valid profile: main binary mapping 1, functions main (1)
** and work (2), locations 1 (work) and 2 (main), one sample [1 2] = (v0, v1). */
static void tp_basic(tp *t, uint64_t map_start, int64_t v0, int64_t v1) {
  static const uint64_t stack[] = {1, 2};

  tp_init(t);
  tp_map(t, 1, map_start, map_start + 0x10000, "/bin/app");
  tp_fn(t, 1, "main", 1);
  tp_fn(t, 2, "work", 20);
  tp_loc(t, 1, 1, map_start + 0x100, 2, 25);
  tp_loc(t, 2, 1, map_start + 0x200, 1, 5);
  tp_sample(t, 2, stack, v0, v1);
}

/* Packs t as plain protobuf (caller frees). */
static buf tp_pack(const tp *t) {
  buf b;

  b.len = perftools__profiles__profile__get_packed_size(&t->p);
  b.p = malloc(b.len + 1);
  perftools__profiles__profile__pack(&t->p, b.p);
  return b;
}

static buf tp_gz(const tp *t) {
  buf raw = tp_pack(t), gz = gzip(raw.p, raw.len);

  free(raw.p);
  return gz;
}

/* Decodes b expecting failure rc with message msg; also through pprof_check
** and pprof_merge_add (which must then leave an empty accumulator empty). */
static void expect_bad(buf b, pprof_rc rc, const char *msg, size_t limit) {
  char err[PPROF_ERRMAX] = "";
  pprof_profile *p = (pprof_profile *)&err; /* must stay untouched */
  pprof_merge *m;
  int64_t tn = 42;

  CHECK_I64(pprof_decode(b.p, b.len, limit, &p, err), rc);
  CHECK_STR(err, msg);
  CHECK(p == (pprof_profile *)&err);
  err[0] = '\0';
  CHECK_I64(pprof_check(b.p, b.len, limit, &tn, err), rc);
  CHECK_STR(err, msg);
  CHECK_I64(tn, 42);
  if (rc == PPROF_EEMPTY)
    return; /* the merge accepts profiles without samples */
  m = pprof_merge_new(limit);
  err[0] = '\0';
  CHECK_I64(pprof_merge_add(m, b.p, b.len, err), rc);
  CHECK_STR(err, msg);
  CHECK_I64(pprof_merge_count(m), 0);
  pprof_merge_free(m);
}

static void expect_bad_tp(const tp *t, pprof_rc rc, const char *msg) {
  buf b = tp_pack(t), gz = gzip(b.p, b.len);

  expect_bad(b, rc, msg, 0);
  expect_bad(gz, rc, msg, 0);
  free(b.p);
  free(gz.p);
}

/* ---- single profiles ------------------------------------------------------ */

static void test_strerror(void) {
  CHECK_STR(pprof_strerror(PPROF_OK), "ok");
  CHECK_STR(pprof_strerror(PPROF_EGZIP), "truncated or corrupt gzip");
  CHECK_STR(pprof_strerror(PPROF_ETOOBIG), "profile too big");
  CHECK_STR(pprof_strerror(PPROF_EEMPTY), "no samples");
  CHECK_STR(pprof_strerror(PPROF_EMISMATCH), "profile types differ");
}

/* Every fixture decodes gzip'd and plain; the round trip keeps it. */
static void test_fixtures(void) {
  char pattern[4096], err[PPROF_ERRMAX];
  glob_t g;
  size_t i, n = 0, nempty = 0;
  pprof_rc rc;

  snprintf(pattern, sizeof pattern, "%s/fixtures/*.pb.gz", tests_dir());
  CHECK(glob(pattern, 0, NULL, &g) == 0);
  for (i = 0; i < g.gl_pathc; i++) {
    buf gz = read_file(g.gl_pathv[i]), raw = gunzip(gz);
    pprof_profile *p = NULL, *q = NULL, *r = NULL;
    void *enc = NULL, *enc2 = NULL;
    size_t enclen = 0, enclen2 = 0;
    int64_t tn = 0;

    rc = pprof_decode(gz.p, gz.len, 0, &p, err);
    if (rc == PPROF_EEMPTY) { /* a valid Go profile with nothing in it */
      CHECK_STR(err, "profile has no samples");
      CHECK_I64(pprof_decode(raw.p, raw.len, 0, &p, err), PPROF_EEMPTY);
      nempty++;
      free(gz.p);
      free(raw.p);
      continue;
    }
    if (rc != PPROF_OK) {
      fprintf(stderr, "%s: %s\n", g.gl_pathv[i], err);
      CHECK(0);
      continue;
    }
    n++;
    CHECK(pprof_sample_count(p) > 0);
    CHECK(pprof_time_nanos(p) > 1700000000000000000LL);
    CHECK_I64(pprof_check(gz.p, gz.len, 0, &tn, err), PPROF_OK);
    CHECK_I64(tn, pprof_time_nanos(p));
    CHECK_I64(pprof_decode(raw.p, raw.len, 0, &q, err), PPROF_OK);
    CHECK_I64(pprof_sample_count(q), pprof_sample_count(p));
    CHECK_I64(pprof_time_nanos(q), pprof_time_nanos(p));
    CHECK_I64(pprof_encode(p, &enc, &enclen), PPROF_OK);
    CHECK(enclen > 20 && ((unsigned char *)enc)[0] == 0x1f);
    CHECK_I64(pprof_decode(enc, enclen, 0, &r, err), PPROF_OK);
    if (r != NULL) {
      CHECK_I64(pprof_sample_count(r), pprof_sample_count(p));
      CHECK_I64(pprof_time_nanos(r), pprof_time_nanos(p));
      /* Same protobuf as the input, byte for byte once re-encoded. */
      CHECK_I64(pprof_encode(r, &enc2, &enclen2), PPROF_OK);
      CHECK(enclen2 == enclen && memcmp(enc, enc2, enclen) == 0);
    }
    free(enc);
    free(enc2);
    pprof_free(p);
    pprof_free(q);
    pprof_free(r);
    free(gz.p);
    free(raw.p);
  }
  CHECK_I64(n, 29);
  CHECK_I64(nempty, 1); /* mutex_000: no contention yet */
  globfree(&g);
  pprof_free(NULL);
}

static void test_roundtrip_fields(void) {
  tp t;
  buf b;
  pprof_profile *p = NULL;
  Perftools__Profiles__Profile *u;
  void *enc = NULL;
  size_t len = 0;
  char err[PPROF_ERRMAX];

  tp_basic(&t, 0x400000, 3, 30);
  tp_label(&t, 0, "span", "a-b", 0, NULL);
  t.strbuf[t.lab[0][0].str][1] = '\0'; /* "a\0b": bytes, not a C string */
  tp_label(&t, 0, "bytes", NULL, 512, "bytes");
  t.comment[0] = tp_str(&t, "hello");
  t.p.n_comment = 1;
  b = tp_pack(&t);
  CHECK_I64(pprof_decode(b.p, b.len, 0, &p, err), PPROF_OK);
  CHECK_I64(pprof_encode(p, &enc, &len), PPROF_OK);
  u = unpack(enc, len);
  CHECK_I64(u->n_sample, 1);
  CHECK_I64(u->sample[0]->value[1], 30);
  CHECK_I64(u->sample[0]->n_label, 2);
  CHECK_I64(u->string_table[u->sample[0]->label[0]->str].len, 3);
  CHECK(memcmp(u->string_table[u->sample[0]->label[0]->str].data, "a\0b", 3) ==
        0);
  CHECK(str_is(u, u->sample[0]->label[1]->num_unit, "bytes"));
  CHECK_I64(u->sample[0]->label[1]->num, 512);
  CHECK_I64(u->n_comment, 1);
  CHECK(str_is(u, u->comment[0], "hello"));
  CHECK_I64(u->mapping[0]->memory_start, 0x400000);
  CHECK_I64(u->location[0]->address, 0x400100);
  CHECK_I64(u->time_nanos, 1000);
  CHECK_I64(u->period, 10000000);
  unpacked_free(u);
  pprof_free(p);
  free(enc);
  free(b.p);
}

/* ---- malformed input --------------------------------------------------- */

static void test_bad_gzip(void) {
  buf gz = fixture("cpu_000.pb.gz"), half = {gz.p, gz.len / 2};
  buf shorty = {gz.p, 10};
  buf trail = {malloc(gz.len + 3), gz.len + 3};
  buf flipped = {malloc(gz.len), gz.len};

  expect_bad(half, PPROF_EGZIP, "gzip: corrupt or truncated stream", 0);
  expect_bad(shorty, PPROF_EGZIP, "gzip: stream too short (10 bytes)", 0);
  memcpy(trail.p, gz.p, gz.len);
  memcpy(trail.p + gz.len, "xyz", 3);
  expect_bad(trail, PPROF_EGZIP, "gzip: garbage after the compressed data", 0);
  memcpy(flipped.p, gz.p, gz.len);
  flipped.p[gz.len / 2] ^= 0x55; /* corrupt data or CRC */
  expect_bad(flipped, PPROF_EGZIP, "gzip: corrupt or truncated stream", 0);
  free(trail.p);
  free(flipped.p);
  free(gz.p);
}

/* Two gzip members (what `cat a.gz b.gz` gives) are one stream. */
static void test_gzip_members(void) {
  tp t;
  buf raw, a, b, both;
  char err[PPROF_ERRMAX];
  pprof_profile *p = NULL;

  tp_basic(&t, 0x1000, 1, 2);
  raw = tp_pack(&t);
  a = gzip(raw.p, raw.len / 2);
  b = gzip(raw.p + raw.len / 2, raw.len - raw.len / 2);
  both.len = a.len + b.len;
  both.p = malloc(both.len);
  memcpy(both.p, a.p, a.len);
  memcpy(both.p + a.len, b.p, b.len);
  CHECK_I64(pprof_decode(both.p, both.len, 0, &p, err), PPROF_OK);
  if (p != NULL)
    CHECK_I64(pprof_sample_count(p), 1);
  pprof_free(p);
  free(raw.p);
  free(a.p);
  free(b.p);
  free(both.p);
}

static void test_zip_bomb(void) {
  size_t n = 8 << 20;
  unsigned char *zeros = calloc(1, n);
  buf bomb = gzip(zeros, n), gz = fixture("cpu_001.pb.gz"), raw = gunzip(gz);
  char err[PPROF_ERRMAX];
  pprof_profile *p = NULL;

  CHECK(bomb.len < 64 << 10);
  expect_bad(bomb, PPROF_ETOOBIG, "inflated size over the limit of 1048576 bytes",
             1 << 20);
  /* A lying ISIZE trailer (claims 100 bytes) must not get it through. */
  bomb.p[bomb.len - 4] = 100;
  bomb.p[bomb.len - 3] = bomb.p[bomb.len - 2] = bomb.p[bomb.len - 1] = 0;
  expect_bad(bomb, PPROF_ETOOBIG, "inflated size over the limit of 1048576 bytes",
             1 << 20);
  /* Exactly at the limit is fine, one byte less is not. */
  CHECK_I64(pprof_decode(gz.p, gz.len, raw.len, &p, err), PPROF_OK);
  pprof_free(p);
  expect_bad(gz, PPROF_ETOOBIG, "inflated size over the limit of 8039 bytes",
             raw.len - 1);
  CHECK_I64(raw.len, 8040);
  free(zeros);
  free(bomb.p);
  free(gz.p);
  free(raw.p);
}

static void test_bad_wire(void) {
  static unsigned char garbage[] = "this is not a profile\n";
  /* time_nanos (field 9) with an 11-byte varint */
  static unsigned char long_varint[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  /* a 10-byte varint whose last byte carries bits past 64 */
  static unsigned char over64[] = {0x48, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x7f};
  /* sample (field 2) claiming 4 GiB - 1 bytes */
  static unsigned char huge_len[] = {0x12, 0xff, 0xff, 0xff, 0xff, 0x0f};
  static unsigned char trunc_varint[] = {0x48, 0xff, 0xff};
  /* time_nanos sent as a length-delimited field */
  static unsigned char wrong_type[] = {0x4a, 0x01, 0x00};
  /* field number 0 */
  static unsigned char field0[] = {0x00, 0x01};
  /* time_nanos only: a valid message, but no string table */
  static unsigned char no_strings[] = {0x48, 0x01};
  /* a Sample whose packed location ids run out mid-varint */
  static unsigned char bad_packed[] = {0x12, 0x03, 0x0a, 0x01, 0x80};
  buf b;

  b = (buf){garbage, sizeof garbage - 1};
  expect_bad(b, PPROF_EDECODE,
             "Profile field 14 at offset 0: unexpected wire type 4", 0);
  b = (buf){long_varint, sizeof long_varint};
  expect_bad(b, PPROF_EDECODE, "varint longer than 10 bytes at offset 1", 0);
  b = (buf){over64, sizeof over64};
  expect_bad(b, PPROF_EDECODE, "varint over 64 bits at offset 1", 0);
  b = (buf){huge_len, sizeof huge_len};
  expect_bad(b, PPROF_EDECODE,
             "Profile field at offset 0: length 4294967295 runs past the end "
             "(0 bytes left)",
             0);
  b = (buf){trunc_varint, sizeof trunc_varint};
  expect_bad(b, PPROF_EDECODE, "truncated varint at offset 1", 0);
  b = (buf){wrong_type, sizeof wrong_type};
  expect_bad(b, PPROF_EDECODE,
             "Profile field 9 at offset 0: unexpected wire type 2", 0);
  b = (buf){field0, sizeof field0};
  expect_bad(b, PPROF_EDECODE, "invalid field number 0 at offset 0", 0);
  b = (buf){no_strings, sizeof no_strings};
  expect_bad(b, PPROF_EDECODE, "not a pprof profile (no string table)", 0);
  b = (buf){bad_packed, sizeof bad_packed};
  expect_bad(b, PPROF_EDECODE, "truncated varint at offset 4", 0);
  b = (buf){garbage, 0};
  expect_bad(b, PPROF_EDECODE, "empty input", 0);
}

static void test_concatenated(void) {
  tp t;
  buf one, two;

  tp_basic(&t, 0x1000, 1, 2);
  one = tp_pack(&t);
  two.len = 2 * one.len;
  two.p = malloc(two.len);
  memcpy(two.p, one.p, one.len);
  memcpy(two.p + one.len, one.p, one.len);
  expect_bad(two, PPROF_EDECODE, "concatenated profiles (time_nanos set twice)",
             0);
  free(one.p);
  free(two.p);
}

static void test_bad_references(void) {
  static const uint64_t unknown[] = {1, 7}, zero[] = {0};
  tp t;

  tp_basic(&t, 0x1000, 1, 2);
  t.f[0].name = 99;
  expect_bad_tp(&t, PPROF_EINVALID,
                "string index 99 out of range in function.name (table has 9 "
                "strings)");
  tp_basic(&t, 0x1000, 1, 2);
  t.vt[1].unit = -1;
  expect_bad_tp(&t, PPROF_EINVALID,
                "string index -1 out of range in sample_type.unit (table has 9 "
                "strings)");
  tp_basic(&t, 0x1000, 1, 2);
  tp_label(&t, 0, "k", "v", 0, NULL);
  t.lab[0][0].str = 50;
  expect_bad_tp(&t, PPROF_EINVALID,
                "string index 50 out of range in sample.label.str (table has "
                "11 strings)");
  tp_basic(&t, 0x1000, 1, 2);
  t.str[0].data = (uint8_t *)"x";
  t.str[0].len = 1;
  expect_bad_tp(&t, PPROF_EINVALID, "string_table[0] is not empty");

  tp_basic(&t, 0x1000, 1, 2);
  tp_sample(&t, 2, unknown, 1, 1);
  expect_bad_tp(&t, PPROF_EINVALID, "sample 1: unknown location id 7");
  tp_basic(&t, 0x1000, 1, 2);
  tp_sample(&t, 1, zero, 1, 1);
  expect_bad_tp(&t, PPROF_EINVALID, "sample 1: location id 0");
  tp_basic(&t, 0x1000, 1, 2);
  t.l[1].id = 1;
  expect_bad_tp(&t, PPROF_EINVALID, "duplicate location id 1");
  tp_basic(&t, 0x1000, 1, 2);
  t.l[1].id = 0;
  expect_bad_tp(&t, PPROF_EINVALID, "location with id 0");
  tp_basic(&t, 0x1000, 1, 2);
  t.l[0].mapping_id = 5;
  expect_bad_tp(&t, PPROF_EINVALID, "location id 1: unknown mapping id 5");
  tp_basic(&t, 0x1000, 1, 2);
  t.ln[1].function_id = 9;
  expect_bad_tp(&t, PPROF_EINVALID,
                "location id 2: line 0: unknown function id 9");
  tp_basic(&t, 0x1000, 1, 2);
  t.f[1].id = 1;
  expect_bad_tp(&t, PPROF_EINVALID, "duplicate function id 1");
  tp_basic(&t, 0x1000, 1, 2);
  t.m[0].id = 0;
  expect_bad_tp(&t, PPROF_EINVALID, "mapping with id 0");
  /* Ids need not be 1..n: sparse and unordered ones resolve (dense and
  ** hashed id maps). */
  tp_basic(&t, 0x1000, 1, 2);
  t.l[0].id = 1000000007;
  t.l[1].id = 3;
  t.locid[0][0] = 1000000007;
  t.locid[0][1] = 3;
  {
    buf b = tp_pack(&t);
    char err[PPROF_ERRMAX];
    CHECK_I64(pprof_check(b.p, b.len, 0, NULL, err), PPROF_OK);
    free(b.p);
  }
}

/* Ids left in the reused id map by an earlier profile must not resolve in
** a later one (issue 13): A has dense location ids up to 70, B names
** location 70 without defining it.  B alone is rejected, so B after A must
** be too, through the merge (one view for every add) as through
** `profefs merge A B`.  tests/fuzz/regress/pprof_merge/ keeps the pair. */
static void test_stale_ids(void) {
  static const uint64_t a_stack[] = {70, 2}, b_stack[] = {2, 70};
  pprof_merge *m = pprof_merge_new(0);
  char err[PPROF_ERRMAX] = "";
  buf a, b;
  tp t;

  tp_basic(&t, 0x1000, 1, 2);
  t.l[0].id = 70;
  t.p.n_sample = 0;
  tp_sample(&t, 2, a_stack, 3, 4);
  a = tp_gz(&t);
  tp_basic(&t, 0x1000, 1, 2);
  t.l[0].id = 2;
  t.l[1].id = 1;
  t.p.n_sample = 0;
  tp_sample(&t, 2, b_stack, 5, 6);
  b = tp_gz(&t);
  expect_bad(b, PPROF_EINVALID, "sample 0: unknown location id 70", 0);
  CHECK_I64(pprof_merge_add(m, a.p, a.len, err), PPROF_OK);
  err[0] = '\0';
  CHECK_I64(pprof_merge_add(m, b.p, b.len, err), PPROF_EINVALID);
  CHECK_STR(err, "sample 0: unknown location id 70");
  CHECK_I64(pprof_merge_count(m), 1);
  free(a.p);
  free(b.p);
  pprof_merge_free(m);
}

/* Inflating for a check takes its buffer from the budget and gives it
** back: EBUSY when it has no room, the same verdict as pprof_check when it
** has, nothing held afterwards either way (issue 13). */
static void test_check_budget(void) {
  budget *small = budget_new(4096, 10), *big = budget_new(64 << 20, 10);
  buf good = fixture("cpu_001.pb.gz");
  size_t n = 4 << 20;
  unsigned char *zeros = calloc(1, n);
  buf bomb = gzip(zeros, n);
  char err[PPROF_ERRMAX] = "";
  budget_stats s;
  int64_t tn = 0;

  CHECK_I64(pprof_check_in(good.p, good.len, 0, small, &tn, err), PPROF_EBUSY);
  CHECK_STR(err, "memory budget exhausted while inflating");
  CHECK_I64(pprof_check_in(good.p, good.len, 0, big, &tn, err), PPROF_OK);
  CHECK(tn > 0);
  CHECK_I64(pprof_check_in(bomb.p, bomb.len, 1 << 20, big, NULL, err),
            PPROF_ETOOBIG);
  budget_get_stats(big, &s);
  CHECK_I64((int64_t)s.used, 0);
  CHECK((int64_t)s.peak >= 1 << 20);
  budget_get_stats(small, &s);
  CHECK_I64((int64_t)s.used, 0);
  CHECK_STR(pprof_strerror(PPROF_EBUSY), "memory budget exhausted");
  budget_free(small);
  budget_free(big);
  free(good.p);
  free(zeros);
  free(bomb.p);
}

static void test_bad_values(void) {
  tp t;

  tp_basic(&t, 0x1000, 1, 2);
  t.s[0].n_value = 1;
  expect_bad_tp(&t, PPROF_EINVALID,
                "sample 0 has 1 values, expected 2 (one per sample type)");
  tp_basic(&t, 0x1000, 1, 2);
  t.p.n_sample = 0;
  expect_bad_tp(&t, PPROF_EEMPTY, "profile has no samples");
  tp_basic(&t, 0x1000, 1, 2);
  t.p.n_sample_type = 0;
  t.s[0].n_value = 0;
  expect_bad_tp(&t, PPROF_EINVALID, "profile has samples but no sample types");
}

/* ---- merge -------------------------------------------------------------- */

/* Adds each built profile to m, expecting success. */
static void add_tp(pprof_merge *m, const tp *t) {
  char err[PPROF_ERRMAX] = "";
  buf b = tp_gz(t);

  if (pprof_merge_add(m, b.p, b.len, err) != PPROF_OK) {
    fprintf(stderr, "add: %s\n", err);
    CHECK(0);
  }
  free(b.p);
}

static Perftools__Profiles__Profile *result(pprof_merge *m) {
  char err[PPROF_ERRMAX];
  void *out = NULL;
  size_t len = 0;
  Perftools__Profiles__Profile *u;

  if (pprof_merge_result(m, &out, &len, err) != PPROF_OK) {
    fprintf(stderr, "result: %s\n", err);
    exit(1);
  }
  u = unpack(out, len);
  free(out);
  return u;
}

static void test_merge_header(void) {
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  CHECK(m != NULL);
  tp_basic(&t, 0x1000, 1, 10);
  t.p.period = 10;
  t.p.time_nanos = 3000;
  t.p.duration_nanos = 5;
  t.comment[0] = tp_str(&t, "a");
  t.comment[1] = tp_str(&t, "b");
  t.p.n_comment = 2;
  t.p.drop_frames = tp_str(&t, "runtime\\..*");
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 2, 20);
  t.p.period = 30;
  t.p.time_nanos = 1000;
  t.p.duration_nanos = 7;
  t.comment[0] = tp_str(&t, "b");
  t.comment[1] = tp_str(&t, "c");
  t.p.n_comment = 2;
  t.p.default_sample_type = tp_str(&t, "cpu");
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 4, 40);
  t.p.period = 20;
  t.p.time_nanos = 0; /* unknown time: ignored, not "earliest" */
  t.p.duration_nanos = 9;
  add_tp(m, &t);
  CHECK_I64(pprof_merge_count(m), 3);
  u = result(m);
  CHECK_I64(u->period, 30);
  CHECK_I64(u->time_nanos, 1000);
  CHECK_I64(u->duration_nanos, 21);
  CHECK_I64(u->n_comment, 3);
  if (u->n_comment == 3) {
    CHECK(str_is(u, u->comment[0], "a"));
    CHECK(str_is(u, u->comment[1], "b"));
    CHECK(str_is(u, u->comment[2], "c"));
  }
  CHECK(str_is(u, u->drop_frames, "runtime\\..*"));
  CHECK(str_is(u, u->default_sample_type, "cpu"));
  CHECK_I64(u->n_sample_type, 2);
  CHECK(str_is(u, u->sample_type[1]->type, "cpu"));
  CHECK(str_is(u, u->sample_type[1]->unit, "nanoseconds"));
  CHECK(str_is(u, u->period_type->type, "cpu"));
  CHECK_I64(u->n_sample, 1);
  CHECK_I64(u->sample[0]->value[0], 7);
  CHECK_I64(u->sample[0]->value[1], 70);
  CHECK_I64(u->n_location, 2);
  CHECK_I64(u->n_function, 2);
  CHECK_I64(u->n_mapping, 1);
  unpacked_free(u);
  pprof_merge_free(m);
}

/* Zero samples are dropped on input, and so are samples that sum to zero,
** together with what only they used. */
static void test_merge_zero(void) {
  static const uint64_t other[] = {3};
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  tp_basic(&t, 0x1000, 0, 0); /* only a zero sample */
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_sample, 0);
  CHECK_I64(u->n_location, 0);
  CHECK_I64(u->n_function, 0);
  CHECK_I64(u->n_mapping, 1); /* the main binary stays */
  unpacked_free(u);

  tp_basic(&t, 0x1000, 1, 10);
  tp_fn(&t, 3, "other", 50);
  tp_loc(&t, 3, 1, 0x1300, 3, 55);
  tp_sample(&t, 1, other, 2, 20);
  add_tp(m, &t);
  tp_basic(&t, 0x1000, -1, -10); /* cancels the [1 2] sample */
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_sample, 1);
  CHECK_I64(u->sample[0]->value[1], 20);
  CHECK_I64(u->n_location, 1);
  CHECK_I64(u->n_function, 1);
  CHECK_I64(u->sample[0]->location_id[0], u->location[0]->id);
  CHECK_I64(u->location[0]->line[0]->function_id, u->function[0]->id);
  CHECK(str_is(u, u->function[0]->name, "other"));
  unpacked_free(u);
  pprof_merge_free(m);
}

/* The same binary loaded at another address (ASLR) merges: addresses are
** compared relative to the mapping and rebased onto the first one. */
static void test_merge_rebase(void) {
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  tp_basic(&t, 0x400000, 1, 10);
  add_tp(m, &t);
  tp_basic(&t, 0x7f0000000000, 2, 20);
  t.m[0].memory_limit -= 0x800; /* size rounds up to the same 4 KiB */
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 4, 40);
  t.m[0].file_offset = 0x1000; /* another offset: another mapping */
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_mapping, 2);
  CHECK_I64(u->mapping[0]->memory_start, 0x400000);
  CHECK_I64(u->n_location, 4);
  CHECK_I64(u->n_sample, 2);
  CHECK_I64(u->sample[0]->value[1], 30);
  CHECK_I64(u->sample[1]->value[1], 40);
  CHECK_I64(find_loc(u, u->sample[0]->location_id[0])->address, 0x400100);
  CHECK_I64(find_loc(u, u->sample[1]->location_id[0])->address, 0x1100);
  CHECK_I64(find_loc(u, u->sample[1]->location_id[0])->mapping_id, 2);
  /* Functions are shared between mappings: same key. */
  CHECK_I64(u->n_function, 2);
  unpacked_free(u);
  pprof_merge_free(m);
}

/* The first mapping of the first profile that has mappings comes first,
** even if no sample uses it. */
static void test_merge_first_mapping(void) {
  static const uint64_t stack[] = {1};
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  tp_init(&t); /* no mappings */
  tp_fn(&t, 1, "f", 1);
  tp_loc(&t, 1, 0, 0x10, 1, 2);
  tp_sample(&t, 1, stack, 1, 1);
  add_tp(m, &t);
  tp_init(&t);
  tp_map(&t, 1, 0x7000, 0x8000, "libc.so.6");
  tp_map(&t, 2, 0x1000, 0x2000, "/bin/app");
  tp_fn(&t, 1, "g", 1);
  tp_loc(&t, 1, 2, 0x1010, 1, 2);
  tp_sample(&t, 1, stack, 1, 1);
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_mapping, 2);
  CHECK(str_is(u, u->mapping[0]->filename, "libc.so.6"));
  CHECK_I64(u->mapping[0]->id, 1);
  CHECK(str_is(u, u->mapping[1]->filename, "/bin/app"));
  CHECK_I64(u->n_sample, 2);
  CHECK_I64(find_loc(u, u->sample[0]->location_id[0])->mapping_id, 0);
  CHECK_I64(find_loc(u, u->sample[1]->location_id[0])->mapping_id, 2);
  unpacked_free(u);
  pprof_merge_free(m);
}

/* Sample keys: labels in any order match; values of one key keep their
** order; a numeric label's unit is part of the key. */
static void test_merge_labels(void) {
  static const uint64_t stack[] = {1, 2};
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  tp_basic(&t, 0x1000, 1, 1);
  tp_label(&t, 0, "a", "1", 0, NULL);
  tp_label(&t, 0, "b", "2", 0, NULL);
  tp_label(&t, 0, "n", NULL, 5, "bytes");
  tp_sample(&t, 2, stack, 2, 2); /* sample 1: no labels */
  tp_sample(&t, 2, stack, 4, 4); /* sample 2: k=[x y] */
  tp_label(&t, 2, "k", "x", 0, NULL);
  tp_label(&t, 2, "k", "y", 0, NULL);
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 8, 8);
  tp_label(&t, 0, "n", NULL, 5, "bytes");
  tp_label(&t, 0, "b", "2", 0, NULL);
  tp_label(&t, 0, "a", "1", 0, NULL);
  tp_sample(&t, 2, stack, 16, 16); /* n=5 without unit: another key */
  tp_label(&t, 1, "n", NULL, 5, NULL);
  tp_sample(&t, 2, stack, 32, 32); /* k=[y x]: another key */
  tp_label(&t, 2, "k", "y", 0, NULL);
  tp_label(&t, 2, "k", "x", 0, NULL);
  tp_sample(&t, 2, stack, 64, 64); /* an empty label is no label */
  tp_label(&t, 3, "empty", NULL, 0, NULL);
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_sample, 5);
  if (u->n_sample == 5) {
    CHECK_I64(u->sample[0]->value[0], 9);  /* a, b, n=5 bytes */
    CHECK_I64(u->sample[0]->n_label, 3);
    CHECK_I64(u->sample[1]->value[0], 66); /* no labels */
    CHECK_I64(u->sample[1]->n_label, 0);
    CHECK_I64(u->sample[2]->value[0], 4);  /* k=[x y] */
    CHECK_I64(u->sample[3]->value[0], 16); /* n=5, no unit */
    CHECK_I64(u->sample[3]->label[0]->num, 5);
    CHECK_I64(u->sample[3]->label[0]->num_unit, 0);
    CHECK_I64(u->sample[4]->value[0], 32); /* k=[y x] */
    CHECK(str_is(u, u->sample[4]->label[0]->str, "y"));
    CHECK(str_is(u, u->sample[4]->label[1]->str, "x"));
  }
  unpacked_free(u);
  pprof_merge_free(m);
}

/* Function keys include the start line; location keys the line number. */
static void test_merge_keys(void) {
  pprof_merge *m = pprof_merge_new(0);
  Perftools__Profiles__Profile *u;
  tp t;

  tp_basic(&t, 0x1000, 1, 1);
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 1, 1);
  t.f[1].start_line = 21; /* "work" moved: another function */
  add_tp(m, &t);
  tp_basic(&t, 0x1000, 1, 1);
  t.ln[0].line = 26; /* same address, another line: another location */
  add_tp(m, &t);
  u = result(m);
  CHECK_I64(u->n_function, 3);
  CHECK_I64(u->n_location, 4);
  CHECK_I64(u->n_sample, 3);
  CHECK_I64(find_fn(u, find_loc(u, u->sample[1]->location_id[0])->line[0]
                           ->function_id)->start_line, 21);
  unpacked_free(u);
  pprof_merge_free(m);
}

static void test_merge_mismatch(void) {
  pprof_merge *m = pprof_merge_new(0);
  buf cpu = fixture("cpu_000.pb.gz"), heap = fixture("heap_000.pb.gz");
  char err[PPROF_ERRMAX];
  tp t;

  CHECK_I64(pprof_merge_add(m, cpu.p, cpu.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_add(m, heap.p, heap.len, err), PPROF_EMISMATCH);
  CHECK_STR(err, "sample types [samples/count cpu/nanoseconds] and "
                 "[alloc_objects/count alloc_space/bytes inuse_objects/count "
                 "inuse_space/bytes] differ");
  tp_basic(&t, 0x1000, 1, 1); /* same sample types, other period type */
  t.period_type.type = tp_str(&t, "wall");
  {
    buf b = tp_gz(&t);
    CHECK_I64(pprof_merge_add(m, b.p, b.len, err), PPROF_EMISMATCH);
    CHECK_STR(err, "period types cpu/nanoseconds and wall/nanoseconds differ");
    free(b.p);
  }
  tp_basic(&t, 0x1000, 1, 1);
  tp_types(&t, "samples", "count", "cpu", "ms");
  {
    buf b = tp_gz(&t);
    CHECK_I64(pprof_merge_add(m, b.p, b.len, err), PPROF_EMISMATCH);
    CHECK_STR(err, "sample types [samples/count cpu/nanoseconds] and "
                   "[samples/count cpu/ms] differ");
    free(b.p);
  }
  CHECK_I64(pprof_merge_count(m), 1);
  free(cpu.p);
  free(heap.p);
  pprof_merge_free(m);
}

/* A failed add changes nothing: the result is the same bytes as before,
** and adding more afterwards gives what a clean merge gives. */
static void test_merge_failed_add(void) {
  pprof_merge *m = pprof_merge_new(1 << 20), *clean = pprof_merge_new(0);
  buf a = fixture("cpu_002.pb.gz"), b = fixture("cpu_003.pb.gz");
  buf heap = fixture("heap_005.pb.gz"), half = {b.p, b.len / 2};
  size_t big = 4 << 20;
  unsigned char *zeros = calloc(1, big);
  buf bomb = gzip(zeros, big);
  void *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
  size_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
  char err[PPROF_ERRMAX];
  tp t;
  buf bad_ref, late_bad;

  /* Invalid only in its last sample, after valid ones were parsed. */
  tp_basic(&t, 0x1000, 5, 5);
  {
    static const uint64_t bad[] = {2, 9};
    tp_sample(&t, 2, bad, 1, 1);
  }
  bad_ref = tp_gz(&t);
  tp_basic(&t, 0x1000, 5, 5);
  t.s[0].n_value = 3;
  t.val[0][2] = 1;
  late_bad = tp_gz(&t);

  CHECK_I64(pprof_merge_result(m, &r1, &l1, err), PPROF_EEMPTY);
  CHECK_STR(err, "no profiles to merge");
  CHECK_I64(pprof_merge_add(m, a.p, a.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_result(m, &r1, &l1, err), PPROF_OK);
  CHECK_I64(pprof_merge_add(m, heap.p, heap.len, err), PPROF_EMISMATCH);
  CHECK_I64(pprof_merge_add(m, half.p, half.len, err), PPROF_EGZIP);
  CHECK_I64(pprof_merge_add(m, bomb.p, bomb.len, err), PPROF_ETOOBIG);
  CHECK_I64(pprof_merge_add(m, bad_ref.p, bad_ref.len, err), PPROF_EINVALID);
  CHECK_I64(pprof_merge_add(m, late_bad.p, late_bad.len, err), PPROF_EINVALID);
  CHECK_I64(pprof_merge_count(m), 1);
  CHECK_I64(pprof_merge_result(m, &r2, &l2, err), PPROF_OK);
  CHECK(l1 == l2 && memcmp(r1, r2, l1) == 0);

  CHECK_I64(pprof_merge_add(m, b.p, b.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_add(clean, a.p, a.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_add(clean, b.p, b.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_result(m, &r3, &l3, err), PPROF_OK);
  CHECK_I64(pprof_merge_result(clean, &r4, &l4, err), PPROF_OK);
  CHECK(l3 == l4 && memcmp(r3, r4, l3) == 0);
  CHECK_I64(pprof_merge_count(m), 2);
  free(r1);
  free(r2);
  free(r3);
  free(r4);
  free(a.p);
  free(b.p);
  free(heap.p);
  free(zeros);
  free(bomb.p);
  free(bad_ref.p);
  free(late_bad.p);
  pprof_merge_free(m);
  pprof_merge_free(clean);
  pprof_merge_free(NULL);
}

/* Sum of each value column over all samples of p. */
static void totals(const Perftools__Profiles__Profile *p, int64_t *sum,
                   size_t n) {
  memset(sum, 0, n * sizeof *sum);
  for (size_t i = 0; i < p->n_sample; i++)
    for (size_t k = 0; k < n && k < p->sample[i]->n_value; k++)
      sum[k] += p->sample[i]->value[k];
}

/* Merging all fixtures of a type keeps the value totals; merging a profile
** with itself doubles every sample and changes nothing else. */
static void test_merge_fixtures(void) {
  static const char *types[] = {"cpu", "heap", "block", "mutex", "goroutine",
                                "threadcreate"};
  char pattern[4096], err[PPROF_ERRMAX];
  size_t ti, i, k;

  for (ti = 0; ti < sizeof types / sizeof *types; ti++) {
    pprof_merge *m = pprof_merge_new(0);
    int64_t want[4] = {0, 0, 0, 0}, got[4], one[4];
    int64_t dur = 0, tmin = 0;
    Perftools__Profiles__Profile *u;
    glob_t g;

    snprintf(pattern, sizeof pattern, "%s/fixtures/%s_*.pb.gz", tests_dir(),
             types[ti]);
    CHECK(glob(pattern, 0, NULL, &g) == 0);
    for (i = 0; i < g.gl_pathc; i++) {
      buf gz = read_file(g.gl_pathv[i]);
      Perftools__Profiles__Profile *p = unpack(gz.p, gz.len);
      totals(p, one, 4);
      for (k = 0; k < 4; k++)
        want[k] += one[k];
      dur += p->duration_nanos;
      if (tmin == 0 || p->time_nanos < tmin)
        tmin = p->time_nanos;
      unpacked_free(p);
      CHECK_I64(pprof_merge_add(m, gz.p, gz.len, err), PPROF_OK);
      free(gz.p);
    }
    u = result(m);
    totals(u, got, 4);
    for (k = 0; k < 4; k++)
      CHECK_I64(got[k], want[k]);
    CHECK_I64(u->duration_nanos, dur);
    CHECK_I64(u->time_nanos, tmin);
    for (i = 0; i < u->n_sample; i++) {
      int zero = 1;
      for (k = 0; k < u->sample[i]->n_value; k++)
        zero &= u->sample[i]->value[k] == 0;
      CHECK(!zero);
    }
    /* the result is itself a valid profile that decodes */
    {
      void *out = NULL;
      size_t len = 0;
      pprof_profile *p = NULL;
      CHECK_I64(pprof_merge_result(m, &out, &len, err), PPROF_OK);
      CHECK_I64(pprof_decode(out, len, 0, &p, err), PPROF_OK);
      if (p != NULL)
        CHECK_I64(pprof_sample_count(p), u->n_sample);
      pprof_free(p);
      free(out);
    }
    unpacked_free(u);
    pprof_merge_free(m);
    globfree(&g);
  }

  /* cpu_004 twice: same shape, every value doubled */
  {
    pprof_merge *m1 = pprof_merge_new(0), *m2 = pprof_merge_new(0);
    buf gz = fixture("cpu_004.pb.gz");
    Perftools__Profiles__Profile *u1, *u2;

    CHECK_I64(pprof_merge_add(m1, gz.p, gz.len, err), PPROF_OK);
    CHECK_I64(pprof_merge_add(m2, gz.p, gz.len, err), PPROF_OK);
    CHECK_I64(pprof_merge_add(m2, gz.p, gz.len, err), PPROF_OK);
    u1 = result(m1);
    u2 = result(m2);
    CHECK_I64(u2->n_sample, u1->n_sample);
    CHECK_I64(u2->n_location, u1->n_location);
    CHECK_I64(u2->n_function, u1->n_function);
    CHECK_I64(u2->duration_nanos, 2 * u1->duration_nanos);
    for (i = 0; i < u1->n_sample && i < u2->n_sample; i++)
      for (k = 0; k < 2; k++)
        CHECK_I64(u2->sample[i]->value[k], 2 * u1->sample[i]->value[k]);
    unpacked_free(u1);
    unpacked_free(u2);
    pprof_merge_free(m1);
    pprof_merge_free(m2);
    free(gz.p);
  }
}

/* ---- merging in two steps ------------------------------------------------ */

/* The inputs of the two-step tests: every cpu fixture gzipped, three of
** them also plain, and two small profiles with labels. */
#define TS_MAX 24

static size_t two_step_inputs(buf *in) {
  char name[64];
  size_t n = 0, i;
  tp t;

  for (i = 0; i < 15; i++) {
    snprintf(name, sizeof name, "cpu_%03zu.pb.gz", i);
    in[n++] = fixture(name);
    if (i % 5 == 1) {
      in[n] = gunzip(in[n - 1]);
      n++;
    }
  }
  tp_basic(&t, 0x400000, 3, 30);
  tp_label(&t, 0, "span", "a", 0, NULL);
  tp_label(&t, 0, "bytes", NULL, 512, "bytes");
  in[n++] = tp_gz(&t);
  tp_basic(&t, 0x400000, 4, 40);
  tp_label(&t, 0, "span", "b", 0, NULL);
  in[n++] = tp_pack(&t);
  return n;
}

/* The merge of in[0..n) by pprof_merge_add, encoded. */
static buf merged_by_add(const buf *in, size_t n) {
  pprof_merge *m = pprof_merge_new(0);
  buf r = {NULL, 0};
  void *out = NULL;
  size_t i;

  for (i = 0; i < n; i++)
    CHECK_I64(pprof_merge_add(m, in[i].p, in[i].len, NULL), PPROF_OK);
  CHECK_I64(pprof_merge_result(m, &out, &r.len, NULL), PPROF_OK);
  r.p = out;
  pprof_merge_free(m);
  return r;
}

static int same_buf(buf a, const void *p, size_t len) {
  return a.len == len && a.len > 0 && memcmp(a.p, p, len) == 0;
}

typedef struct prep_job {
  pprof_prep **prep;
  const buf *in;
  size_t first, n, step;
  pprof_rc rc; /* the first failure, checked on the main thread */
} prep_job;

static void *prep_thread(void *arg) {
  prep_job *j = arg;
  size_t i;

  j->rc = PPROF_OK;
  for (i = j->first; i < j->n; i += j->step) {
    pprof_rc rc = pprof_merge_prepare(j->prep[i], j->in[i].p, j->in[i].len,
                                      NULL);
    if (rc != PPROF_OK && j->rc == PPROF_OK)
      j->rc = rc;
  }
  return NULL;
}

/* Prepare + commit gives pprof_merge_add's bytes, whichever thread
** prepared, and keeps no reference to the input. */
static void test_merge_two_steps(void) {
  buf in[TS_MAX], want, copy;
  pprof_prep *prep[TS_MAX], *p = pprof_prep_new(0);
  pprof_merge *m = pprof_merge_new(0);
  size_t n = two_step_inputs(in), i, len = 0;
  void *out = NULL;
  char err[PPROF_ERRMAX];
  pthread_t th[2];
  prep_job job[2];

  CHECK(n <= TS_MAX);
  want = merged_by_add(in, n);

  /* One prep, reused; each input is scribbled over before its commit. */
  CHECK(!pprof_prep_ready(p));
  for (i = 0; i < n; i++) {
    copy.len = in[i].len;
    copy.p = malloc(copy.len);
    memcpy(copy.p, in[i].p, copy.len);
    CHECK_I64(pprof_merge_prepare(p, copy.p, copy.len, err), PPROF_OK);
    CHECK(pprof_prep_ready(p));
    memset(copy.p, 0xa5, copy.len);
    CHECK_I64(pprof_merge_commit_prep(m, p, err), PPROF_OK);
    CHECK(!pprof_prep_ready(p));
    free(copy.p);
  }
  CHECK_I64(pprof_merge_count(m), n);
  CHECK_I64(pprof_merge_result(m, &out, &len, err), PPROF_OK);
  CHECK(same_buf(want, out, len));
  free(out);
  pprof_merge_free(m);

  /* Two threads prepare (alternate inputs) at once; commits in order. */
  for (i = 0; i < n; i++)
    prep[i] = pprof_prep_new(0);
  for (i = 0; i < 2; i++) {
    job[i] = (prep_job){prep, in, i, n, 2, PPROF_OK};
    CHECK(pthread_create(&th[i], NULL, prep_thread, &job[i]) == 0);
  }
  for (i = 0; i < 2; i++) {
    pthread_join(th[i], NULL);
    CHECK_I64(job[i].rc, PPROF_OK);
  }
  m = pprof_merge_new(0);
  for (i = 0; i < n; i++) {
    CHECK(pprof_prep_ready(prep[i]));
    CHECK_I64(pprof_merge_commit_prep(m, prep[i], err), PPROF_OK);
  }
  out = NULL;
  CHECK_I64(pprof_merge_result(m, &out, &len, err), PPROF_OK);
  CHECK(same_buf(want, out, len));
  free(out);
  pprof_merge_free(m);

  for (i = 0; i < n; i++) {
    pprof_prep_free(prep[i]);
    free(in[i].p);
  }
  pprof_prep_free(p);
  pprof_prep_free(NULL);
  free(want.p);
}

/* Failures: prepare reports what pprof_merge_add reports and leaves the
** prep empty; a mismatch shows at commit and leaves the accumulator as it
** was. */
static void test_merge_two_steps_fail(void) {
  pprof_prep *p = pprof_prep_new(1 << 20);
  pprof_merge *m = pprof_merge_new(1 << 20), *ref = pprof_merge_new(1 << 20);
  buf a = fixture("cpu_002.pb.gz"), heap = fixture("heap_005.pb.gz");
  buf half = {a.p, a.len / 2}, bad_ref;
  size_t big = 4 << 20, i, l1 = 0, l2 = 0;
  unsigned char *zeros = calloc(1, big);
  buf bomb = gzip(zeros, big);
  void *r1 = NULL, *r2 = NULL;
  char err[PPROF_ERRMAX], want[PPROF_ERRMAX];
  tp t;

  tp_basic(&t, 0x1000, 5, 5);
  {
    static const uint64_t bad[] = {2, 9};
    tp_sample(&t, 2, bad, 1, 1);
  }
  bad_ref = tp_gz(&t);
  {
    const buf bad[] = {half, bomb, bad_ref};
    const pprof_rc rc[] = {PPROF_EGZIP, PPROF_ETOOBIG, PPROF_EINVALID};
    for (i = 0; i < 3; i++) {
      want[0] = err[0] = '\0';
      CHECK_I64(pprof_merge_add(ref, bad[i].p, bad[i].len, want), rc[i]);
      CHECK_I64(pprof_merge_prepare(p, bad[i].p, bad[i].len, err), rc[i]);
      CHECK(want[0] != '\0');
      CHECK_STR(err, want);
      CHECK(!pprof_prep_ready(p));
    }
  }

  CHECK_I64(pprof_merge_add(m, a.p, a.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_result(m, &r1, &l1, err), PPROF_OK);
  CHECK_I64(pprof_merge_add(ref, a.p, a.len, err), PPROF_OK);
  want[0] = '\0';
  CHECK_I64(pprof_merge_add(ref, heap.p, heap.len, want), PPROF_EMISMATCH);
  CHECK_I64(pprof_merge_prepare(p, heap.p, heap.len, err), PPROF_OK);
  CHECK_I64(pprof_merge_commit_prep(m, p, err), PPROF_EMISMATCH);
  CHECK_STR(err, want);
  CHECK(!pprof_prep_ready(p));
  CHECK_I64(pprof_merge_count(m), 1);
  CHECK_I64(pprof_merge_result(m, &r2, &l2, err), PPROF_OK);
  CHECK(l1 == l2 && memcmp(r1, r2, l1) == 0);

  free(r1);
  free(r2);
  free(a.p);
  free(heap.p);
  free(zeros);
  free(bomb.p);
  free(bad_ref.p);
  pprof_prep_free(p);
  pprof_merge_free(m);
  pprof_merge_free(ref);
}

/* pprof_stacks: frames root first by name, a location without lines as
** its address, the default sample type; pprof_diff: the base negated and
** labelled pprof::base, so a profile against itself sums to zero. */
static void test_stacks_and_diff(void) {
  static const uint64_t nolines[] = {3, 2};
  char err[PPROF_ERRMAX];
  pprof_stacks *st = NULL, *ds = NULL;
  const uint32_t *fr;
  void *d = NULL;
  size_t n, dlen = 0, i;
  int64_t sum = 0, v;
  int bases = 0;
  tp t;
  buf b;

  tp_basic(&t, 0x400000, 3, 30);
  tp_loc(&t, 3, 1, 0x400abc, 0, 0);
  tp_sample(&t, 2, nolines, 1, 10);
  b = tp_gz(&t);
  CHECK(pprof_stacks_decode(b.p, b.len, 0, &st, err) == PPROF_OK);
  CHECK(pprof_stacks_nsamples(st) == 2);
  CHECK(pprof_stacks_ntypes(st) == 2);
  CHECK(pprof_stacks_default_type(st) == 1); /* no default: the last */
  fr = pprof_stacks_frames(st, 0, &n);
  CHECK(n == 2);
  CHECK(strcmp(pprof_stacks_name(st, fr[0]), "main") == 0);
  CHECK(strcmp(pprof_stacks_name(st, fr[1]), "work") == 0);
  CHECK(!(fr[1] & PPROF_FRAME_INLINED));
  fr = pprof_stacks_frames(st, 1, &n);
  CHECK(n == 2 && strcmp(pprof_stacks_name(st, fr[1]), "0x400abc") == 0);
  CHECK(pprof_stacks_value(st, 0, 1) == 30);
  CHECK(!pprof_stacks_is_base(st, 0));

  CHECK(pprof_diff(b.p, b.len, b.p, b.len, 0, &d, &dlen, err) == PPROF_OK);
  CHECK(pprof_stacks_decode(d, dlen, 0, &ds, err) == PPROF_OK);
  CHECK(pprof_stacks_nsamples(ds) == 4);
  for (i = 0; i < pprof_stacks_nsamples(ds); i++) {
    v = pprof_stacks_value(ds, i, 1);
    sum += v;
    if (pprof_stacks_is_base(ds, i)) {
      bases++;
      CHECK(v < 0);
    } else {
      CHECK(v > 0);
    }
  }
  CHECK(bases == 2 && sum == 0);
  pprof_stacks_free(ds);
  pprof_stacks_free(st);
  free(d);
  free(b.p);
}

int main(void) {
  test_strerror();
  test_fixtures();
  test_roundtrip_fields();
  test_bad_gzip();
  test_gzip_members();
  test_zip_bomb();
  test_bad_wire();
  test_concatenated();
  test_bad_references();
  test_stale_ids();
  test_check_budget();
  test_bad_values();
  test_merge_header();
  test_merge_zero();
  test_merge_rebase();
  test_merge_first_mapping();
  test_merge_labels();
  test_merge_keys();
  test_merge_mismatch();
  test_merge_failed_add();
  test_merge_fixtures();
  test_merge_two_steps();
  test_merge_two_steps_fail();
  test_stacks_and_diff();
  return check_done("test_proto");
}
