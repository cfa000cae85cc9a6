/*
** push.c — the request of Pyroscope's Connect push
** (/push.v1.PusherService/Push) in both of Connect's unary encodings:
** application/proto (protoc-c, push.proto) and application/json (jansson;
** proto3's JSON mapping: "rawProfile" or "raw_profile" as base64, standard
** or URL-safe, padded or not).  Either way the caller sees the same
** ingest_push: series of labels and raw samples, pointing into memory the
** ingest_push owns.
**
** Memory: the decoded copy is about the body's size (proto) or twice it
** (JSON: the tree and the decoded base64), plus a cost per message or
** JSON value that the body's bytes do not bound (a 2-byte empty series
** is a few hundred bytes of structs: 4 MiB of them were 750 MB), counted
** before decoding and taken from the budget for the ingest_push's
** lifetime.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "internal.h"
#include "push.pb-c.h"

typedef struct pseries {
  size_t nlabels, nsamples;
  const char **names, **values;      /* nlabels each */
  const uint8_t **data;              /* nsamples each */
  size_t *len;
} pseries;

struct ingest_push {
  budget *b;
  size_t held;
  Push__V1__PushRequest *msg;  /* proto */
  json_t *root;                /* json */
  uint8_t **blobs;             /* json: decoded samples */
  size_t nblobs;
  pseries *series;
  size_t nseries;
};


void ingest_push_free(ingest_push *p) {
  if (p == NULL) return;
  if (p->msg != NULL) push__v1__push_request__free_unpacked(p->msg, NULL);
  json_decref(p->root);
  for (size_t i = 0; i < p->nblobs; i++) free(p->blobs[i]);
  free(p->blobs);
  for (size_t i = 0; i < p->nseries; i++) {
    free(p->series[i].names);
    free(p->series[i].values);
    free(p->series[i].data);
    free(p->series[i].len);
  }
  free(p->series);
  budget_release(p->b, p->held);
  free(p);
}

/* Allocates the arrays of s for nl labels and ns samples. */
static int series_alloc(pseries *s, size_t nl, size_t ns) {
  s->names = calloc(nl ? nl : 1, sizeof *s->names);
  s->values = calloc(nl ? nl : 1, sizeof *s->values);
  s->data = calloc(ns ? ns : 1, sizeof *s->data);
  s->len = calloc(ns ? ns : 1, sizeof *s->len);
  s->nlabels = nl;
  s->nsamples = ns;
  return s->names && s->values && s->data && s->len ? 0 : -1;
}

static int from_proto(ingest_push *p, const void *body, size_t len,
                      char *err) {
  Push__V1__PushRequest *m;
  p->msg = m = push__v1__push_request__unpack(NULL, len, body);
  if (m == NULL)
    return ingest_fail(err, "not a PushRequest message (protobuf)");
  if ((p->series = calloc(m->n_series ? m->n_series : 1,
                          sizeof *p->series)) == NULL)
    return ingest_fail(err, "out of memory");
  for (size_t i = 0; i < m->n_series; i++) {
    Push__V1__RawProfileSeries *s = m->series[i];
    pseries *o = &p->series[p->nseries++];
    if (series_alloc(o, s->n_labels, s->n_samples) != 0)
      return ingest_fail(err, "out of memory");
    for (size_t j = 0; j < s->n_labels; j++) {
      o->names[j] = s->labels[j]->name;
      o->values[j] = s->labels[j]->value;
    }
    for (size_t j = 0; j < s->n_samples; j++) {
      o->data[j] = s->samples[j]->raw_profile.data;
      o->len[j] = s->samples[j]->raw_profile.len;
    }
  }
  return 0;
}

