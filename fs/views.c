/*
** views.c — the view files of the mount: <from>..<to>.svg / .folded /
** .top beside each merge file, and the diff tree
** /diff/<svc>/<type>/[<labels>/]<base-from>..<base-to>/<from>..<to>[.view].
**
** A view is rendered (view/view.h) from the merge of its range(s), got
** through the merge cache under the plain merge's own key, so that
** `cat x..y.svg` after `go tool pprof x..y` merges once; the rendered
** bytes are cached under the view's key, with the same freshness.  The
** bytes are those HTTP gives for the same query (same renderer, same
** title from view_title).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs_int.h"

typedef struct view_job {
  fs *f;
  const fs_path *p;
} view_job;

/* The plain merge of the range from..to of p (through the cache). */
static store_rc get_merge(fs *f, const fs_path *p, int64_t from, int64_t to,
                          fs_mbuf **out, char *err) {
  char key[FS_MKEY_MAX];
  store_query q;
  fs_path m = *p; /* strings still point into p */

  m.diff = 0;
  m.view = 0;
  m.relative = 0; /* keyed by its resolved values */
  m.from = from;
  m.to = to;
  fs_merge_query(&m, &q);
  fs_merge_key(&m, key);
  return fs_mcache_get(f->mc, key, 0, &q, out, err);
}

static store_rc of_view(view_rc rc) {
  switch (rc) {
  case VIEW_OK: return STORE_OK;
  case VIEW_ENOMEM: return STORE_NOMEM;
  case VIEW_EMISMATCH: return STORE_MISMATCH;
  default: return STORE_BADPROFILE;
  }
}

/* fs_mcache_fn: renders the view of the job's path. */
static store_rc render(fs_mcache *mc, void *arg, void **data, size_t *len,
                       char *err) {
  view_job *j = arg;
  const fs_path *p = j->p;
  fs_mbuf *base = NULL, *target = NULL;
  char verr[VIEW_ERRMAX] = "", *title = NULL;
  store_rc rc;

  (void)mc;
  rc = get_merge(j->f, p, p->from, p->to, &target, err);
  if (rc == STORE_OK && p->diff)
    rc = get_merge(j->f, p, p->base_from, p->base_to, &base, err);
  if (rc != STORE_OK)
    goto out;
  if (p->view == VIEW_SVG &&
      (title = view_title(p->service, meta_type_name(p->type), p->labels,
                          p->diff, p->base_from, p->base_to, p->from,
                          p->to)) == NULL) {
    rc = STORE_NOMEM;
    goto out;
  }
  if (p->diff)
    rc = of_view(view_diff(fs_mbuf_data(base), fs_mbuf_len(base),
                           fs_mbuf_data(target), fs_mbuf_len(target),
                           (view_format)p->view, NULL, title, data, len,
                           verr));
  else
    rc = of_view(view_render(fs_mbuf_data(target), fs_mbuf_len(target),
                             (view_format)p->view, NULL, title, data, len,
                             verr));
  if (rc != STORE_OK && err != NULL)
    snprintf(err, STORE_ERRMAX, "%s", verr);
out:
  free(title);
  fs_mbuf_unref(base);
  fs_mbuf_unref(target);
  return rc;
}

store_rc fs_view_get(fs *f, const fs_path *p, const char *key, fs_mbuf **out,
                     char err[STORE_ERRMAX]) {
  view_job j = {f, p};

  return fs_mcache_compute(f->mc, key, p->relative, render, &j, out, err);
}
