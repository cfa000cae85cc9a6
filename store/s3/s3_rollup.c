/*
** s3_rollup.c — rollups on S3: a merge of a query reads precomputed merges
** (objects under "R0.") in place of the profiles they hold, and builds the
** missing ones of finished slots from what it fetched anyway.  Which
** rollups exist and which a query uses is the shared policy of ../rollup.h
** (hours, days, weeks); here the filter is the query's own.
**
** Object key (after the store's prefix):
**     R0.<service>/<type number>/<filter or "_">/<start>.<level>.<count>.<digest>
** start: unix seconds in 11 digits (keys sort by time); count and digest
** (16 hex digits, store_rollup_digest of the member keys in key order):
** the profiles it merged.  profefe lists services under "P0." only and our
** own listings look there too, so nothing else ever sees these objects.
**
** Validity: a merge lists its range anyway; a rollup is used only when the
** count and digest of the listed keys of its slot (matching its filter)
** equal those in its name.  A late arrival, a delete, retention, a write
** by another node or by profefe changes that listing, so a stale rollup is
** never used; the next merge builds one under another name.  Identical
** inputs give the same name and the same bytes, so any number of nodes may
** build one at once without coordination.
**
** Building: as the merge streams its pieces (rollups and raw profiles, in
** time order) into the answer, it tees them into one builder per level for
** each slot that ended STORE_ROLLUP_GRACE ago, lies inside the range,
** holds 2 or more profiles and has no valid rollup: an hour gets its raw
** profiles, a day its hours' rollups (read or just built) and the raw
** profiles of the hours that have none, a week its days'.  Merging is
** sequential, so a rollup's bytes are those of merging its profiles one by
** one, and a merge that uses it gives the raw merge's bytes (as in the
** local store).  A builder whose count comes out different from its
** listing (a profile that failed to merge) stores nothing.
**
** Which filters: only those of rollup.h's policy (store_rollup_filter_kept:
** none, one pair, or a whole label set of a listed profile); a merge by any
** other filter reads the profiles, so that new filters in queries do not
** multiply the objects.  A day or week whose profiles all fall in one of
** its hours or days gets no rollup of its own (it would be a byte-identical
** copy of that one's).
**
** Old versions: a late arrival makes a slot's rollup stale and the next
** merge builds another under a new name.  A merge that lists a stale
** version beside a valid one of the same slot that is 10 minutes old
** deletes the stale one: a node that may still use it listed the slot
** before the valid one was built, longer ago than any merge lasts (and a
** merge that meets a rollup deleted under it plans again).  The upkeep
** pass (store_s3_rollup_upkeep) does the same over the whole namespace:
** of the versions of one slot it keeps the newest and deletes the others
** once the newest is 10 minutes old.  Deleting a profile drops the
** rollups of its slots (every filter it matches) at once.
**
** Retention deletes the rollups of slots that ended before its cutoff, in
** the upkeep pass, which also counts the rollups and their bytes for
** /debug/metrics.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mergepipe.h"
#include "rollup.h"
#include "s3_int.h"

#define ROLLUP_INFLIGHT 16
#define START_DIGITS 11
#define PAGE_MAX 1000

static const char *const level_names[STORE_ROLLUP_LEVELS] = {
  "rollup of hour", "rollup of day", "rollup of week"};

/* A rollup object found under the query's filter. */
typedef struct cand {
  int level;
  int64_t start, count;
  uint64_t digest;
  int64_t mtime; /* LastModified; -1 unknown */
  int64_t size;  /* of the object */
  char *key;
} cand;

typedef struct cands {
  cand *v;
  size_t n, cap;
} cands;

/* One row of the merge: a raw profile (level -1) or a rollup. */
typedef struct item {
  const char *key;
  int level;
  int64_t t;     /* created_at, or the rollup's start */
  int64_t count; /* profiles it stands for */
} item;

