/*
** rollups.c — rollups of the local store: precomputed merges that merges
** of long ranges read instead of the profiles they hold (merge.c).  This
** file owns their tables and triggers, finds the slots due, builds them
** and stores the result; which rollups exist and which a query uses is
** the shared policy of ../rollup.h (hours, days and weeks; "", every
** label pair and every whole label set).
**
** Tables (schema 3): rollups holds one row per (service, type, filter,
** level, start) with the number of profiles it merged and the id of its
** bytes in rollup_data, which filters of one slot holding the same
** profiles share (a trigger deletes bytes no row uses); rollup_dirty holds
** the (service, type, level, start) slots whose rollups are missing or
** stale, each with a sequence number bumped on every change.
**
** Consistency does not depend on the builder.  The triggers below delete
** the rollups whose filter matches a profile, in its hour, day and week,
** and bump those slots' dirty marks, in the very transaction that adds or
** removes it: ingests, late arrivals, deletes and retention alike.  The
** builder reads a slot's mark and profiles in one snapshot and writes only
** while the mark still has that value (write_slot).  So a query sees
** rollups equal to the merge of their slot's current profiles, or none.
**
** The builder: a background thread every ROLLUP_EVERY seconds, or
** store_maintain() at once, builds every due slot (ended
** STORE_ROLLUP_GRACE ago), hours first, then days from hours, then weeks
** from days, each on one core: it runs beside ingests.
**
** Invariants:
**   - at most one pass runs at a time (pass_mu), so two passes never build
**     the same slot twice;
**   - stop is only set by store_local_rollup_stop, under mu.
*/
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local.h"
#include "mergepipe.h"
#include "rollup.h"

#define ROLLUP_EVERY 60 /* seconds between background passes */
/* Bytes of rollups written per transaction while one slot is stored. */
#define WRITE_CHUNK ((size_t)16 << 20)

/* Version 2: hourly rollups per label set (replaced by version 3). */
const char store_local_rollups_v2[] =
  "CREATE TABLE rollups("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  hour INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  profiles INTEGER NOT NULL,"
  "  data BLOB NOT NULL,"
  "  PRIMARY KEY(service, type, hour, labels));"
  "CREATE TABLE rollup_dirty("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  hour INTEGER NOT NULL,"
  "  labels TEXT NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY(service, type, hour, labels)) WITHOUT ROWID;"
  "CREATE TRIGGER rollup_added AFTER INSERT ON profiles"
  "  WHEN new.type <> 7 AND new.created_at >= 3600 BEGIN"
  "  DELETE FROM rollups WHERE service = new.service AND type = new.type"
  "    AND hour = new.created_at / 3600 AND labels = new.labels;"
  "  INSERT INTO rollup_dirty"
  "    VALUES(new.service, new.type, new.created_at / 3600, new.labels, 1)"
  "    ON CONFLICT DO UPDATE SET seq = seq + 1;"
  "END;"
  "CREATE TRIGGER rollup_removed AFTER DELETE ON profiles"
  "  WHEN old.type <> 7 AND old.created_at >= 3600 BEGIN"
  "  DELETE FROM rollups WHERE service = old.service AND type = old.type"
  "    AND hour = old.created_at / 3600 AND labels = old.labels;"
  "  INSERT INTO rollup_dirty"
  "    VALUES(old.service, old.type, old.created_at / 3600, old.labels, 1)"
  "    ON CONFLICT DO UPDATE SET seq = seq + 1;"
  "END;"
  /* Hours stored before rollups existed are due as well. */
  "INSERT OR IGNORE INTO rollup_dirty"
  "  SELECT service, type, created_at / 3600, labels, 1 FROM profiles"
  "  WHERE type <> 7 AND created_at >= 3600"
  "  GROUP BY service, type, created_at / 3600, labels;";