/* Decodes base64 (standard or URL-safe alphabet, padding optional) into
** a malloc'd *out / *n.  0, or -1 on a bad character or length. */
static int base64_decode(const char *s, size_t len, uint8_t **out, size_t *n) {
  uint8_t *o;
  uint32_t acc = 0;
  size_t k = 0, bits = 0, i;
  while (len > 0 && s[len - 1] == '=') len--;
  if (len % 4 == 1) return -1;
  if ((o = malloc(len * 3 / 4 + 1)) == NULL) return -1;
  for (i = 0; i < len; i++) {
    int c = (unsigned char)s[i], v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else {
      free(o);
      return -1;
    }
    acc = (acc << 6) | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      o[k++] = (uint8_t)(acc >> bits);
    }
  }
  *out = o;
  *n = k;
  return 0;
}

static int from_json(ingest_push *p, const void *body, size_t len,
                     char *err) {
  json_error_t je;
  json_t *series, *s, *labels, *samples, *l, *x;
  size_t i, j, total = 0;

  p->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (p->root == NULL)
    return ingest_fail(err, "not JSON: %s (line %d)", je.text, je.line);
  if (!json_is_object(p->root))
    return ingest_fail(err, "a PushRequest is a JSON object");
  series = json_object_get(p->root, "series");
  if (series != NULL && !json_is_array(series))
    return ingest_fail(err, "\"series\" is not an array");
  json_array_foreach(series, i, s) {
    samples = json_object_get(s, "samples");
    if (samples != NULL && !json_is_array(samples))
      return ingest_fail(err, "series %zu: \"samples\" is not an array", i);
    total += json_array_size(samples);
  }
  if ((p->series = calloc(json_array_size(series) + 1, sizeof *p->series)) == NULL ||
      (p->blobs = calloc(total + 1, sizeof *p->blobs)) == NULL)
    return ingest_fail(err, "out of memory");
  json_array_foreach(series, i, s) {
    pseries *o = &p->series[p->nseries++];
    if (!json_is_object(s))
      return ingest_fail(err, "series %zu is not an object", i);
    labels = json_object_get(s, "labels");
    samples = json_object_get(s, "samples");
    if (labels != NULL && !json_is_array(labels))
      return ingest_fail(err, "series %zu: \"labels\" is not an array", i);
    if (series_alloc(o, json_array_size(labels), json_array_size(samples)) != 0)
      return ingest_fail(err, "out of memory");
    json_array_foreach(labels, j, l) {
      json_t *n = json_object_get(l, "name"), *v = json_object_get(l, "value");
      if (!json_is_object(l) || (n != NULL && !json_is_string(n)) ||
          (v != NULL && !json_is_string(v)))
        return ingest_fail(err, "series %zu: label %zu is not {\"name\",\"value\"} "
                    "strings", i, j);
      o->names[j] = n ? json_string_value(n) : "";
      o->values[j] = v ? json_string_value(v) : "";
    }
    json_array_foreach(samples, j, x) {
      json_t *raw = json_object_get(x, "rawProfile");
      if (raw == NULL) raw = json_object_get(x, "raw_profile");
      if (!json_is_object(x) || (raw != NULL && !json_is_string(raw)))
        return ingest_fail(err, "series %zu: sample %zu has no base64 \"rawProfile\"",
                    i, j);
      uint8_t *d = NULL;
      size_t n = 0;
      if (raw != NULL &&
          base64_decode(json_string_value(raw), json_string_length(raw), &d,
                        &n) != 0)
        return ingest_fail(err, "series %zu: sample %zu: \"rawProfile\" is not "
                    "base64", i, j);
      p->blobs[p->nblobs++] = d;
      o->data[j] = d;
      o->len[j] = n;
    }
  }
  return 0;
}

/* What decoding costs beyond the body's bytes, per field of a message at
** each depth (PushRequest, RawProfileSeries, LabelPair / RawSample or an
** unknown field), measured with glibc malloc: the structs protobuf-c
** makes, their pointer arrays, the pseries and its four arrays. */
static const size_t field_cost[3] = {384, 192, 64};

