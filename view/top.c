/*
** top.c — the table of `go tool pprof -top` (granularity functions), with
** pprof's numbers, units and headers, and the same rows as JSON.
**
** What pprof does, followed here step by step (internal/report and
** internal/graph of the pprof that Go 1.19 ships):
**   - a node per function name; a sample whose value is 0 is skipped;
**     its value goes to the cum of every distinct node of its stack once,
**     and to the flat of its leaf;
**   - total = sum of |value| over samples; in a diff, over the base's
**     samples only (label pprof::base);
**   - nodes with |cum| < |(int64)(sum of flats * 0.005)| are dropped
**     ("Dropped N nodes (cum <= X)", X from the total);
**   - rows by |flat| descending, then name, then |cum|;
**   - one output unit for the whole table, from the smallest non-zero
**     node value and the total (selectOutputUnit), values "%.2f" with
**     ".00" trimmed; percentages as measurement.Percentage;
**   - "(inline)" / "(partial-inline)" after a function whose calls into it
**     were all / partly inlined.
*/
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "internal.h"

#define NONE UINT32_MAX

/* ---- pprof's measurement package ---------------------------------------- */

typedef struct unit {
  const char *name;
  const char *alias[4];
  double factor;
} unit;

typedef struct unit_type {
  unit units[6];
  size_t n;
  size_t def; /* index of the default unit */
} unit_type;

static const unit_type unit_types[] = {
    {{{"B", {"b", "byte"}, 1},
      {"kB", {"kb", "kbyte", "kilobyte"}, 1024.0},
      {"MB", {"mb", "mbyte", "megabyte"}, 1048576.0},
      {"GB", {"gb", "gbyte", "gigabyte"}, 1073741824.0},
      {"TB", {"tb", "tbyte", "terabyte"}, 1099511627776.0},
      {"PB", {"pb", "pbyte", "petabyte"}, 1125899906842624.0}},
     6, 0},
    {{{"ns", {"ns", "nanosecond"}, 1},
      {"us", {"\xce\xbcs", "us", "microsecond"}, 1e3},
      {"ms", {"ms", "millisecond"}, 1e6},
      {"s", {"s", "sec", "second"}, 1e9},
      {"hrs", {"hour", "hr"}, 3.6e12}},
     5, 3},
};

/* sniffUnit: the unit of type ut named s (lower case, a trailing 's'
** dropped past 2 characters), or NULL. */
static const unit *sniff(const unit_type *ut, const char *s) {
  char low[64];
  size_t n = strlen(s), i, j;

  if (n >= sizeof low)
    return NULL;
  for (i = 0; i < n; i++)
    low[i] = (char)((s[i] >= 'A' && s[i] <= 'Z') ? s[i] + 32 : s[i]);
  low[n] = '\0';
  if (n > 2 && low[n - 1] == 's')
    low[n - 1] = '\0';
  for (i = 0; i < ut->n; i++)
    for (j = 0; j < 4 && ut->units[i].alias[j]; j++)
      if (strcmp(low, ut->units[i].alias[j]) == 0)
        return &ut->units[i];
  return NULL;
}