/* Version 3: rollups by filter at three levels.  The slot of a level of
** span S holding t is t / S * S (t > 0: floor); level 0 is 3600 s, 1 is
** 86400 s, 2 is 604800 s, as in ../rollup.c.  Slots at or before the
** epoch get none; traces (type 7) are never merged. */
#define SLOT_TRIGGER(rec, lvl, span)                                         \
  "  DELETE FROM rollups WHERE service = " rec ".service"                    \
  "    AND type = " rec ".type AND level = " #lvl                            \
  "    AND start = " rec ".created_at / " #span " * " #span                  \
  "    AND labels_match(filter, " rec ".labels);"                            \
  "  INSERT INTO rollup_dirty SELECT " rec ".service, " rec ".type, " #lvl ","\
  "    " rec ".created_at / " #span " * " #span ", 1"                        \
  "    WHERE " rec ".created_at >= " #span                                   \
  "    ON CONFLICT DO UPDATE SET seq = seq + 1;"
#define SLOT_MARKS(lvl, span)                                                \
  "INSERT OR IGNORE INTO rollup_dirty"                                       \
  "  SELECT service, type, " #lvl ", created_at / " #span " * " #span ", 1"  \
  "  FROM profiles WHERE type <> 7 AND created_at >= " #span                 \
  "  GROUP BY 1, 2, 3, 4;"

const char store_local_rollups_v3[] =
  "DROP TRIGGER rollup_added;"
  "DROP TRIGGER rollup_removed;"
  "DROP TABLE rollups;"
  "DROP TABLE rollup_dirty;"
  "CREATE TABLE rollup_data(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
  "CREATE TABLE rollups("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  filter TEXT NOT NULL,"
  "  level INTEGER NOT NULL,"
  "  start INTEGER NOT NULL,"
  "  profiles INTEGER NOT NULL,"
  "  data INTEGER NOT NULL,"
  "  PRIMARY KEY(service, type, filter, level, start)) WITHOUT ROWID;"
  "CREATE INDEX rollups_by_slot ON rollups(service, type, level, start);"
  "CREATE INDEX rollups_by_data ON rollups(data);"
  "CREATE TABLE rollup_dirty("
  "  service TEXT NOT NULL,"
  "  type INTEGER NOT NULL,"
  "  level INTEGER NOT NULL,"
  "  start INTEGER NOT NULL,"
  "  seq INTEGER NOT NULL,"
  "  PRIMARY KEY(service, type, level, start)) WITHOUT ROWID;"
  "CREATE TRIGGER rollup_data_unused AFTER DELETE ON rollups"
  "  WHEN NOT EXISTS (SELECT 1 FROM rollups WHERE data = old.data) BEGIN"
  "  DELETE FROM rollup_data WHERE id = old.data;"
  "END;"
  "CREATE TRIGGER rollups_added AFTER INSERT ON profiles"
  "  WHEN new.type <> 7 AND new.created_at >= 3600 BEGIN"
  SLOT_TRIGGER("new", 0, 3600) SLOT_TRIGGER("new", 1, 86400)
  SLOT_TRIGGER("new", 2, 604800)
  "END;"
  "CREATE TRIGGER rollups_removed AFTER DELETE ON profiles"
  "  WHEN old.type <> 7 AND old.created_at >= 3600 BEGIN"
  SLOT_TRIGGER("old", 0, 3600) SLOT_TRIGGER("old", 1, 86400)
  SLOT_TRIGGER("old", 2, 604800)
  "END;"
  /* Every slot stored so far is due. */
  SLOT_MARKS(0, 3600) SLOT_MARKS(1, 86400) SLOT_MARKS(2, 604800);

static const char sql_begin[] = "BEGIN";
static const char sql_marks[] =
  "SELECT service, type, level, start, seq FROM rollup_dirty"
  " ORDER BY level, start";
static const char sql_mark_seq[] =
  "SELECT seq FROM rollup_dirty WHERE service = ?1 AND type = ?2"
  " AND level = ?3 AND start = ?4";
static const char sql_slot_rows[] =
  "SELECT id, labels FROM profiles WHERE service = ?1 AND type = ?2"
  " AND created_at BETWEEN ?3 AND ?4 ORDER BY created_at, id";
static const char sql_clean_mark[] =
  "DELETE FROM rollup_dirty WHERE service = ?1 AND type = ?2"
  " AND level = ?3 AND start = ?4 AND seq = ?5";
