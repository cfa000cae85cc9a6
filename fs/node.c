/*
** node.c — what exists in the FUSE view, its attributes and its listings.
**
** Everything is asked from the store each time (the kernel caches entries
** and attributes for FS_ATTR_TIMEOUT).  The tree is an ordinary one:
**   - a stored profile appears once, in the directory of exactly its label
**     set (the type directory for profiles without labels);
**   - a type or label directory exists once it holds profiles or was made
**     (mkdir, cp -r, tar, rsync: dirset.h), so that tools creating a tree
**     never meet one that "already exists";
**   - merge files exist when their range matches something; their stat never
**     merges (the size of the latest merge of that name, 0 before the
**     first: reads are direct_io and go to EOF), the open does;
**   - beside each listed merge file, its views (.svg, .folded, .top); the
**     diff tree has the same shape with a base range directory above the
**     target range files (fs/views.c renders both).
*/
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs_int.h"

/* The ready-made ranges listed in merge type directories (when not empty). */
static const char *const ready_ranges[] = {
  "now-1h..now", "now-24h..now", "now-7d..now",
};

/* The ready-made base ranges listed in diff type directories: the period
** before each ready range. */
static const char *const ready_bases[] = {
  "now-2h..now-1h", "now-48h..now-24h", "now-14d..now-7d",
};

/* The views listed beside each merge file (the suffixes view.h names). */
static const view_format listed_views[] = {VIEW_SVG, VIEW_FOLDED, VIEW_TOP};

static void stat_times(struct stat *st, int64_t t) {
  st->st_atime = st->st_mtime = st->st_ctime = (time_t)t;
}

static void stat_file(const fs *f, struct stat *st, mode_t mode, size_t size,
                      int64_t t) {
  memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | mode;
  st->st_nlink = 1;
  st->st_uid = f->uid;
  st->st_gid = f->gid;
  st->st_size = (off_t)size;
  st->st_blocks = (blkcnt_t)((size + 511) / 512);
  stat_times(st, t);
}

void fs_stat_dir(const fs *f, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_mode = S_IFDIR | 0755;
  st->st_nlink = 2;
  st->st_uid = f->uid;
  st->st_gid = f->gid;
  stat_times(st, f->mounted_at);
}

void fs_stat_stored(const fs *f, const store_meta *m, struct stat *st) {
  stat_file(f, st, 0444, (size_t)m->size, m->created_at);
}

void fs_stat_merge(const fs *f, const fs_mbuf *b, struct stat *st) {
  stat_file(f, st, 0444, fs_mbuf_len(b), fs_mbuf_time(b));
}

void fs_stat_pending(const fs *f, fs_wb *wb, struct stat *st) {
  fs_wb_info in;

  fs_wb_get_info(wb, &in);
  if (in.sealed && in.stored)  /* written and closed: a stored profile */
    stat_file(f, st, 0444, in.size, in.created_at);
  else
    stat_file(f, st, 0644, in.size, in.ctime);
}