/* A rollup being built from the rows of its slot. */
typedef struct builder {
  int on, failed;
  int64_t start, end;
  int64_t want, got; /* profiles listed / merged */
  uint64_t digest;
  store_mergepipe *p;
} builder;

typedef struct run {
  store_s3 *s;
  const store_query *q;
  const store_meta_list *l;
  const char *dir;   /* "R0.<service>/<num>/<filter>/" */
  cand *valid;       /* rollups that cover their slot's current keys */
  size_t nvalid;
  cands stale;       /* the other versions of the range's slots */
  item *items;
  store_mergepipe *main;
  int main_failed;
  int64_t now;
  int no_build;      /* S3 refused the rollups' listing: build none */
  builder b[STORE_ROLLUP_LEVELS];
  size_t built;
} run;

/* ---- names -------------------------------------------------------------------- */

/* "R0.<service>/<num>/<filter or _>/" (malloc'd); NULL when the filter
** cannot be a key segment or out of memory. */
static char *rollup_dir(const char *service, meta_type type,
                        const char *filter) {
  char *pdir = store_s3_key_dir(service, type), *d = NULL;
  if (pdir == NULL || strchr(filter, '/') != NULL) goto out;
  if (asprintf(&d, "R0.%s%s/", pdir + 3, filter[0] ? filter : "_") < 0) d = NULL;
out:
  free(pdir);
  return d;
}

/* Parses the part of a rollup key after its dir; 0, or -1 when it is not
** one we would have written (printed back, it must read the same). */
static int parse_name(const char *name, cand *c) {
  long long start, count;
  int level;
  uint64_t digest;
  char back[96];
  if (sscanf(name, "%11lld.%d.%lld.%16" SCNx64, &start, &level, &count,
             &digest) != 4 ||
      level < 0 || level >= STORE_ROLLUP_LEVELS ||
      !store_rollup_slot_valid(level, start) || count < 2)
    return -1;
  snprintf(back, sizeof back, "%0*lld.%d.%lld.%016" PRIx64, START_DIGITS,
           start, level, count, digest);
  if (strcmp(back, name) != 0) return -1;
  *c = (cand){.level = level, .start = start, .count = count, .digest = digest};
  return 0;
}

/* ---- what the listing says -------------------------------------------------------- */