static const char sql_clear_slot[] =
  "DELETE FROM rollups WHERE service = ?1 AND type = ?2"
  " AND level = ?3 AND start = ?4";
static const char sql_put_data[] = "INSERT INTO rollup_data(data) VALUES(?1)";
static const char sql_put_rollup[] =
  "INSERT OR REPLACE INTO rollups(service, type, filter, level, start,"
  " profiles, data) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)";

/* One slot whose rollups are missing or stale, as of seq. */
typedef struct mark {
  char *service;
  meta_type type;
  int level;
  int64_t start, seq;
} mark;

/* The rollup of one group of filters that hold the same profiles. */
typedef struct group {
  char **filters; /* borrowed from the slot's filter list */
  size_t nfilters;
  int64_t profiles;
  uint64_t digest;
  void *data; /* the merge, malloc'd; NULL when it cannot be merged */
  size_t len;
} group;

/* ---- the slots due -------------------------------------------------------------- */

static void marks_free(mark *v, size_t n) {
  if (v == NULL) return;
  for (size_t i = 0; i < n; i++) free(v[i].service);
  free(v);
}

/* The dirty slots due at now, hours first, in a malloc'd array. */
static store_rc due_marks(store_local *l, int64_t now, mark **out, size_t *n,
                          char *err) {
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  mark *v = NULL;
  size_t k = 0, cap = 0;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_stmt(l, r, sql_marks, &s, err)) != STORE_OK) goto out;
  int src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    int level = sqlite3_column_int(s, 2);
    int64_t start = sqlite3_column_int64(s, 3);
    if (level < 0 || level >= STORE_ROLLUP_LEVELS ||
        !store_rollup_slot_valid(level, start) ||
        !store_rollup_due(level, start, now))
      continue;
    if (k == cap) {
      size_t ncap = cap ? 2 * cap : 64;
      mark *nv = realloc(v, ncap * sizeof *nv);
      if (nv == NULL) goto nomem;
      v = nv;
      cap = ncap;
    }
    const char *service = (const char *)sqlite3_column_text(s, 0);
    v[k] = (mark){.service = strdup(service ? service : ""),
                  .type = (meta_type)sqlite3_column_int(s, 1),
                  .level = level, .start = start,
                  .seq = sqlite3_column_int64(s, 4)};
    if (v[k++].service == NULL) goto nomem;
  }
  if (src != SQLITE_DONE)
    rc = store_local_sqlerr(l, r->db, src, err, "cannot list rollups");
  goto out;
nomem:
  rc = store_seterr(err, STORE_NOMEM, "out of memory");
out:
  store_local_reader_put(l, r);
  if (rc != STORE_OK) {
    marks_free(v, k);
    return rc;
  }
  *out = v;
  *n = k;
  return STORE_OK;
}

/* ---- building one slot ------------------------------------------------------------- */

/* The profiles of a slot: ids in merge order, each with the index of its
** label set among the slot's distinct sets. */
typedef struct slot_rows {
  char (*id)[META_ID_LEN + 1];
  size_t *set;
  size_t n, cap;
  char **sets;     /* distinct label sets, in first-seen order */
  int64_t *counts; /* profiles per set */
  size_t nsets, capsets;
} slot_rows;

static void slot_rows_free(slot_rows *s) {
  free(s->id);
  free(s->set);
  store_names_free(s->sets, s->nsets);
  free(s->counts);
}

/* Index of labels among s->sets, added if new; -1 when out of memory.
** A slot has few distinct sets next to its profiles: a linear search from
** the last one found is enough. */
static long set_index(slot_rows *s, const char *labels, size_t hint) {
  for (size_t k = 0; k < s->nsets; k++) {
    size_t i = (hint + k) % s->nsets;
    if (strcmp(s->sets[i], labels) == 0) return (long)i;
  }
  if (s->nsets == s->capsets) {
    size_t ncap = s->capsets ? 2 * s->capsets : 16;
    char **nv = realloc(s->sets, ncap * sizeof *nv);
    if (nv == NULL) return -1;
    s->sets = nv;
    int64_t *nc = realloc(s->counts, ncap * sizeof *nc);
    if (nc == NULL) return -1;
    s->counts = nc;
    s->capsets = ncap;
  }
  if ((s->sets[s->nsets] = strdup(labels)) == NULL) return -1;
  s->counts[s->nsets] = 0;
  return (long)s->nsets++;
}

