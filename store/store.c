/*
** store.c — the public entry points of store.h.
**
** Each entry point asserts its documented preconditions, validates what
** came from a user (service names, types, label strings, ids, time ranges)
** so that every backend sees only well-formed requests, refuses writes on a
** read-only store, and then calls the backend through its op table
** (backend.h).  Nothing here knows SQLite or HTTP.
**
** Ingest is checked here once for every backend: the bytes must be a
** pprof profile whose sample types fit the declared type (Go's kinds;
** `other` takes any pprof, `trace` is never parsed), and created_at is
** resolved (the profile's time_nanos, else the caller's hint) before the
** backend stores it.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "pprof.h"

struct store {
  const store_backend_ops *ops;
  void *impl;
  int read_only;
  int remote;
  size_t max_inflate;  /* of an ingest's check; 0 = pprof's default */
  budget *budget;      /* what that check inflates is taken from it */
};

const char *store_strerror(store_rc rc) {
  switch (rc) {
  case STORE_OK: return "ok";
  case STORE_NOTFOUND: return "not found";
  case STORE_INVALID: return "invalid argument";
  case STORE_BADPROFILE: return "malformed profile";
  case STORE_TOOBIG: return "too big";
  case STORE_MISMATCH: return "profiles do not match";
  case STORE_UNSUPPORTED: return "not supported";
  case STORE_READONLY: return "read-only store";
  case STORE_NOSPACE: return "no space left";
  case STORE_IO: return "i/o error";
  case STORE_NOMEM: return "out of memory";
  case STORE_BUSY: return "busy (memory budget exhausted)";
  case STORE_UNAVAILABLE: return "storage unavailable";
  }
  return "unknown error";
}

store_rc store_seterr(char *err, store_rc rc, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, STORE_ERRMAX, fmt, ap);
    va_end(ap);
  }
  return rc;
}

/* ---- argument checks ------------------------------------------------------- */

/* Shown user strings are cut short: a 1 MB service name is not an error
** message. */
#define SHOW 64

static store_rc check_service(const char *service, char *err) {
  const char *why;
  if (service == NULL || service[0] == '\0')
    return store_seterr(err, STORE_INVALID, "missing service");
  if ((why = meta_service_why(service)) != NULL)
    return store_seterr(err, STORE_INVALID, "invalid service name \"%.*s%s\": %s",
                        SHOW, service, strlen(service) > SHOW ? "..." : "", why);
  return STORE_OK;
}

static store_rc check_type(meta_type type, char *err) {
  if ((unsigned)type >= META_NTYPES)
    return store_seterr(err, STORE_INVALID, "unknown type %d", (int)type);
  return STORE_OK;
}

static store_rc check_labels(const char *labels, char *err) {
  if (labels != NULL && !meta_labels_canonical(labels))
    return store_seterr(err, STORE_INVALID, "invalid labels \"%.*s\"", SHOW,
                        labels);
  return STORE_OK;
}

int store_id_valid(const store *st, const char *id) {
  assert(st != NULL);
  if (id == NULL) return 0;
  return meta_id_valid(id) || (st->ops->id_valid != NULL && st->ops->id_valid(id));
}

static store_rc check_id(const store *st, const char *id, char *err) {
  if (id == NULL || id[0] == '\0')
    return store_seterr(err, STORE_INVALID, "missing id");
  if (!store_id_valid(st, id))
    return store_seterr(err, STORE_INVALID, "invalid id \"%.*s\"", SHOW, id);
  return STORE_OK;
}

static store_rc check_query(const store_query *q, char *err) {
  store_rc rc;
  assert(q != NULL);
  if ((rc = check_service(q->service, err)) != STORE_OK ||
      (rc = check_type(q->type, err)) != STORE_OK ||
      (rc = check_labels(q->labels, err)) != STORE_OK)
    return rc;
  if (q->from > q->to)
    return store_seterr(err, STORE_INVALID,
                        "invalid time range (from is after to)");
  if (q->limit < 0)
    return store_seterr(err, STORE_INVALID, "invalid limit %ld", q->limit);
  return STORE_OK;
}