/* measurement.Scale: value in from converted to to ("minimum"/"auto":
** the largest unit the value is at least 1 of); the unit name in *uname
** ("" for counts). */
static double scale(int64_t value, const char *from, const char *to,
                    const char **uname) {
  const unit *fu, *tu;
  double v, f = 0;
  size_t i, k;

  if (value < 0 && value != INT64_MIN) /* pprof's test: -value > 0 */
    return -scale(-value, from, to, uname);
  for (k = 0; k < sizeof unit_types / sizeof unit_types[0]; k++) {
    const unit_type *ut = &unit_types[k];
    if ((fu = sniff(ut, from)) == NULL)
      continue;
    v = (double)value * fu->factor;
    if (strcmp(to, "minimum") == 0 || strcmp(to, "auto") == 0) {
      *uname = NULL;
      for (i = 0; i < ut->n; i++)
        if (ut->units[i].factor >= f && v / ut->units[i].factor >= 1.0) {
          f = ut->units[i].factor;
          *uname = ut->units[i].name;
        }
      if (*uname != NULL)
        return v / f;
      *uname = ut->units[ut->def].name;
      return v / ut->units[ut->def].factor;
    }
    if ((tu = sniff(ut, to)) == NULL)
      tu = &ut->units[ut->def];
    *uname = tu->name;
    return v / tu->factor;
  }
  if (strcmp(to, "count") == 0 || strcmp(to, "sample") == 0 ||
      strcmp(to, "unit") == 0 || strcmp(to, "minimum") == 0 ||
      strcmp(to, "auto") == 0)
    *uname = "";
  else
    *uname = to;
  return (double)value;
}

/* measurement.ScaledLabel into out (64 bytes). */
static void scaled_label(int64_t value, const char *from, const char *to,
                         char *out) {
  const char *u;
  double v = scale(value, from, to, &u);
  size_t n;

  snprintf(out, 64, "%.2f", v);
  n = strlen(out);
  if (n >= 3 && strcmp(out + n - 3, ".00") == 0)
    out[n - 3] = '\0';
  if (strcmp(out, "0") == 0 || strcmp(out, "-0") == 0) {
    strcpy(out, "0");
    return;
  }
  snprintf(out + strlen(out), 64 - strlen(out), "%s", u);
}

void view_label(int64_t v, const char *uname, char out[64]) {
  scaled_label(v, uname, "auto", out);
}

/* measurement.Percentage into out (32 bytes). */
static void percentage(int64_t value, int64_t total, char *out) {
  double r = total != 0 ? fabs((double)value / (double)total) * 100 : 0;

  if (r >= 99.95 && r <= 100.05)
    snprintf(out, 32, "  100%%");
  else if (r >= 1.0)
    snprintf(out, 32, "%5.2f%%", r);
  else
    snprintf(out, 32, "%5.2g%%", r);
}

static int64_t abs64(int64_t v) { return v < 0 ? view_neg(v) : v; }

/* ---- the graph ------------------------------------------------------------- */

typedef struct tnode {
  int64_t flat, cum;
  size_t stamp; /* 1 + the last sample that added to cum */
  int kept, in_inline, in_call;
} tnode;

typedef struct tedge {
  uint32_t from, to;
  size_t stamp;
  int inl; /* every occurrence was an inlined call */
} tedge;

typedef struct top {
  const pprof_stacks *st;
  size_t type;
  tnode *node; /* by name number */
  tedge *edge;
  size_t nedge, capedge;
  uint32_t *eslot;
  size_t emask;
  int64_t total;
} top;

static uint32_t ehash(uint32_t a, uint32_t b) {
  return (uint32_t)((((uint64_t)a << 32) | b) * 0x9e3779b97f4a7c15ULL >> 32);
}

/* The edge from -> to, made if missing (inl 1); NULL when out of memory. */
static tedge *edge(top *t, uint32_t from, uint32_t to) {
  size_t pos, i, n;
  uint32_t e, *slot;
  tedge *ne;

  if (t->eslot == NULL || 2 * (t->nedge + 1) > t->emask + 1) {
    n = t->eslot ? 2 * (t->emask + 1) : 1024;
    if ((slot = malloc(n * sizeof *slot)) == NULL)
      return NULL;
    memset(slot, 0xff, n * sizeof *slot);
    for (i = 0; i < t->nedge; i++) {
      pos = ehash(t->edge[i].from, t->edge[i].to) & (n - 1);
      while (slot[pos] != NONE)
        pos = (pos + 1) & (n - 1);
      slot[pos] = (uint32_t)i;
    }
    free(t->eslot);
    t->eslot = slot;
    t->emask = n - 1;
  }
  for (pos = ehash(from, to) & t->emask; (e = t->eslot[pos]) != NONE;
       pos = (pos + 1) & t->emask)
    if (t->edge[e].from == from && t->edge[e].to == to)
      return &t->edge[e];
  if (t->nedge == t->capedge) {
    n = t->capedge ? 2 * t->capedge : 1024;
    if ((ne = realloc(t->edge, n * sizeof *ne)) == NULL)
      return NULL;
    t->edge = ne;
    t->capedge = n;
  }
  t->eslot[pos] = (uint32_t)t->nedge;
  ne = &t->edge[t->nedge++];
  ne->from = from;
  ne->to = to;
  ne->stamp = 0;
  ne->inl = 1;
  return ne;
}