static store_rc read_slot_rows(store_local *l, store_local_conn *r,
                               const mark *m, slot_rows *out, char *err) {
  sqlite3_stmt *s = NULL;
  store_rc rc = store_local_stmt(l, r, sql_slot_rows, &s, err);
  if (rc != STORE_OK) return rc;
  sqlite3_bind_text(s, 1, m->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)m->type);
  sqlite3_bind_int64(s, 3, m->start);
  sqlite3_bind_int64(s, 4, m->start + store_rollup_span(m->level) - 1);
  int src;
  size_t last = 0;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    const char *id = (const char *)sqlite3_column_text(s, 0);
    const char *labels = (const char *)sqlite3_column_text(s, 1);
    if (out->n == out->cap) {
      size_t ncap = out->cap ? 2 * out->cap : 64;
      char(*ni)[META_ID_LEN + 1] = realloc(out->id, ncap * sizeof *ni);
      if (ni == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
      out->id = ni;
      size_t *ns = realloc(out->set, ncap * sizeof *ns);
      if (ns == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
      out->set = ns;
      out->cap = ncap;
    }
    long k = set_index(out, labels ? labels : "", last);
    if (k < 0) return store_seterr(err, STORE_NOMEM, "out of memory");
    last = (size_t)k;
    snprintf(out->id[out->n], sizeof out->id[0], "%s", id ? id : "");
    out->set[out->n++] = (size_t)k;
    out->counts[k]++;
  }
  sqlite3_reset(s);
  if (src != SQLITE_DONE)
    return store_local_sqlerr(l, r->db, src, err, "cannot read profiles");
  return STORE_OK;
}

static int group_by_members(const void *a, const void *b) {
  const group *x = a, *y = b;
  if (x->profiles != y->profiles) return x->profiles > y->profiles ? -1 : 1;
  return x->digest < y->digest ? -1 : x->digest > y->digest;
}

static void groups_free(group *g, size_t n) {
  if (g == NULL) return;
  for (size_t i = 0; i < n; i++) {
    free(g[i].filters);
    free(g[i].data);
  }
  free(g);
}

/* Groups the filters of a slot by the profiles they hold (count and
** digest of the ids), dropping those of fewer than 2. */
static store_rc group_filters(const slot_rows *rows, char **filters,
                              size_t nf, group **out, size_t *nout,
                              char *err) {
  group *g = calloc(nf ? nf : 1, sizeof *g);
  unsigned char *match = malloc(rows->nsets ? rows->nsets : 1);
  size_t k = 0;
  if (g == NULL || match == NULL) goto nomem;
  for (size_t f = 0; f < nf; f++) {
    for (size_t i = 0; i < rows->nsets; i++)
      match[i] = (unsigned char)meta_labels_match(filters[f], rows->sets[i]);
    int64_t count = 0;
    uint64_t d = STORE_ROLLUP_DIGEST0;
    for (size_t i = 0; i < rows->n; i++)
      if (match[rows->set[i]]) {
        d = store_rollup_digest(d, rows->id[i]);
        count++;
      }
    if (count < 2) continue;
    if ((g[k].filters = malloc(sizeof *g[k].filters)) == NULL) goto nomem;
    g[k].filters[0] = filters[f];
    g[k].nfilters = 1;
    g[k].profiles = count;
    g[k].digest = d;
    k++;
  }
  /* Merge groups of equal members (sorted together). */
  qsort(g, k, sizeof *g, group_by_members);
  size_t u = 0;
  for (size_t i = 0; i < k; i++) {
    if (u > 0 && group_by_members(&g[u - 1], &g[i]) == 0) {
      char **nv = realloc(g[u - 1].filters,
                          (g[u - 1].nfilters + 1) * sizeof *nv);
      if (nv == NULL) goto nomem;
      g[u - 1].filters = nv;
      g[u - 1].filters[g[u - 1].nfilters++] = g[i].filters[0];
      free(g[i].filters);
      g[i].filters = NULL;
    } else {
      if (u != i) { /* moved: one owner of filters at a time */
        g[u] = g[i];
        g[i].filters = NULL;
      }
      u++;
    }
  }
  free(match);
  *out = g;
  *nout = u;
  return STORE_OK;
nomem:
  free(match);
  groups_free(g, k);
  return store_seterr(err, STORE_NOMEM, "out of memory");
}