/* A varint at *p (< end) into *v, moving *p; 0, or -1 when truncated. */
static int varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned sh = 0; *p < end && sh < 64; sh += 7) {
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7f) << sh;
    if (!(c & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Adds to *cost what the message of n bytes at p costs decoded at depth
** d (0: a PushRequest): the wire format walked, nothing allocated.  0, or
** -1 when it is not protobuf protobuf-c would take. */
static int wire_cost(const uint8_t *p, size_t n, unsigned d, size_t *cost) {
  const uint8_t *end = p + n;
  uint64_t tag, v;

  while (p < end) {
    if (varint(&p, end, &tag) != 0) return -1;
    *cost += field_cost[d];
    switch (tag & 7) {
    case 0:
      if (varint(&p, end, &v) != 0) return -1;
      break;
    case 1:
    case 5:
      if ((size_t)(end - p) < ((tag & 7) == 1 ? 8u : 4u)) return -1;
      p += (tag & 7) == 1 ? 8 : 4;
      break;
    case 2:
      if (varint(&p, end, &v) != 0 || v > (uint64_t)(end - p)) return -1;
      /* series (1) of a PushRequest; labels (1), samples (2) of a series */
      if ((d == 0 && tag >> 3 == 1) ||
          (d == 1 && (tag >> 3 == 1 || tag >> 3 == 2)))
        if (wire_cost(p, (size_t)v, d + 1, cost) != 0) return -1;
      p += v;
      break;
    default: /* groups: protobuf-c refuses them too */
      return -1;
    }
  }
  return 0;
}

/* The same for a JSON body: each '{', '[', ',' or ':' starts at most one
** value more (more are counted when they stand in strings, never fewer),
** each a jansson node and its share of a pseries. */
static size_t json_cost(const char *s, size_t n) {
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    k += s[i] == '{' || s[i] == '[' || s[i] == ',' || s[i] == ':';
  return (k + 1) * field_cost[0];
}

int ingest_push_decode(const void *body, size_t len, int json, budget *b,
                       size_t held, ingest_push **out, int *busy,
                       char err[INGEST_ERRMAX]) {
  ingest_push *p;
  size_t want = json ? 2 * len : len, cost = 0;

  assert((body != NULL || len == 0) && out != NULL);
  if (json)
    cost = json_cost(body, len);
  else if (wire_cost(body, len, 0, &cost) != 0)
    return ingest_fail(err, "not a PushRequest message (protobuf)");
  want += cost;
  /* held + want past the limit would wait for bytes that this very
  ** request holds: refused for good, not "retry later" forever */
  if (want > SIZE_MAX - held || !budget_fits(b, held + want)) {
    if (busy != NULL) *busy = INGEST_PUSH_TOOBIG;
    return ingest_fail(err, "decoding it takes about %zu bytes besides its "
                       "body's %zu, more than the memory budget "
                       "(--max-memory)", want, held);
  }
  if ((p = calloc(1, sizeof *p)) == NULL) return ingest_fail(err, "out of memory");
  p->b = b;
  if (budget_reserve(b, want) != 0) {
    free(p);
    if (busy != NULL) *busy = INGEST_PUSH_BUSY;
    return ingest_fail(err, "memory budget exhausted");
  }
  p->held = want;
  if ((json ? from_json(p, body, len, err)
            : from_proto(p, body ? body : "", len, err)) != 0) {
    ingest_push_free(p);
    return -1;
  }
  *out = p;
  return 0;
}

size_t ingest_push_series(const ingest_push *p) {
  assert(p != NULL);
  return p->nseries;
}

size_t ingest_push_labels(const ingest_push *p, size_t i, const char ***names,
                          const char ***values) {
  assert(p != NULL && i < p->nseries && names != NULL && values != NULL);
  *names = p->series[i].names;
  *values = p->series[i].values;
  return p->series[i].nlabels;
}

size_t ingest_push_samples(const ingest_push *p, size_t i) {
  assert(p != NULL && i < p->nseries);
  return p->series[i].nsamples;
}

const void *ingest_push_sample(const ingest_push *p, size_t i, size_t j,
                               size_t *len) {
  assert(p != NULL && i < p->nseries && j < p->series[i].nsamples &&
         len != NULL);
  *len = p->series[i].len[j];
  return p->series[i].data[j];
}