/* Flat and cum of every name, and the total. */
static void sum_nodes(top *t) {
  size_t i, j, nf, ns = pprof_stacks_nsamples(t->st);
  int64_t v, tot = 0, diff_tot = 0;
  const uint32_t *fr;
  tnode *n;

  for (i = 0; i < ns; i++) {
    v = pprof_stacks_value(t->st, i, t->type);
    tot = view_add(tot, abs64(v));
    if (pprof_stacks_is_base(t->st, i))
      diff_tot = view_add(diff_tot, abs64(v));
    if (v == 0)
      continue;
    fr = pprof_stacks_frames(t->st, i, &nf);
    for (j = 0; j < nf; j++) {
      n = &t->node[fr[j] & ~PPROF_FRAME_INLINED];
      if (n->stamp != i + 1) {
        n->stamp = i + 1;
        n->cum = view_add(n->cum, v);
      }
    }
    if (nf > 0)
      t->node[fr[nf - 1] & ~PPROF_FRAME_INLINED].flat =
          view_add(t->node[fr[nf - 1] & ~PPROF_FRAME_INLINED].flat, v);
  }
  t->total = diff_tot > 0 ? diff_tot : tot;
}

/* Marks the kept nodes; returns how many were dropped (of those that
** exist: cum or flat not 0). */
static size_t keep_nodes(top *t, size_t nnames) {
  int64_t sum = 0, cutoff;
  size_t k, dropped = 0;

  for (k = 0; k < nnames; k++)
    sum = view_add(sum, t->node[k].flat);
  cutoff = abs64((int64_t)((double)sum * 0.005));
  for (k = 0; k < nnames; k++) {
    tnode *n = &t->node[k];
    if (n->cum == 0 && n->flat == 0)
      continue;
    n->kept = cutoff <= 0 || abs64(n->cum) >= cutoff;
    dropped += !n->kept;
  }
  return dropped;
}

/* The edges between kept nodes and the inline marks of their targets.
** 0 or -1 when out of memory. */
static int mark_inline(top *t) {
  size_t i, j, nf, ns = pprof_stacks_nsamples(t->st);
  const uint32_t *fr;
  uint32_t k, parent;
  tedge *e;

  for (i = 0; i < ns; i++) {
    if (pprof_stacks_value(t->st, i, t->type) == 0)
      continue;
    fr = pprof_stacks_frames(t->st, i, &nf);
    for (parent = NONE, j = 0; j < nf; j++) {
      k = fr[j] & ~PPROF_FRAME_INLINED;
      if (!t->node[k].kept)
        continue;
      if (parent != NONE && parent != k) {
        if ((e = edge(t, parent, k)) == NULL)
          return -1;
        if (e->stamp != i + 1) {
          e->stamp = i + 1;
          if (!(fr[j] & PPROF_FRAME_INLINED))
            e->inl = 0;
        }
      }
      parent = k;
    }
  }
  for (i = 0; i < t->nedge; i++) {
    if (t->edge[i].inl)
      t->node[t->edge[i].to].in_inline = 1;
    else
      t->node[t->edge[i].to].in_call = 1;
  }
  return 0;
}