/* Merges group g of slot m from the rollups of the levels below and the
** raw profiles (one core).  A group whose profiles cannot be merged gets
** no rollup: queries merge them profile by profile and report the error
** naming the profile. */
static store_rc merge_group(store_local *l, store_local_conn *r,
                            const mark *m, group *g, char *err) {
  store_mergepipe *p = NULL;
  size_t count = 0;
  store_rc rc = store_mergepipe_new(l->max_inflate, 1, &p, err);
  if (rc != STORE_OK) return rc;
  store_local_plan_query pq = {
    .service = m->service, .type = m->type, .filter = g->filters[0],
    .from = m->start, .to = m->start + store_rollup_span(m->level) - 1,
    .top = m->level - 1,
  };
  rc = store_local_merge_plan(l, r, &pq, p, &count, err);
  if (rc == STORE_OK && (int64_t)count != g->profiles)
    rc = store_seterr(err, STORE_IO, "rollup of %s: %zu profiles, want %lld",
                      m->service, count, (long long)g->profiles);
  if (rc == STORE_OK) rc = store_mergepipe_finish(p, &g->data, &g->len, err);
  if (rc == STORE_MISMATCH || rc == STORE_BADPROFILE) rc = STORE_OK;
  store_mergepipe_free(p);
  return rc;
}

/* Reads m's mark, profiles and the rollups below it in one snapshot and
** merges every group worth a rollup.  *seq: the mark's value in that
** snapshot (0 when it is gone: nothing to do). */
static store_rc build_slot(store_local *l, mark *m, char ***filters,
                           size_t *nfilters, group **groups, size_t *ngroups,
                           char *err) {
  store_local_conn *r = NULL;
  sqlite3_stmt *s = NULL;
  slot_rows rows = {0};
  int64_t *counts = NULL;
  store_rc rc = store_local_reader_get(l, &r, err);
  if (rc != STORE_OK) return rc;
  if ((rc = store_local_exec(l, r, sql_begin, "cannot read profiles", err)) !=
          STORE_OK ||
      (rc = store_local_stmt(l, r, sql_mark_seq, &s, err)) != STORE_OK)
    goto out;
  sqlite3_bind_text(s, 1, m->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)m->type);
  sqlite3_bind_int(s, 3, m->level);
  sqlite3_bind_int64(s, 4, m->start);
  int src = sqlite3_step(s);
  m->seq = src == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
  sqlite3_reset(s);
  if (src != SQLITE_ROW && src != SQLITE_DONE) {
    rc = store_local_sqlerr(l, r->db, src, err, "cannot read rollup mark");
    goto out;
  }
  if (m->seq == 0) goto out;
  if ((rc = read_slot_rows(l, r, m, &rows, err)) != STORE_OK ||
      (rc = store_rollup_filters((const char *const *)rows.sets, rows.counts,
                                 rows.nsets, filters, &counts, nfilters,
                                 err)) != STORE_OK ||
      (rc = group_filters(&rows, *filters, *nfilters, groups, ngroups,
                          err)) != STORE_OK)
    goto out;
  for (size_t i = 0; rc == STORE_OK && i < *ngroups; i++)
    rc = merge_group(l, r, m, &(*groups)[i], err);
out:
  free(counts);
  slot_rows_free(&rows);
  store_local_reader_put(l, r);
  return rc;
}

/* ---- storing a slot ------------------------------------------------------------------ */