/* The first listed profile with created_at >= t (the list is in key, hence
** time, order). */
static size_t first_at(const store_meta_list *l, int64_t t) {
  size_t lo = 0, hi = l->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (l->v[mid].created_at < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* Count and digest of the listed profiles of [from, to]. */
static int64_t members(const store_meta_list *l, int64_t from, int64_t to,
                       uint64_t *digest) {
  uint64_t d = STORE_ROLLUP_DIGEST0;
  int64_t n = 0;
  for (size_t i = first_at(l, from); i < l->n && l->v[i].created_at <= to; i++) {
    d = store_rollup_digest(d, l->v[i].key);
    n++;
  }
  *digest = d;
  return n;
}

static int64_t slot_end(int level, int64_t start) {
  return start + store_rollup_span(level) - 1;
}

static void cands_free(cands *c) {
  for (size_t i = 0; i < c->n; i++) free(c->v[i].key);
  free(c->v);
  *c = (cands){0};
}

/* Appends k with a copy of key; -1 when out of memory. */
static int cands_add(cands *c, cand k, const char *key) {
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 32;
    cand *v = realloc(c->v, cap * sizeof *v);
    if (v == NULL) return -1;
    c->v = v;
    c->cap = cap;
  }
  if ((k.key = strdup(key)) == NULL) return -1;
  c->v[c->n++] = k;
  return 0;
}

typedef struct cand_ctx {
  run *r;
  size_t plen;
  cands valid;
  int oom;
} cand_ctx;

/* Keeps the rollups of the range that match the listing (the others of
** the range in r->stale). */
static int cand_one(const s3_obj *o, void *arg) {
  cand_ctx *c = arg;
  const store_query *q = c->r->q;
  cand k;
  uint64_t d;
  int ok;
  if (strlen(o->key) <= c->plen || parse_name(o->key + c->plen, &k) != 0) return 0;
  if (k.start > q->to) return 1;
  if (k.start < q->from || slot_end(k.level, k.start) > q->to) return 0;
  k.mtime = o->mtime;
  ok = members(c->r->l, k.start, slot_end(k.level, k.start), &d) == k.count &&
       d == k.digest; /* else stale: its slot's keys changed since */
  if (cands_add(ok ? &c->valid : &c->r->stale, k, o->key) != 0) return c->oom = 1;
  return 0;
}

static store_rc list_valid(run *r, char *err) {
  char after[S3_KEY_MAX + 32];
  cand_ctx c = {.r = r, .plen = strlen(r->dir)};
  snprintf(after, sizeof after, "%s%0*lld", r->dir, START_DIGITS,
           (long long)r->q->from);
  store_rc rc = store_s3_list_objs(r->s, r->dir, after, NULL, PAGE_MAX,
                                   cand_one, &c, err);
  if (rc == STORE_OK && c.oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  r->valid = c.valid.v;
  r->nvalid = c.valid.n;
  return rc;
}

/* DELETE of one rollup; 1 when S3 took it (or it was gone already). */
static int delete_rollup(store_s3 *s, const char *key) {
  char err[STORE_ERRMAX];
  s3_resp resp = {0};
  int ok = store_s3_request(s, "DELETE", key, NULL, NULL, 0, NULL, 1 << 16,
                            &resp, err) == STORE_OK &&
           (resp.status / 100 == 2 || resp.status == 404);
  store_s3_resp_clear(&resp);
  return ok;
}

static const cand *valid_at(const run *r, int level, int64_t start) {
  for (size_t i = 0; i < r->nvalid; i++)
    if (r->valid[i].level == level && r->valid[i].start == start) return &r->valid[i];
  return NULL;
}

/* Deletes the stale versions listed beside a valid one of their slot
** that is 10 minutes old (see the top of the file). */
static void drop_superseded(run *r) {
  for (size_t i = 0; i < r->stale.n; i++) {
    const cand *st = &r->stale.v[i], *v = valid_at(r, st->level, st->start);
    if (v != NULL && v->mtime >= 0 && v->mtime <= r->now - r->s->superseded_grace)
      delete_rollup(r->s, st->key);
  }
}

/* ---- builders ------------------------------------------------------------------------ */

/* 1 when slot (level, start) should get a rollup built by this merge. */
static int worth_building(const run *r, int level, int64_t start,
                          int64_t *want, uint64_t *digest) {
  int64_t end = slot_end(level, start);
  if (r->no_build || !store_rollup_slot_valid(level, start) ||
      start < r->q->from || end > r->q->to ||
      !store_rollup_due(level, start, r->now) ||
      valid_at(r, level, start) != NULL)
    return 0;
  *want = members(r->l, start, end, digest);
  if (*want >= 2 && level > 0) {
    /* all in one hour (day): that one's rollup has the same bytes */
    size_t first = first_at(r->l, start), last = first + (size_t)*want - 1;
    if (store_rollup_slot(level - 1, r->l->v[first].created_at) ==
        store_rollup_slot(level - 1, r->l->v[last].created_at))
      return 0;
  }
  return *want >= 2;
}

static void feed(run *r, int level, int64_t count, const void *body,
                 size_t len);

/* PUTs a finished rollup; a failure only costs its use later. */
static void put_rollup(run *r, int level, const builder *b, const void *data,
                       size_t len) {
  char key[S3_KEY_MAX + 64], err[STORE_ERRMAX];
  s3_resp resp = {0};
  int n = snprintf(key, sizeof key, "%s%0*lld.%d.%lld.%016" PRIx64, r->dir,
                   START_DIGITS, (long long)b->start, level, (long long)b->want,
                   b->digest);
  if (n < 0 || (size_t)n >= sizeof key ||
      strlen(r->s->prefix) + (size_t)n > S3_KEY_MAX)
    return;
  if (store_s3_request(r->s, "PUT", key, NULL, data, len, NULL, 1 << 16, &resp,
                       err) == STORE_OK &&
      resp.status == 200)
    r->built++;
  store_s3_resp_clear(&resp);
}

/* Finishes the builder of level: stores its rollup and passes it up. */
static void close_builder(run *r, int level) {
  builder *b = &r->b[level];
  void *data = NULL;
  size_t len = 0;
  char err[STORE_ERRMAX];
  if (!b->failed && b->got == b->want &&
      store_mergepipe_finish(b->p, &data, &len, err) == STORE_OK) {
    put_rollup(r, level, b, data, len);
    feed(r, level, b->want, data, len);
  }
  free(data);
  store_mergepipe_free(b->p);
  *b = (builder){0};
}

/* Closes the builders whose slot ended before t, lowest level first, so
** that an hour's rollup reaches its day before the day closes. */
static void close_before(run *r, int64_t t) {
  for (int lv = 0; lv < STORE_ROLLUP_LEVELS; lv++)
    if (r->b[lv].on && r->b[lv].end < t) close_builder(r, lv);
}

/* Gives a row of level (raw: -1) to the lowest open builder above it. */
static void feed(run *r, int level, int64_t count, const void *body,
                 size_t len) {
  char err[STORE_ERRMAX];
  for (int lv = level + 1; lv < STORE_ROLLUP_LEVELS; lv++) {
    builder *b = &r->b[lv];
    if (!b->on) continue;
    if (!b->failed &&
        store_mergepipe_push(b->p, "profile", "", body, len, err) != STORE_OK)
      b->failed = 1;
    b->got += count;
    return;
  }
}

/* Opens the builders above level whose slot holds t and is worth one. */
static void open_at(run *r, int level, int64_t t) {
  char err[STORE_ERRMAX];
  for (int lv = level + 1; lv < STORE_ROLLUP_LEVELS; lv++) {
    builder *b = &r->b[lv];
    int64_t start = store_rollup_slot(lv, t), want;
    uint64_t digest;
    if (b->on || !worth_building(r, lv, start, &want, &digest)) continue;
    *b = (builder){.on = 1, .start = start, .end = slot_end(lv, start),
                   .want = want, .digest = digest};
    if (store_mergepipe_new(r->s->max_inflate, 1, &b->p, err) != STORE_OK)
      b->failed = 1;
  }
}

static void builders_free(run *r) {
  for (int lv = 0; lv < STORE_ROLLUP_LEVELS; lv++) {
    store_mergepipe_free(r->b[lv].p);
    r->b[lv] = (builder){0};
  }
}

/* ---- the merge ------------------------------------------------------------------------ */

static store_rc on_item(size_t i, const void *body, size_t len, void *arg,
                        char *err) {
  run *r = arg;
  const item *it = &r->items[i];
  store_rc rc = store_mergepipe_push(
      r->main, it->level < 0 ? "stored profile" : level_names[it->level],
      it->key, body, len, err);
  if (rc != STORE_OK) {
    r->main_failed = 1;
    return rc;
  }
  close_before(r, it->t);
  open_at(r, it->level, it->t);
  feed(r, it->level, it->count, body, len);
  return STORE_OK;
}

/* The rows of the plan of r's range, in order; *n of them (malloc'd). */
static store_rc plan_items(run *r, item **out, size_t *n, int *rollups,
                           char *err) {
  store_rollup_have *have = calloc(r->nvalid ? r->nvalid : 1, sizeof *have);
  store_rollup_piece *pieces = NULL;
  size_t np = 0, k = 0;
  item *v = NULL;
  store_rc rc;
  if (have == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  for (size_t i = 0; i < r->nvalid; i++)
    have[i] = (store_rollup_have){r->valid[i].level, r->valid[i].start};
  rc = store_rollup_plan(r->q->from, r->q->to, STORE_ROLLUP_LEVELS - 1, have,
                         r->nvalid, &pieces, &np, err);
  /* at most one row per listed profile, plus one per rollup */
  if (rc == STORE_OK && (v = malloc((r->l->n + np + 1) * sizeof *v)) == NULL)
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
  *rollups = 0;
  for (size_t p = 0; rc == STORE_OK && p < np; p++) {
    const store_rollup_piece *pc = &pieces[p];
    if (pc->level >= 0) {
      const cand *c = valid_at(r, pc->level, pc->from);
      v[k++] = (item){c->key, c->level, c->start, c->count};
      (*rollups)++;
      continue;
    }
    for (size_t i = first_at(r->l, pc->from);
         i < r->l->n && r->l->v[i].created_at <= pc->to; i++)
      v[k++] = (item){r->l->v[i].key, -1, r->l->v[i].created_at, 1};
  }
  free(have);
  free(pieces);
  if (rc != STORE_OK) {
    free(v);
    return rc;
  }
  *out = v;
  *n = k;
  return STORE_OK;
}

/* One attempt: list the rollups, plan, fetch and merge (building). */
static store_rc merge_once(run *r, void **out, size_t *len, int *used,
                           char *err) {
  const char **keys = NULL;
  size_t n = 0;
  store_rc rc = list_valid(r, err);
  if (rc == STORE_IO) {
    /* S3 refused the listing (a policy that grants only profefe's P0.
    ** prefix): merge without rollups, and build none (their PUTs
    ** would be refused the same way) */
    for (size_t i = 0; i < r->nvalid; i++) free(r->valid[i].key);
    free(r->valid);
    r->valid = NULL;
    r->nvalid = 0;
    cands_free(&r->stale);
    r->no_build = 1;
    rc = STORE_OK;
  }
  if (rc == STORE_OK) rc = plan_items(r, &r->items, &n, used, err);
  if (rc == STORE_OK && (keys = malloc((n ? n : 1) * sizeof *keys)) == NULL)
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
  if (rc == STORE_OK) rc = store_mergepipe_new(r->s->max_inflate, 2, &r->main, err);
  if (rc != STORE_OK) goto out;
  for (size_t i = 0; i < n; i++) keys[i] = r->items[i].key;
  /* listed just now (profiles and rollups): the cache may serve them */
  rc = store_s3_fetch_cached(r->s, keys, n, ROLLUP_INFLIGHT, r->s->max_inflate,
                             on_item, r, err);
  if (rc != STORE_OK && !r->main_failed) {
    /* an earlier profile's failure comes first, as when merging one by one */
    store_rc d = store_mergepipe_drain(r->main, err);
    if (d != STORE_OK) rc = d;
  } else if (rc == STORE_OK) {
    close_before(r, INT64_MAX);
    rc = store_mergepipe_finish(r->main, out, len, err);
  }
  if (rc == STORE_OK) drop_superseded(r);
out:
  builders_free(r);
  store_mergepipe_free(r->main);
  r->main = NULL;
  r->main_failed = 0;
  free(keys);
  free(r->items);
  r->items = NULL;
  for (size_t i = 0; i < r->nvalid; i++) free(r->valid[i].key);
  free(r->valid);
  r->valid = NULL;
  r->nvalid = 0;
  cands_free(&r->stale);
  return rc;
}

/* 1 when [from, to] holds a whole hour that has ended: else no rollup can
** be used or built, and the merge skips listing them. */
static int may_have_rollups(const store_query *q, int64_t now) {
  int64_t h = store_rollup_slot(0, q->from);
  if (h < q->from) h += store_rollup_span(0);
  return q->limit <= 0 && q->type != META_TRACE && h <= q->to - 3599 &&
         store_rollup_slot_valid(0, h) && store_rollup_due(0, h, now);
}

/* 1 when the policy keeps rollups for q's filter (rollup.h). */
static int filter_kept(const store_query *q, const store_meta_list *l) {
  const char *f = q->labels ? q->labels : "";
  int whole = 0;
  for (size_t i = 0; !whole && i < l->n; i++) whole = strcmp(l->v[i].labels, f) == 0;
  return store_rollup_filter_kept(f, whole);
}

store_rc store_s3_rollup_merge(store_s3 *s, const store_query *q,
                               const store_meta_list *l, void **out,
                               size_t *len, char *err) {
  run r = {.s = s, .q = q, .l = l, .now = (int64_t)time(NULL)};
  char *dir = NULL;
  store_rc rc;
  int used = 0;
  if (may_have_rollups(q, r.now) && filter_kept(q, l))
    dir = rollup_dir(q->service, q->type, q->labels ? q->labels : "");
  if (dir == NULL || strlen(s->prefix) + strlen(dir) + 64 > S3_KEY_MAX) {
    const char **keys = malloc((l->n ? l->n : 1) * sizeof *keys);
    free(dir);
    if (keys == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) keys[i] = l->v[i].key;
    rc = store_s3_merge_keys(s, keys, l->n, 1, out, len, err);
    free(keys);
    return rc;
  }
  r.dir = dir;
  rc = merge_once(&r, out, len, &used, err);
  if (rc == STORE_NOTFOUND && used) {
    /* a rollup listed a moment ago is gone (retention on another node):
    ** plan again from a fresh listing of them */
    rc = merge_once(&r, out, len, &used, err);
  }
  free(dir);
  return rc;
}

/* ---- upkeep: retention, old versions, the count ----------------------------------------- */

typedef struct keyv {
  char **v;
  size_t n, cap;
  int oom;
} keyv;

static int keyv_add(keyv *k, const char *key) {
  if (k->n == k->cap) {
    size_t cap = k->cap ? 2 * k->cap : 32;
    char **v = realloc(k->v, cap * sizeof *v);
    if (v == NULL) return k->oom = 1;
    k->v = v;
    k->cap = cap;
  }
  if ((k->v[k->n] = strdup(key)) == NULL) return k->oom = 1;
  k->n++;
  return 0;
}

/* Deletes every key of k (a failure only leaves one for the next pass);
** how many S3 took. */
static int64_t delete_all(store_s3 *s, const keyv *k) {
  int64_t n = 0;
  for (size_t i = 0; i < k->n; i++) n += delete_rollup(s, k->v[i]);
  return n;
}

typedef struct upkeep_ctx {
  int64_t cutoff, now, grace;
  char group[S3_KEY_MAX + 32]; /* "<dir><start>.<level>." of vers */
  cands vers;                  /* the versions of one slot, listed */
  keyv del;                    /* to delete */
  int64_t count, bytes;        /* what stays */
} upkeep_ctx;

/* Decides on the versions of one slot: all go when the slot expired;
** else the newest stays, and the others go once it is 10 minutes
** old. */
static void upkeep_group(upkeep_ctx *u) {
  size_t newest = 0;
  int expired, superseded;
  if (u->vers.n == 0) return;
  for (size_t i = 1; i < u->vers.n; i++)
    if (u->vers.v[i].mtime > u->vers.v[newest].mtime) newest = i;
  expired = slot_end(u->vers.v[0].level, u->vers.v[0].start) < u->cutoff;
  superseded = u->vers.v[newest].mtime >= 0 &&
               u->vers.v[newest].mtime <= u->now - u->grace;
  for (size_t i = 0; i < u->vers.n; i++) {
    if (expired || (i != newest && superseded)) {
      keyv_add(&u->del, u->vers.v[i].key);
    } else {
      u->count++;
      u->bytes += u->vers.v[i].size;
    }
  }
  cands_free(&u->vers);
}

/* Rollup keys are R0.<service>/<num>/<filter>/<name>; versions of one
** slot list one after the other. */
static int upkeep_one(const s3_obj *o, void *arg) {
  upkeep_ctx *u = arg;
  const char *slash = strrchr(o->key, '/');
  size_t glen;
  cand c;
  if (slash == NULL || parse_name(slash + 1, &c) != 0) return 0;
  glen = (size_t)(slash + 1 - o->key) + START_DIGITS + 3; /* "<start>.<level>." */
  if (glen >= sizeof u->group) return 0;
  if (strncmp(u->group, o->key, glen) != 0 || u->group[glen] != '\0') {
    upkeep_group(u);
    memcpy(u->group, o->key, glen);
    u->group[glen] = '\0';
  }
  c.mtime = o->mtime;
  c.size = o->size > 0 ? o->size : 0;
  if (cands_add(&u->vers, c, o->key) != 0) u->del.oom = 1;
  return u->del.oom;
}

store_rc store_s3_rollup_upkeep(store_s3 *s, int64_t cutoff, char *err) {
  upkeep_ctx u = {.cutoff = cutoff, .now = (int64_t)time(NULL),
                  .grace = s->superseded_grace};
  store_rc rc = store_s3_list_objs(s, "R0.", NULL, NULL, PAGE_MAX, upkeep_one,
                                   &u, err);
  upkeep_group(&u);
  if (rc == STORE_OK && u.del.oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  if (rc == STORE_OK) {
    int64_t gone = delete_all(s, &u.del);
    pthread_mutex_lock(&s->mu);
    s->rollups = u.count + (int64_t)u.del.n - gone; /* failed deletes stay */
    s->rollup_bytes = u.bytes;
    pthread_mutex_unlock(&s->mu);
  }
  cands_free(&u.vers);
  store_names_free(u.del.v, u.del.n);
  return rc;
}

/* ---- a deleted profile's slots ------------------------------------------------------- */

static int prefix_one(const s3_obj *o, void *arg) {
  keyv *k = arg;
  size_t n = strlen(o->key);
  if (o->size >= 0 || n == 0 || o->key[n - 1] != '/') return 0; /* a key */
  return keyv_add(k, o->key);
}

static int key_one(const s3_obj *o, void *arg) {
  return o->size < 0 ? 0 : keyv_add(arg, o->key);
}

void store_s3_rollup_forget(store_s3 *s, const store_meta *m) {
  char *pdir = store_s3_key_dir(m->service, m->type), *rdir = NULL;
  char err[STORE_ERRMAX], prefix[S3_KEY_MAX + 64];
  keyv dirs = {0}, keys = {0};
  if (pdir == NULL || asprintf(&rdir, "R0.%s", pdir + 3) < 0) rdir = NULL;
  if (rdir == NULL ||
      store_s3_list_objs(s, rdir, NULL, "/", PAGE_MAX, prefix_one, &dirs, err) != STORE_OK)
    goto out;
  for (size_t i = 0; i < dirs.n; i++) {
    /* "R0.<service>/<num>/<filter or _>/" */
    size_t n = strlen(dirs.v[i]) - 1, rl = strlen(rdir);
    char filter[S3_KEY_MAX];
    if (n <= rl || n - rl >= sizeof filter) continue;
    memcpy(filter, dirs.v[i] + rl, n - rl);
    filter[n - rl] = '\0';
    if (strcmp(filter, "_") == 0) filter[0] = '\0';
    if (!meta_labels_match(filter, m->labels)) continue;
    for (int lv = 0; lv < STORE_ROLLUP_LEVELS; lv++) {
      int64_t start = store_rollup_slot(lv, m->created_at);
      if (!store_rollup_slot_valid(lv, start)) continue;
      snprintf(prefix, sizeof prefix, "%s%0*lld.%d.", dirs.v[i], START_DIGITS,
               (long long)start, lv);
      (void)store_s3_list_objs(s, prefix, NULL, NULL, PAGE_MAX, key_one, &keys, err);
    }
  }
  delete_all(s, &keys);
out:
  store_names_free(dirs.v, dirs.n);
  store_names_free(keys.v, keys.n);
  free(pdir);
  free(rdir);
}