static store_rc check_writable(const store *st, char *err) {
  if (st->read_only)
    return store_seterr(err, STORE_READONLY, "store is read-only");
  return STORE_OK;
}

static store_rc unsupported(const store *st, const char *what, char *err) {
  return store_seterr(err, STORE_UNSUPPORTED, "%s is not supported by the %s store",
                      what, st->ops->name);
}

/* ---- opening ------------------------------------------------------------------ */

static store_rc wrap(const store_backend_ops *ops, void *impl,
                     const store_options *opts, int remote, store **out,
                     char *err) {
  store *st = calloc(1, sizeof *st);
  if (st == NULL) {
    ops->close(impl);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  st->ops = ops;
  st->impl = impl;
  st->read_only = opts != NULL && opts->read_only;
  st->remote = remote;
  st->max_inflate = opts != NULL ? opts->max_inflate : 0;
  st->budget = opts != NULL ? opts->budget : NULL;
  *out = st;
  return STORE_OK;
}

store_rc store_open(const char *dir, const store_options *opts, store **out,
                    char err[STORE_ERRMAX]) {
  assert(dir != NULL && out != NULL);
  const store_backend_ops *ops;
  void *impl;
  int s3 = strncmp(dir, "s3://", 5) == 0;
  store_rc rc = s3 ? store_s3_open(dir, opts, &ops, &impl, err)
                   : store_local_open(dir, opts, &ops, &impl, err);
  if (rc != STORE_OK) return rc;
  /* S3 is remote for the front ends: lists cost requests */
  return wrap(ops, impl, opts, s3, out, err);
}

store_rc store_open_remote(const char *base_url, const store_options *opts,
                           store **out, char err[STORE_ERRMAX]) {
  assert(base_url != NULL && out != NULL);
  const store_backend_ops *ops;
  void *impl;
  store_rc rc = store_remote_open(base_url, opts, &ops, &impl, err);
  if (rc != STORE_OK) return rc;
  return wrap(ops, impl, opts, 1, out, err);
}

void store_close(store *st) {
  if (st == NULL) return;
  st->ops->close(st->impl);
  free(st);
}

int store_is_remote(const store *st) {
  assert(st != NULL);
  return st->remote;
}

/* ---- metadata ------------------------------------------------------------------ */

void store_meta_clear(store_meta *m) {
  if (m == NULL) return;
  free(m->service);
  free(m->labels);
  free(m->key);
  m->service = NULL;
  m->labels = NULL;
  m->key = NULL;
}

const char *store_meta_id(const store_meta *m) {
  assert(m != NULL);
  return m->key != NULL ? m->key : m->id;
}

void store_meta_list_free(store_meta_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->n; i++) store_meta_clear(&l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

void store_names_free(char **names, size_t n) {
  if (names == NULL) return;
  for (size_t i = 0; i < n; i++) free(names[i]);
  free(names);
}

/* ---- operations ---------------------------------------------------------------- */

/* The sample types Go writes for each kind of profile; NULL: any. */
static const char *const *expected_types(meta_type type) {
  static const char *const cpu[] = { "samples/count,cpu/nanoseconds", NULL };
  static const char *const heap[] = {
    "alloc_objects/count,alloc_space/bytes,inuse_objects/count,inuse_space/bytes",
    "inuse_objects/count,inuse_space/bytes", NULL };
  static const char *const contention[] = {
    "contentions/count,delay/nanoseconds", NULL };
  static const char *const goroutine[] = { "goroutine/count", NULL };
  static const char *const threadcreate[] = { "threadcreate/count", NULL };

  switch (type) {
  case META_CPU: return cpu;
  case META_HEAP: return heap;
  case META_BLOCK:
  case META_MUTEX: return contention;
  case META_GOROUTINE: return goroutine;
  case META_THREADCREATE: return threadcreate;
  default: return NULL;
  }
}

/* 1 when types is one of the lists of want. */
static int matches(const char *const *want, const char *types) {
  for (size_t i = 0; want[i] != NULL; i++)
    if (strcmp(want[i], types) == 0) return 1;
  return 0;
}

/* 1 when types are those of one of Go's kinds of profile. */
static int go_kind(const char *types) {
  for (int t = 0; t < META_NTYPES; t++)
    if (expected_types((meta_type)t) != NULL &&
        matches(expected_types((meta_type)t), types))
      return 1;
  return 0;
}

/* Decodes and validates a pprof for ingest: its sample types into types,
** its time_nanos in seconds into *created_at (when > 0, else unchanged). */
static store_rc inspect_profile(const store *st, const void *data, size_t len,
                                char types[PPROF_TYPES_MAX],
                                int64_t *created_at, char *err) {
  char perr[PPROF_ERRMAX] = "";
  int64_t nanos = 0;
  pprof_rc prc = pprof_check_types(data, len, st->max_inflate, st->budget,
                                   &nanos, types, perr);

  switch (prc) {
  case PPROF_OK: break;
  case PPROF_ENOMEM: return store_seterr(err, STORE_NOMEM, "out of memory");
  case PPROF_EBUSY:
    return store_seterr(err, STORE_BUSY,
                        "busy: memory budget exhausted, retry later");
  case PPROF_ETOOBIG:
    return store_seterr(err, STORE_TOOBIG, "profile too big (%s)",
                        perr[0] ? perr : pprof_strerror(prc));
  default:
    return store_seterr(err, STORE_BADPROFILE, "malformed profile (%s)",
                        perr[0] ? perr : pprof_strerror(prc));
  }
  if (nanos > 0) *created_at = nanos / 1000000000;
  return STORE_OK;
}

/* Sample types of one of Go's kinds must be the declared kind's; others
** (hand-made or another language's profiles) are taken as they are. */
static store_rc check_kind(meta_type type, const char *types, char *err) {
  const char *const *want = expected_types(type);
  if (want != NULL && !matches(want, types) && go_kind(types))
    return store_seterr(err, STORE_INVALID,
                        "sample types do not match type %s: expected %s, "
                        "found %s (type other takes any profile)",
                        meta_type_name(type), want[0], types);
  return STORE_OK;
}

/* store_ingest, store_ingest_picked and store_ingest_built: the type is
** given (pick NULL) or picked from the sample types once the profile is
** decoded; a profile built by profefs comes with its types (built, not
** NULL) and is not decoded. */
static store_rc ingest(store *st, const char *service, meta_type type,
                       store_pick_fn pick, void *arg, const char *labels,
                       const char *built, int64_t created_at_hint,
                       const void *data, size_t len, store_meta *out,
                       char *err) {
  char decoded[PPROF_TYPES_MAX] = "", *picked = NULL;
  const char *types = built != NULL ? built : decoded;
  store_rc rc;
  if ((rc = check_writable(st, err)) != STORE_OK ||
      (rc = check_service(service, err)) != STORE_OK ||
      (pick == NULL && (rc = check_type(type, err)) != STORE_OK) ||
      (rc = check_labels(labels, err)) != STORE_OK)
    return rc;
  if (len == 0)
    return store_seterr(err, STORE_BADPROFILE, "malformed profile (empty)");
  if (st->ops->ingest == NULL) return unsupported(st, "ingest", err);
  if (type != META_TRACE || pick != NULL) {
    if (built == NULL &&
        (rc = inspect_profile(st, data, len, decoded, &created_at_hint,
                              err)) != STORE_OK)
      return rc;
    if (pick != NULL) {
      if (pick(types, arg, &type, &picked) != 0)
        return store_seterr(err, STORE_NOMEM, "out of memory");
      assert(type != META_TRACE && (unsigned)type < META_NTYPES);
      if (picked != NULL) labels = picked;
      if ((rc = check_labels(labels, err)) != STORE_OK) goto out;
    }
    if ((rc = check_kind(type, types, err)) != STORE_OK) goto out;
  }
  rc = st->ops->ingest(st->impl, service, type, labels ? labels : "",
                       created_at_hint, data, len, out, err);
out:
  free(picked);
  return rc;
}

store_rc store_ingest(store *st, const char *service, meta_type type,
                      const char *labels, int64_t created_at_hint,
                      const void *data, size_t len, store_meta *out,
                      char err[STORE_ERRMAX]) {
  assert(st != NULL && (data != NULL || len == 0));
  return ingest(st, service, type, NULL, NULL, labels, NULL, created_at_hint,
                data, len, out, err);
}

store_rc store_ingest_built(store *st, const char *service, meta_type type,
                            const char *labels, const char *types,
                            int64_t time_nanos, const void *data, size_t len,
                            store_meta *out, char err[STORE_ERRMAX]) {
  assert(st != NULL && types != NULL && type != META_TRACE &&
         (data != NULL || len == 0));
  return ingest(st, service, type, NULL, NULL, labels, types,
                time_nanos > 0 ? time_nanos / 1000000000 : 0, data, len, out,
                err);
}

store_rc store_ingest_picked(store *st, const char *service,
                             store_pick_fn pick, void *arg,
                             const char *labels, int64_t created_at_hint,
                             const void *data, size_t len, store_meta *out,
                             char err[STORE_ERRMAX]) {
  assert(st != NULL && pick != NULL && (data != NULL || len == 0));
  return ingest(st, service, META_OTHER, pick, arg, labels, NULL,
                created_at_hint, data, len, out, err);
}

int store_may_begin(meta_type type, const void *data, size_t len) {
  return type == META_TRACE || pprof_may_begin(data, len);
}

store_rc store_find(store *st, const store_query *q, store_meta_list *out,
                    char err[STORE_ERRMAX]) {
  assert(st != NULL && out != NULL);
  store_rc rc = check_query(q, err);
  if (rc != STORE_OK) return rc;
  if (st->ops->find == NULL) return unsupported(st, "find", err);
  return st->ops->find(st->impl, q, out, err);
}

store_rc store_get(store *st, const char *id, store_meta *meta, void **data,
                   size_t *len, char err[STORE_ERRMAX]) {
  assert(st != NULL && data != NULL && len != NULL);
  store_rc rc = check_id(st, id, err);
  if (rc != STORE_OK) return rc;
  if (st->ops->get == NULL) return unsupported(st, "get", err);
  return st->ops->get(st->impl, id, meta, data, len, err);
}

store_rc store_stat(store *st, const char *id, store_meta *meta,
                    char err[STORE_ERRMAX]) {
  assert(st != NULL && meta != NULL);
  store_rc rc = check_id(st, id, err);
  if (rc != STORE_OK) return rc;
  if (st->ops->stat == NULL) return unsupported(st, "stat", err);
  return st->ops->stat(st->impl, id, meta, err);
}

store_rc store_stat_named(store *st, const char *service, meta_type type,
                          const char *digest, store_meta *meta,
                          char err[STORE_ERRMAX]) {
  assert(st != NULL && meta != NULL);
  store_rc rc;
  if ((rc = check_service(service, err)) != STORE_OK ||
      (rc = check_type(type, err)) != STORE_OK)
    return rc;
  if (!meta_id_valid(digest))
    return store_seterr(err, STORE_INVALID, "invalid id \"%.*s\"", SHOW, digest);
  if (st->ops->stat_named != NULL)
    return st->ops->stat_named(st->impl, service, type, digest, meta, err);
  return store_stat(st, digest, meta, err);
}

store_rc store_merge(store *st, const store_query *q, void **out, size_t *len,
                     size_t *count, char err[STORE_ERRMAX]) {
  assert(st != NULL && out != NULL && len != NULL);
  store_rc rc = check_query(q, err);
  if (rc != STORE_OK) return rc;
  if (q->type == META_TRACE)
    return store_seterr(err, STORE_UNSUPPORTED, "traces cannot be merged");
  if (st->ops->merge == NULL) return unsupported(st, "merge", err);
  rc = st->ops->merge(st->impl, q, out, len, count, err);
  /* a remote server has said why itself */
  if (rc == STORE_NOTFOUND && !st->remote) store_explain_empty(st, q, err);
  return rc;
}

void store_explain_empty(store *st, const store_query *q,
                         char err[STORE_ERRMAX]) {
  char from[META_TIME_MAX], to[META_TIME_MAX], first[META_TIME_MAX],
      last[META_TIME_MAX], with[SHOW + 32] = "";
  int64_t n = 0, t0 = 0, t1 = 0;
  const char *ty;
  int k;

  assert(st != NULL && q != NULL);
  if (err == NULL) return;
  if (st->remote && st->ops->merge != NULL) {
    /* the server explains an empty merge itself, which costs it little */
    char why[STORE_ERRMAX] = "";
    void *buf = NULL;
    size_t len = 0;
    if (st->ops->merge(st->impl, q, &buf, &len, NULL, why) == STORE_NOTFOUND &&
        why[0] != '\0') {
      memcpy(err, why, STORE_ERRMAX);
      return;
    }
    free(buf);
  }
  ty = meta_type_name(q->type);
  meta_time_format(q->from, from);
  meta_time_format(q->to, to);
  if (q->labels != NULL && q->labels[0] != '\0')
    snprintf(with, sizeof with, " with labels %.*s", SHOW, q->labels);
  k = snprintf(err, STORE_ERRMAX, "no %s profiles of %.*s%s from %s to %s",
               ty, SHOW, q->service, with, from, to);
  if (k < 0 || k >= STORE_ERRMAX || st->ops->span == NULL ||
      st->ops->span(st->impl, q->service, q->type, &n, &t0, &t1, NULL) != STORE_OK)
    return;
  meta_time_format(t0, first);
  meta_time_format(t1, last);
  if (n == 0)
    snprintf(err + k, STORE_ERRMAX - (size_t)k, "; %.*s has no %s profiles at all",
             SHOW, q->service, ty);
  else
    snprintf(err + k, STORE_ERRMAX - (size_t)k, "; %.*s holds %" PRId64 " %s "
             "profiles from %s to %s (a profile's time is the one inside it)",
             SHOW, q->service, n, ty, first, last);
}

store_rc store_merge_ids(store *st, const char *const *ids, size_t n,
                         void **out, size_t *len, char err[STORE_ERRMAX]) {
  assert(st != NULL && (ids != NULL || n == 0) && out != NULL && len != NULL);
  if (n == 0) return store_seterr(err, STORE_INVALID, "no profile ids");
  for (size_t i = 0; i < n; i++) {
    store_rc rc = check_id(st, ids[i], err);
    if (rc != STORE_OK) return rc;
  }
  if (st->ops->merge_ids == NULL) return unsupported(st, "merge", err);
  return st->ops->merge_ids(st->impl, ids, n, out, len, err);
}

store_rc store_services(store *st, char ***names, size_t *n,
                        char err[STORE_ERRMAX]) {
  assert(st != NULL && names != NULL && n != NULL);
  if (st->ops->services == NULL) return unsupported(st, "listing services", err);
  return st->ops->services(st->impl, names, n, err);
}

/* The checks every change of a service passes, then the backend's op
** (NULL: the backend cannot do `what`). */
static store_rc service_write(store *st, const char *service,
                              store_rc (*op)(void *, const char *, char *),
                              const char *what, char *err) {
  assert(st != NULL);
  store_rc rc;
  if ((rc = check_writable(st, err)) != STORE_OK ||
      (rc = check_service(service, err)) != STORE_OK)
    return rc;
  if (op == NULL) return unsupported(st, what, err);
  return op(st->impl, service, err);
}

store_rc store_add_service(store *st, const char *service,
                           char err[STORE_ERRMAX]) {
  assert(st != NULL);
  return service_write(st, service, st->ops->add_service,
                       "creating a service", err);
}

store_rc store_remove_service(store *st, const char *service,
                              char err[STORE_ERRMAX]) {
  assert(st != NULL);
  return service_write(st, service, st->ops->remove_service,
                       "removing a service", err);
}

store_rc store_label_sets(store *st, const char *service, meta_type type,
                          char ***sets, size_t *n, char err[STORE_ERRMAX]) {
  assert(st != NULL && sets != NULL && n != NULL);
  store_rc rc;
  if ((rc = check_service(service, err)) != STORE_OK ||
      (rc = check_type(type, err)) != STORE_OK)
    return rc;
  if (st->ops->label_sets == NULL)
    return unsupported(st, "listing label sets", err);
  return st->ops->label_sets(st->impl, service, type, sets, n, err);
}

store_rc store_has_labels(store *st, const char *service, meta_type type,
                          const char *labels, int exact,
                          char err[STORE_ERRMAX]) {
  assert(st != NULL && labels != NULL);
  char **sets = NULL;
  size_t n = 0, i;
  store_rc rc;
  if ((rc = check_service(service, err)) != STORE_OK ||
      (rc = check_type(type, err)) != STORE_OK ||
      (rc = check_labels(labels, err)) != STORE_OK)
    return rc;
  if (st->ops->has_labels != NULL)
    return st->ops->has_labels(st->impl, service, type, labels, exact, err);
  if ((rc = store_label_sets(st, service, type, &sets, &n, err)) != STORE_OK)
    return rc;
  for (i = 0; i < n; i++)
    if (exact ? strcmp(labels, sets[i]) == 0
              : meta_labels_match(labels, sets[i]))
      break;
  store_names_free(sets, n);
  return i < n ? STORE_OK
               : store_seterr(err, STORE_NOTFOUND, "no such label set");
}

/* Where store.c gathers names from label sets: sorted unique, as the
** backends that answer by index give them. */
typedef struct name_list {
  char **v;
  size_t n, cap;
  const char *key; /* NULL: keys, else that key's values */
} name_list;

int store_names_add(char ***v, size_t *n, size_t *cap, const char *name) {
  if (*n == *cap) {
    size_t ncap = *cap ? 2 * *cap : 16;
    char **nv = realloc(*v, ncap * sizeof *nv);
    if (nv == NULL) return -1;
    *v = nv;
    *cap = ncap;
  }
  if (((*v)[*n] = strdup(name)) == NULL) return -1;
  (*n)++;
  return 0;
}

static int add_label_name(const char *key, const char *value, void *arg) {
  name_list *nl = arg;
  if (nl->key != NULL && strcmp(key, nl->key) != 0) return 0;
  return store_names_add(&nl->v, &nl->n, &nl->cap, nl->key ? value : key);
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the names of canonical set to nl (STORE_NOMEM on failure). */
static store_rc gather_names(name_list *nl, const char *set, char *err) {
  if (meta_labels_foreach(set, add_label_name, nl) < 0)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  return STORE_OK;
}

/* Sorts and dedups nl into *out, *n (or frees it when rc is not OK). */
static store_rc names_done(name_list *nl, store_rc rc, char ***out,
                           size_t *n) {
  size_t u = 0;
  if (rc != STORE_OK) {
    store_names_free(nl->v, nl->n);
    return rc;
  }
  if (nl->n > 0) qsort(nl->v, nl->n, sizeof *nl->v, cmp_names);
  for (size_t i = 0; i < nl->n; i++) {
    if (u > 0 && strcmp(nl->v[u - 1], nl->v[i]) == 0) free(nl->v[i]);
    else nl->v[u++] = nl->v[i];
  }
  *out = nl->v;
  *n = u;
  return STORE_OK;
}

store_rc store_label_keys(store *st, const char *service, meta_type type,
                          char ***out, size_t *n, char err[STORE_ERRMAX]) {
  assert(st != NULL && out != NULL && n != NULL);
  name_list nl = {NULL, 0, 0, NULL};
  char **sets = NULL;
  size_t ns = 0;
  store_rc rc;
  if ((rc = check_service(service, err)) != STORE_OK ||
      (rc = check_type(type, err)) != STORE_OK)
    return rc;
  if (st->ops->label_names != NULL)
    return st->ops->label_names(st->impl, service, type, NULL, 1, 0, out, n,
                                err);
  rc = store_label_sets(st, service, type, &sets, &ns, err);
  if (rc == STORE_NOTFOUND) rc = STORE_OK;
  for (size_t i = 0; rc == STORE_OK && i < ns; i++)
    rc = gather_names(&nl, sets[i], err);
  store_names_free(sets, ns);
  return names_done(&nl, rc, out, n);
}

store_rc store_label_values(store *st, const char *service, meta_type type,
                            const char *key, int64_t from, int64_t to,
                            char ***out, size_t *n, char err[STORE_ERRMAX]) {
  assert(st != NULL && key != NULL && out != NULL && n != NULL);
  name_list nl = {NULL, 0, 0, key};
  store_query q = {.service = service, .type = type, .from = from, .to = to};
  store_meta_list ml = {0, NULL};
  store_rc rc;
  if ((rc = check_query(&q, err)) != STORE_OK) return rc;
  if (st->ops->label_names != NULL)
    return st->ops->label_names(st->impl, service, type, key, from, to, out,
                                n, err);
  rc = store_find(st, &q, &ml, err);
  if (rc == STORE_NOTFOUND) rc = STORE_OK;
  for (size_t i = 0; rc == STORE_OK && i < ml.n; i++)
    rc = gather_names(&nl, ml.v[i].labels, err);
  store_meta_list_free(&ml);
  return names_done(&nl, rc, out, n);
}

store_rc store_delete(store *st, const char *id, char err[STORE_ERRMAX]) {
  assert(st != NULL);
  store_rc rc;
  if ((rc = check_writable(st, err)) != STORE_OK ||
      (rc = check_id(st, id, err)) != STORE_OK)
    return rc;
  if (st->ops->del == NULL) return unsupported(st, "delete", err);
  return st->ops->del(st->impl, id, err);
}

store_rc store_retain(store *st, int64_t cutoff, size_t *deleted,
                      char err[STORE_ERRMAX]) {
  assert(st != NULL);
  store_rc rc = check_writable(st, err);
  if (rc != STORE_OK) return rc;
  if (st->ops->retain == NULL) return unsupported(st, "retention", err);
  return st->ops->retain(st->impl, cutoff, deleted, err);
}

uint64_t store_generation(store *st) {
  assert(st != NULL);
  return st->ops->generation ? st->ops->generation(st->impl) : 0;
}

store_rc store_get_stats(store *st, store_stats *out) {
  assert(st != NULL && out != NULL);
  if (st->ops->stats == NULL) return STORE_UNSUPPORTED;
  return st->ops->stats(st->impl, out);
}

store_rc store_maintain(store *st, size_t *built, char err[STORE_ERRMAX]) {
  assert(st != NULL);
  store_rc rc = check_writable(st, err);
  if (rc != STORE_OK) return rc;
  if (st->ops->maintain == NULL) return unsupported(st, "maintenance", err);
  return st->ops->maintain(st->impl, built, err);
}