typedef struct put_req {
  const mark *m;
  const group *g; /* groups [first, last) of this write */
  size_t first, last;
  int clear, done; /* first write of the slot: delete its rollups; last
                      write: clear its mark */
  size_t stored;   /* out: rollup rows written */
} put_req;

static void bind_slot(sqlite3_stmt *s, const mark *m) {
  sqlite3_bind_text(s, 1, m->service, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, (int)m->type);
  sqlite3_bind_int(s, 3, m->level);
  sqlite3_bind_int64(s, 4, m->start);
}

/* Runs in the writer, inside one transaction.  Writes only while the mark
** still has the value read with the profiles merged (else nothing, and the
** slot stays due); the last write of a slot clears the mark.  Rollups
** leave what queries see unchanged: no change for the generation. */
static store_rc write_slot(store_local *l, store_local_conn *c, void *arg,
                           int64_t *changes, char *err) {
  put_req *r = arg;
  const mark *m = r->m;
  sqlite3_stmt *seq = NULL, *clean = NULL, *clear = NULL, *data = NULL,
               *put = NULL;
  store_rc rc;
  (void)changes;
  if ((rc = store_local_stmt(l, c, sql_mark_seq, &seq, err)) != STORE_OK ||
      (rc = store_local_stmt(l, c, sql_clean_mark, &clean, err)) != STORE_OK ||
      (rc = store_local_stmt(l, c, sql_clear_slot, &clear, err)) != STORE_OK ||
      (rc = store_local_stmt(l, c, sql_put_data, &data, err)) != STORE_OK ||
      (rc = store_local_stmt(l, c, sql_put_rollup, &put, err)) != STORE_OK)
    return rc;
  bind_slot(seq, m);
  int src = sqlite3_step(seq);
  int same = src == SQLITE_ROW && sqlite3_column_int64(seq, 0) == m->seq;
  sqlite3_reset(seq);
  if (src != SQLITE_ROW && src != SQLITE_DONE) goto fail;
  if (!same) return STORE_OK;
  if (r->clear) {
    bind_slot(clear, m);
    if ((src = store_local_run(clear)) != SQLITE_OK) goto fail;
  }
  for (size_t i = r->first; i < r->last; i++) {
    const group *g = &r->g[i];
    if (g->data == NULL) continue;
    sqlite3_bind_blob64(data, 1, g->data, g->len, SQLITE_STATIC);
    if ((src = store_local_run(data)) != SQLITE_OK) goto fail;
    int64_t id = sqlite3_last_insert_rowid(c->db);
    for (size_t f = 0; f < g->nfilters; f++) {
      sqlite3_bind_text(put, 1, m->service, -1, SQLITE_STATIC);
      sqlite3_bind_int(put, 2, (int)m->type);
      sqlite3_bind_text(put, 3, g->filters[f], -1, SQLITE_STATIC);
      sqlite3_bind_int(put, 4, m->level);
      sqlite3_bind_int64(put, 5, m->start);
      sqlite3_bind_int64(put, 6, g->profiles);
      sqlite3_bind_int64(put, 7, id);
      if ((src = store_local_run(put)) != SQLITE_OK) goto fail;
      r->stored++;
    }
  }
  if (r->done) {
    bind_slot(clean, m);
    sqlite3_bind_int64(clean, 5, m->seq);
    if ((src = store_local_run(clean)) != SQLITE_OK) goto fail;
  }
  return STORE_OK;
fail:
  r->stored = 0;
  return store_local_sqlerr(l, c->db, src, err, "cannot store rollup");
}

/* Stores the groups of m in writes of about WRITE_CHUNK bytes. */
static store_rc store_slot(store_local *l, const mark *m, const group *g,
                           size_t n, size_t *made, char *err) {
  size_t i = 0;
  int first = 1;
  do {
    size_t bytes = 0, j = i;
    while (j < n && (j == i || bytes + g[j].len <= WRITE_CHUNK))
      bytes += g[j++].len;
    put_req p = {.m = m, .g = g, .first = i, .last = j, .clear = first,
                 .done = j == n};
    store_rc rc = store_local_write(l, write_slot, &p, 0, NULL, err);
    if (rc != STORE_OK) return rc;
    *made += p.stored;
    first = 0;
    i = j;
  } while (i < n);
  return STORE_OK;
}