static int cmp_name(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int fs_service_exists(fs *f, const char *service) {
  char **names = NULL;
  size_t n = 0;
  store_rc rc;
  int found;

  rc = store_services(f->st, &names, &n, NULL);
  if (rc != STORE_OK) return -fs_errno(rc);
  found = n > 0 && bsearch(&service, names, n, sizeof *names, cmp_name) != NULL;
  store_names_free(names, n);
  return found;
}

/* 1 when some profile matches q, 0 when none does, or -errno. */
static int any_match(fs *f, store_query *q) {
  store_meta_list ml = { 0 };
  store_rc rc;
  int found;

  q->limit = 1;
  rc = store_find(f->st, q, &ml, NULL);
  if (rc == STORE_NOTFOUND) return 0;
  if (rc != STORE_OK) return -fs_errno(rc);
  found = ml.n > 0;
  store_meta_list_free(&ml);
  return found;
}

int fs_type_has_profiles(fs *f, const char *service, meta_type type) {
  store_query q = { 0 };

  q.service = service;
  q.type = type;
  q.to = INT64_MAX;
  return any_match(f, &q);
}

int fs_type_exists(fs *f, const char *service, meta_type type) {
  if (fs_dirset_has(f->mkdirs, service, meta_type_name(type), "")) return 1;
  return fs_type_has_profiles(f, service, type);
}

int fs_labeldir_exists(fs *f, const char *service, meta_type type,
                       const char *labels, int exact) {
  if (fs_dirset_has(f->mkdirs, service, meta_type_name(type), labels))
    return 1;
  return fs_labels_stored(f, service, type, labels, exact);
}

int fs_labels_stored(fs *f, const char *service, meta_type type,
                     const char *labels, int exact) {
  store_rc rc = store_has_labels(f->st, service, type, labels, exact, NULL);

  if (rc == STORE_NOTFOUND) return 0;
  return rc == STORE_OK ? 1 : -fs_errno(rc);
}

int fs_rmdir_service(fs *f, const char *service) {
  char err[STORE_ERRMAX] = "";
  int t, rc;

  for (t = 0; t < META_NTYPES; t++) {
    rc = fs_type_has_profiles(f, service, (meta_type)t);
    if (rc != 0) return rc < 0 ? rc : -ENOTEMPTY;
    if (fs_dirset_has(f->mkdirs, service, meta_type_name((meta_type)t), ""))
      return -ENOTEMPTY;
  }
  rc = -fs_errno(store_remove_service(f->st, service, err));
  if (rc != 0) {
    fs_log("rmdir /%s: %s (%s)", service, strerror(-rc), err);
    return rc == -ENOTSUP ? -EPERM : rc;
  }
  fs_dirset_del_service(f->mkdirs, service);
  fs_log("removed service %s", service);
  return 0;
}

int fs_stored_meta(fs *f, const fs_path *p, store_meta *m) {
  store_meta tmp = { 0 };
  char stamp[META_TIME_MAX];
  void *data = NULL;
  size_t len = 0;
  store_rc rc;
  int err = -ENOENT;

  rc = store_stat_named(f->st, p->service, p->type, p->id, &tmp, NULL);
  if (rc != STORE_OK) {
    err = -fs_errno(rc);
    goto out;
  }
  meta_time_stamp(tmp.created_at, stamp);
  if (strcmp(tmp.service, p->service) != 0 || tmp.type != p->type ||
      strcmp(stamp, p->stamp) != 0 || strcmp(p->labels, tmp.labels) != 0)
    goto out;
  if (tmp.size < 0) {
    /* A backend that cannot tell sizes cheaply: ask for the bytes. */
    rc = store_get(f->st, store_meta_id(&tmp), NULL, &data, &len, NULL);
    free(data);
    if (rc != STORE_OK) {
      err = -fs_errno(rc);
      goto out;
    }
    tmp.size = (int64_t)len;
  }
  *m = tmp;
  return 0;
out:
  store_meta_clear(&tmp);
  return err;
}

void fs_merge_key(const fs_path *p, char key[FS_MKEY_MAX]) {
  char base[FS_PATH_MAX + 2] = "";

  /* A relative range names a different query every second: the text is
  ** the identity, the TTL bounds its age.  An absolute one is its values.
  ** The name carries the view's suffix.  The base's name is whole (it is
  ** part of a path, so it fits): cut, two bases that share a prefix were
  ** one cache entry, and the second diff read the first's bytes. */
  if (p->diff && p->relative)
    snprintf(base, sizeof base, "%s/", p->base_name);
  else if (p->diff)
    snprintf(base, sizeof base, "@%" PRId64 "..%" PRId64 "/", p->base_from,
             p->base_to);
  if (p->relative)
    snprintf(key, FS_MKEY_MAX, "%s%s/%s/%s/%s%s", p->diff ? "D:" : "",
             p->service, meta_type_name(p->type), p->labels, base, p->name);
  else
    snprintf(key, FS_MKEY_MAX, "%s%s/%s/%s/%s@%" PRId64 "..%" PRId64 "#%d",
             p->diff ? "D:" : "", p->service, meta_type_name(p->type),
             p->labels, base, p->from, p->to, p->view);
}

void fs_merge_query(const fs_path *p, store_query *q) {
  memset(q, 0, sizeof *q);
  q->service = p->service;
  q->type = p->type;
  q->labels = p->labels[0] != '\0' ? p->labels : NULL;
  q->from = p->from;
  q->to = p->to;
}

int fs_merge_get(fs *f, const fs_path *p, fs_mbuf **out) {
  store_query q;
  char key[FS_MKEY_MAX];
  char err[STORE_ERRMAX] = "";
  store_rc rc;

  fs_merge_query(p, &q);
  fs_merge_key(p, key);
  if (p->view != 0 || p->diff)
    rc = fs_view_get(f, p, key, out, err);
  else
    rc = fs_mcache_get(f->mc, key, p->relative, &q, out, err);
  if (rc != STORE_OK && rc != STORE_NOTFOUND)
    fs_log("merge %s/%s/%s%s%s failed: %s", p->service,
           meta_type_name(p->type), p->labels, p->labels[0] ? "/" : "",
           p->name, err);
  return -fs_errno(rc);
}

/* getattr of a FS_FILE: a stored profile, else a file being written or
** just written under that name. */
static int stat_file_node(fs *f, const char *path, const fs_path *p,
                          struct stat *st) {
  store_meta m;
  fs_wb *wb;
  int rc = -ENOENT;

  if (p->stored) {
    rc = fs_stored_meta(f, p, &m);
    if (rc == 0) {
      fs_stat_stored(f, &m, st);
      store_meta_clear(&m);
      return 0;
    }
    if (rc != -ENOENT) return rc;
  }
  wb = fs_wbtab_get(f->pending, path);
  if (wb == NULL) return rc;
  fs_stat_pending(f, wb, st);
  fs_wb_unref(wb);
  return 0;
}

/* 1 when some profile matches the query of the merge file p, 0 when none
** does, or -errno. */
static int merge_has_profiles(fs *f, const fs_path *p) {
  store_query q;
  int rc;

  fs_merge_query(p, &q);
  rc = any_match(f, &q);
  if (rc == 1 && p->diff) { /* a diff needs both ranges */
    q.from = p->base_from;
    q.to = p->base_to;
    rc = any_match(f, &q);
  }
  return rc;
}

/* Logs why the merge (or diff) file p at path is empty: the user asked for
** it, and an ENOENT alone does not say that the range missed what the
** service holds.  Of a diff, the range that is empty. */
static void log_empty_merge(fs *f, const char *path, const fs_path *p) {
  store_query q;
  char why[STORE_ERRMAX] = "";

  fs_merge_query(p, &q);
  if (p->diff && any_match(f, &q) == 1) {
    q.from = p->base_from;
    q.to = p->base_to;
  }
  store_explain_empty(f->st, &q, why);
  fs_log("no such path %s: %s", path, why);
}

/* Never merges (see the top of the file). */
static int stat_merge_node(fs *f, const char *path, const fs_path *p,
                           struct stat *st) {
  char key[FS_MKEY_MAX];
  fs_mbuf *b;
  int rc = merge_has_profiles(f, p);

  if (rc == 0) log_empty_merge(f, path, p);
  if (rc <= 0) return rc < 0 ? rc : -ENOENT;
  fs_merge_key(p, key);
  if ((b = fs_mcache_peek(f->mc, key)) != NULL) {
    fs_stat_merge(f, b, st);
    fs_mbuf_unref(b);
    return 0;
  }
  memset(st, 0, sizeof *st);
  st->st_mode = S_IFREG | 0444;
  st->st_nlink = 1;
  st->st_uid = f->uid;
  st->st_gid = f->gid;
  stat_times(st, (int64_t)time(NULL));
  return 0;
}

int fs_node_stat(fs *f, const char *path, const fs_path *p, struct stat *st) {
  int rc = 1;

  switch (p->node) {
    case FS_ROOT:
    case FS_MROOT:
      break;
    case FS_SERVICE:
    case FS_MSERVICE:
    case FS_MTYPE:
      rc = fs_service_exists(f, p->service);
      break;
    case FS_TYPE:
      rc = fs_service_exists(f, p->service);
      if (rc == 1) rc = fs_type_exists(f, p->service, p->type);
      break;
    case FS_LABELDIR:
    case FS_MLABELDIR:
    case FS_DBASE:
      rc = fs_service_exists(f, p->service);
      if (rc == 1 && p->labels[0] != '\0')
        rc = fs_labeldir_exists(f, p->service, p->type, p->labels,
                                p->node == FS_LABELDIR);
      break;
    case FS_FILE:
      return stat_file_node(f, path, p, st);
    case FS_MFILE:
      return stat_merge_node(f, path, p, st);
  }
  if (rc < 0) return rc;
  if (rc == 0) return -ENOENT;
  fs_stat_dir(f, st);
  return 0;
}

/* ---- listings ----------------------------------------------------------- */

typedef struct lister {
  fs *f;
  void *buf;
  fuse_fill_dir_t filler;
  int plus;
  char **sets;   /* label sets from the store, to skip duplicates */
  size_t nsets;
} lister;

/* Directories have the same attributes whatever they hold: they go with
** the entry (READDIRPLUS), so that `ls -l` never looks one up. */
static int add_dir(lister *l, const char *name) {
  struct stat st;

  fs_stat_dir(l->f, &st);
  return l->filler(l->buf, name, &st, 0, l->plus ? FUSE_FILL_DIR_PLUS : 0)
             != 0 ? -ENOMEM : 0;
}

static int add_merge_file(lister *l, const char *name) {
  struct stat st;

  memset(&st, 0, sizeof st);
  st.st_mode = S_IFREG | 0444;  /* size unknown until merged: no PLUS */
  return l->filler(l->buf, name, &st, 0, 0) != 0 ? -ENOMEM : 0;
}

static int add_stored(lister *l, const store_meta *m) {
  char name[FS_NAME_MAX];
  struct stat st;
  enum fuse_fill_dir_flags fl = 0;

  fs_name_format(m->id, m->type, m->created_at, name);
  if (m->size >= 0) {
    fs_stat_stored(l->f, m, &st);
    if (l->plus) fl = FUSE_FILL_DIR_PLUS;
  } else {
    memset(&st, 0, sizeof st);
    st.st_mode = S_IFREG | 0444;
  }
  return l->filler(l->buf, name, &st, 0, fl) != 0 ? -ENOMEM : 0;
}

static int list_services(lister *l, int merge) {
  char **names = NULL;
  size_t n = 0, i;
  store_rc rc;
  int err = 0;

  rc = store_services(l->f->st, &names, &n, NULL);
  if (rc != STORE_OK && rc != STORE_NOTFOUND) return -fs_errno(rc);
  for (i = 0; i < n && err == 0; i++)
    if (strcmp(names[i], FS_MERGE_DIR) != 0 &&
        strcmp(names[i], FS_DIFF_DIR) != 0)
      err = add_dir(l, names[i]);
  store_names_free(names, n);
  if (err == 0 && !merge) err = add_dir(l, FS_MERGE_DIR);
  if (err == 0 && !merge) err = add_dir(l, FS_DIFF_DIR);
  return err;
}

/* The merge tree shows every type but trace; the stored tree the types
** that exist. */
static int list_types(lister *l, const fs_path *p, int merge) {
  int t, err = 0, rc;

  for (t = 0; t < META_NTYPES && err == 0; t++) {
    if (merge && t == META_TRACE) continue;
    rc = merge ? 1 : fs_type_exists(l->f, p->service, (meta_type)t);
    if (rc < 0) return rc;
    if (rc == 1) err = add_dir(l, meta_type_name((meta_type)t));
  }
  return err;
}

static int add_mkdir_label(const char *labels, void *arg) {
  lister *l = arg;
  size_t i;

  for (i = 0; i < l->nsets; i++)
    if (strcmp(l->sets[i], labels) == 0) return 0;
  return add_dir(l, labels);
}

/* Label directories of service/type: the stored label sets and mkdir's. */
static int list_labeldirs(lister *l, const fs_path *p) {
  store_rc rc;
  size_t i;
  int err = 0;

  rc = store_label_sets(l->f->st, p->service, p->type, &l->sets, &l->nsets,
                        NULL);
  if (rc != STORE_OK && rc != STORE_NOTFOUND) return -fs_errno(rc);
  for (i = 0; i < l->nsets && err == 0; i++)
    if (l->sets[i][0] != '\0' && fs_name_valid(l->sets[i]))
      err = add_dir(l, l->sets[i]);
  if (err == 0)
    err = fs_dirset_foreach(l->f->mkdirs, p->service, meta_type_name(p->type),
                            add_mkdir_label, l);
  store_names_free(l->sets, l->nsets);
  l->sets = NULL;
  l->nsets = 0;
  return err;
}

static int list_profiles(lister *l, const fs_path *p) {
  store_query q = { 0 };
  store_meta_list ml = { 0 };
  store_rc rc;
  size_t i;
  int err = 0;

  q.service = p->service;
  q.type = p->type;
  q.labels = p->labels;
  q.exact = 1;
  q.from = l->f->window_sec > 0 ? (int64_t)time(NULL) - l->f->window_sec : 0;
  q.to = INT64_MAX;
  rc = store_find(l->f->st, &q, &ml, NULL);
  if (rc == STORE_NOTFOUND) return 0;
  if (rc != STORE_OK) return -fs_errno(rc);
  /* Each profile is listed in the directory of exactly its label set. */
  for (i = 0; i < ml.n && err == 0; i++)
    if (strcmp(ml.v[i].labels, p->labels) == 0) err = add_stored(l, &ml.v[i]);
  store_meta_list_free(&ml);
  return err;
}

/* The ready-made ranges that are not empty (an empty one would be listed
** but fail to stat, as a merge of nothing is ENOENT). */
static int list_ranges(lister *l, const fs_path *p) {
  char name[64];
  size_t i, k;
  int err = 0;

  fs_path r = *p;  /* its strings still point into p */

  for (i = 0; i < sizeof ready_ranges / sizeof *ready_ranges && err >= 0; i++) {
    if (fs_range_parse(ready_ranges[i], (int64_t)time(NULL), &r.from, &r.to,
                       &r.relative) != 0)
      continue;
    if ((err = merge_has_profiles(l->f, &r)) != 1)
      continue;
    err = add_merge_file(l, ready_ranges[i]);
    for (k = 0; err == 0 && k < sizeof listed_views / sizeof *listed_views;
         k++) {
      snprintf(name, sizeof name, "%s%s", ready_ranges[i],
               view_format_ext(listed_views[k]));
      err = add_merge_file(l, name);
    }
  }
  return err < 0 ? err : 0;
}

/* The ready-made base ranges of a diff type or label directory that are
** not empty. */
static int list_bases(lister *l, const fs_path *p) {
  size_t i;
  int err = 0;

  fs_path r = *p;

  r.diff = 0;
  for (i = 0; i < sizeof ready_bases / sizeof *ready_bases && err >= 0; i++) {
    if (fs_range_parse(ready_bases[i], (int64_t)time(NULL), &r.from, &r.to,
                       &r.relative) != 0)
      continue;
    err = merge_has_profiles(l->f, &r);
    if (err == 1) err = add_dir(l, ready_bases[i]);
  }
  return err < 0 ? err : 0;
}

int fs_node_list(fs *f, const fs_path *p, void *buf, fuse_fill_dir_t filler,
                 int plus) {
  lister l = { f, buf, filler, plus, NULL, 0 };
  int err;

  if ((err = add_dir(&l, ".")) != 0 || (err = add_dir(&l, "..")) != 0)
    return err;
  switch (p->node) {
    case FS_ROOT: return list_services(&l, 0);
    case FS_MROOT: return list_services(&l, 1);
    case FS_SERVICE: return list_types(&l, p, 0);
    case FS_MSERVICE: return list_types(&l, p, 1);
    case FS_TYPE:
      err = list_labeldirs(&l, p);
      return err != 0 ? err : list_profiles(&l, p);
    case FS_LABELDIR: return list_profiles(&l, p);
    case FS_MTYPE:
      err = p->diff ? list_bases(&l, p) : list_ranges(&l, p);
      return err != 0 ? err : list_labeldirs(&l, p);
    case FS_MLABELDIR: return p->diff ? list_bases(&l, p) : list_ranges(&l, p);
    case FS_DBASE: return list_ranges(&l, p);
    case FS_FILE:
    case FS_MFILE:
      break;
  }
  return -ENOTDIR;
}