/* Row order (FlatNameOrder); arg is the top. */
static int by_flat(const void *a, const void *b, void *arg) {
  const top *t = arg;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  int64_t fx = abs64(t->node[x].flat), fy = abs64(t->node[y].flat);
  int c;

  if (fx != fy)
    return fx > fy ? -1 : 1;
  if ((c = strcmp(pprof_stacks_name(t->st, x), pprof_stacks_name(t->st, y))))
    return c;
  fx = abs64(t->node[x].cum);
  fy = abs64(t->node[y].cum);
  return fx != fy ? (fx > fy ? -1 : 1) : (x > y) - (x < y);
}

/* selectOutputUnit: the unit every value of the table is written in. */
static const char *output_unit(const top *t, const uint32_t *rows, size_t n,
                               const char *sunit) {
  int64_t minv = 0, nm, maxv = t->total;
  const char *minu, *maxu, *u;
  size_t i;

  if (n == 0)
    return "minimum";
  for (i = 0; i < n; i++) {
    nm = abs64(t->node[rows[i]].flat);
    if (nm == 0)
      nm = abs64(t->node[rows[i]].cum);
    if (nm > 0 && (minv == 0 || nm < minv))
      minv = nm;
  }
  if (minv == 0)
    minv = maxv;
  scale(minv, sunit, "minimum", &minu);
  scale(maxv, sunit, "minimum", &maxu);
  u = minu;
  if (strcmp(minu, maxu) != 0 && minv < INT64_MAX / 100 && minv * 100 < maxv)
    scale(100 * minv, sunit, "minimum", &u);
  return *u ? u : sunit;
}

/* pprof's ProfileLabels and reportLabels. */
static void headers(const top *t, const char *sunit, const char *ounit,
                    int64_t flat_sum, size_t dropped, vbuf *b) {
  int64_t tn = pprof_stacks_time_nanos(t->st);
  int64_t dn = pprof_stacks_duration_nanos(t->st);
  char v1[64], v2[64], p[32], tb[64];
  const char *u;
  double tot_ns;
  struct tm tm;
  time_t secs;
  size_t i;

  const char *file = pprof_stacks_main_file(t->st), *c;

  if (*file) {
    c = strrchr(file, '/');
    vbuf_printf(b, "File: %s\n", c ? c + 1 : file);
  }
  if (*pprof_stacks_build_id(t->st))
    vbuf_printf(b, "Build ID: %s\n", pprof_stacks_build_id(t->st));
  for (i = 0; (c = pprof_stacks_comment(t->st, i)) != NULL; i++)
    if (c[0] != '#')
      vbuf_printf(b, "%s\n", c);
  vbuf_printf(b, "Type: %s\n", pprof_stacks_type(t->st, t->type));
  if (tn != 0) {
    secs = (time_t)(tn / 1000000000);
    if (tn < 0 && tn % 1000000000)
      secs--;
    gmtime_r(&secs, &tm);
    strftime(tb, sizeof tb, "%b %-d, %Y at %-I:%M%p", &tm);
    for (i = strlen(tb) - 2; tb[i]; i++) /* Go writes "pm" */
      tb[i] = (char)(tb[i] + ('a' - 'A'));
    vbuf_printf(b, "Time: %s (UTC)\n", tb);
  }
  if (dn != 0) {
    scaled_label(dn, "nanoseconds", "auto", v1);
    scaled_label(t->total, sunit, ounit, v2);
    tot_ns = scale(t->total, sunit, "nanoseconds", &u);
    p[0] = '\0';
    if (strcmp(u, "ns") == 0 && tot_ns != 0) {
      percentage((int64_t)tot_ns, dn, p);
      vbuf_printf(b, "Duration: %s, Total samples = %s (%s)\n", v1, v2, p);
    } else {
      vbuf_printf(b, "Duration: %s, Total samples = %s \n", v1, v2);
    }
  }
  scaled_label(flat_sum, sunit, ounit, v1);
  scaled_label(t->total, sunit, ounit, v2);
  percentage(flat_sum, t->total, p);
  vbuf_printf(b, "Showing nodes accounting for %s, %s of %s total\n", v1,
              p + strspn(p, " "), v2);
  if (t->total != 0 && dropped > 0) {
    scaled_label(abs64((int64_t)((double)t->total * 0.005)), sunit, ounit,
                 v1);
    vbuf_printf(b, "Dropped %zu node%s (cum <= %s)\n", dropped,
                dropped > 1 ? "s" : "", v1);
  }
}