/* ---- the builder ------------------------------------------------------------------- */

struct store_local_rollup {
  store_local *l;
  pthread_t thread;
  pthread_mutex_t mu;      /* guards stop */
  pthread_cond_t wake;     /* signalled by stop */
  int stop;
  pthread_mutex_t pass_mu; /* one pass at a time */
};

static int stopping(store_local_rollup *ru) {
  pthread_mutex_lock(&ru->mu);
  int stop = ru->stop;
  pthread_mutex_unlock(&ru->mu);
  return stop;
}

/* Builds the rollups of every due slot, hours first. */
static store_rc pass(store_local_rollup *ru, size_t *built, char *err) {
  store_local *l = ru->l;
  mark *v = NULL;
  size_t n = 0, made = 0;
  pthread_mutex_lock(&ru->pass_mu);
  store_rc rc = due_marks(l, (int64_t)time(NULL), &v, &n, err);
  for (size_t i = 0; rc == STORE_OK && i < n && !stopping(ru); i++) {
    char **filters = NULL;
    size_t nfilters = 0, ngroups = 0;
    group *groups = NULL;
    rc = build_slot(l, &v[i], &filters, &nfilters, &groups, &ngroups, err);
    if (rc == STORE_OK && v[i].seq != 0)
      rc = store_slot(l, &v[i], groups, ngroups, &made, err);
    groups_free(groups, ngroups);
    store_names_free(filters, nfilters);
  }
  pthread_mutex_unlock(&ru->pass_mu);
  marks_free(v, n);
  if (rc == STORE_OK && built != NULL) *built = made;
  return rc;
}

static void *rollup_main(void *arg) {
  store_local_rollup *ru = arg;
  pthread_mutex_lock(&ru->mu);
  while (!ru->stop) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ROLLUP_EVERY;
    while (!ru->stop &&
           pthread_cond_timedwait(&ru->wake, &ru->mu, &deadline) != ETIMEDOUT) {
    }
    if (ru->stop) break;
    pthread_mutex_unlock(&ru->mu);
    /* Failures (a full disk...) are retried at the next pass; rollups are
    ** only an optimisation. */
    pass(ru, NULL, NULL);
    pthread_mutex_lock(&ru->mu);
  }
  pthread_mutex_unlock(&ru->mu);
  return NULL;
}

static void rollup_free(store_local_rollup *ru) {
  pthread_cond_destroy(&ru->wake);
  pthread_mutex_destroy(&ru->mu);
  pthread_mutex_destroy(&ru->pass_mu);
  free(ru);
}

store_rc store_local_rollup_start(store_local *l, char *err) {
  assert(l->rollup == NULL && l->writer != NULL);
  store_local_rollup *ru = calloc(1, sizeof *ru);
  if (ru == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  ru->l = l;
  pthread_mutex_init(&ru->mu, NULL);
  pthread_mutex_init(&ru->pass_mu, NULL);
  pthread_cond_init(&ru->wake, &monotonic);
  pthread_condattr_destroy(&monotonic);
  if (pthread_create(&ru->thread, NULL, rollup_main, ru) != 0) {
    rollup_free(ru);
    return store_seterr(err, STORE_NOMEM, "cannot start the rollup thread");
  }
  l->rollup = ru;
  return STORE_OK;
}

void store_local_rollup_stop(store_local *l) {
  store_local_rollup *ru = l->rollup;
  if (ru == NULL) return;
  pthread_mutex_lock(&ru->mu);
  ru->stop = 1;
  pthread_cond_signal(&ru->wake);
  pthread_mutex_unlock(&ru->mu);
  pthread_join(ru->thread, NULL);
  rollup_free(ru);
  l->rollup = NULL;
}

store_rc store_local_maintain(void *impl, size_t *built, char *err) {
  store_local *l = impl;
  if (l->rollup == NULL)
    return store_seterr(err, STORE_READONLY, "store is read-only");
  return pass(l->rollup, built, err);
}