static void text_rows(const top *t, const uint32_t *rows, size_t n,
                      const char *sunit, const char *ounit, vbuf *b) {
  char fl[64], cu[64], p1[32], p2[32], p3[32];
  int64_t sum = 0;
  size_t i;

  vbuf_printf(b, "%10s %5s%% %5s%% %10s %5s%%\n", "flat", "flat", "sum",
              "cum", "cum");
  for (i = 0; i < n; i++) {
    const tnode *nd = &t->node[rows[i]];
    sum = view_add(sum, nd->flat);
    scaled_label(nd->flat, sunit, ounit, fl);
    scaled_label(nd->cum, sunit, ounit, cu);
    percentage(nd->flat, t->total, p1);
    percentage(sum, t->total, p2);
    percentage(nd->cum, t->total, p3);
    vbuf_printf(b, "%10s %s %s %10s %s  %s%s\n", fl, p1, p2, cu, p3,
                pprof_stacks_name(t->st, rows[i]),
                !nd->in_inline ? ""
                : nd->in_call  ? " (partial-inline)"
                               : " (inline)");
  }
}

static void json_rows(const top *t, const uint32_t *rows, size_t n,
                      const char *sunit, vbuf *b) {
  size_t i;

  vbuf_puts(b, "{\"sample_type\":\"");
  vbuf_json(b, pprof_stacks_type(t->st, t->type));
  vbuf_puts(b, "\",\"unit\":\"");
  vbuf_json(b, sunit);
  vbuf_printf(b, "\",\"total\":%" PRId64 ",\"rows\":[", t->total);
  for (i = 0; i < n; i++) {
    vbuf_puts(b, i ? ",\n{\"name\":\"" : "\n{\"name\":\"");
    vbuf_json(b, pprof_stacks_name(t->st, rows[i]));
    vbuf_printf(b, "\",\"flat\":%" PRId64 ",\"cum\":%" PRId64 "}",
                t->node[rows[i]].flat, t->node[rows[i]].cum);
  }
  vbuf_puts(b, "]}\n");
}

int view_top(const pprof_stacks *st, size_t type, int json, vbuf *b) {
  size_t nnames = pprof_stacks_nnames(st), k, n = 0, dropped;
  const char *sunit = pprof_stacks_unit(st, type), *ounit;
  uint32_t *rows = NULL;
  int64_t flat_sum = 0;
  top t;
  int rc = -1;

  memset(&t, 0, sizeof t);
  t.st = st;
  t.type = type;
  if ((t.node = calloc(nnames + 1, sizeof *t.node)) == NULL ||
      (rows = malloc((nnames + 1) * sizeof *rows)) == NULL)
    goto out;
  sum_nodes(&t);
  dropped = keep_nodes(&t, nnames);
  if (mark_inline(&t))
    goto out;
  for (k = 0; k < nnames; k++)
    if (t.node[k].kept) {
      rows[n++] = (uint32_t)k;
      flat_sum = view_add(flat_sum, t.node[k].flat);
    }
  qsort_r(rows, n, sizeof *rows, by_flat, &t);
  ounit = output_unit(&t, rows, n, sunit);
  if (json) {
    json_rows(&t, rows, n, sunit, b);
  } else {
    headers(&t, sunit, ounit, flat_sum, dropped, b);
    text_rows(&t, rows, n, sunit, ounit, b);
  }
  rc = 0;
out:
  free(rows);
  free(t.node);
  free(t.edge);
  free(t.eslot);
  return rc;
}
