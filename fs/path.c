/*
** path.c — classifies FUSE paths of the profefs view (see path.h).
**
** Pure string work on top of meta.h: no store calls, no clock (the caller
** passes "now"), so the unit test can pin every case down.
*/
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "path.h"
#include "view.h"

#define MAX_COMPONENTS 6

static const char *type_ext(meta_type t) {
  return t == META_TRACE ? ".trace" : ".pb.gz";
}

int fs_name_valid(const char *name) {
  size_t n = strlen(name);
  const unsigned char *p;

  if (n == 0 || n > 255) return 0;
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) return 0;
  for (p = (const unsigned char *)name; *p != '\0'; p++)
    if (*p == '/' || *p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

static int all_digits(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (s[i] < '0' || s[i] > '9') return 0;
  return 1;
}

int fs_name_stored(const char *name, meta_type t, char id[META_ID_LEN + 1],
                   char stamp[17]) {
  const char *ext = type_ext(t);
  char idbuf[META_ID_LEN + 1];

  /* 20060102T150405Z_<20 chars><ext> */
  if (strlen(name) != 17 + META_ID_LEN + strlen(ext)) return 0;
  if (!all_digits(name, 8) || name[8] != 'T' || !all_digits(name + 9, 6) ||
      name[15] != 'Z' || name[16] != '_')
    return 0;
  if (strcmp(name + 17 + META_ID_LEN, ext) != 0) return 0;
  memcpy(idbuf, name + 17, META_ID_LEN);
  idbuf[META_ID_LEN] = '\0';
  if (!meta_id_valid(idbuf)) return 0;
  if (id != NULL) memcpy(id, idbuf, sizeof idbuf);
  if (stamp != NULL) {
    memcpy(stamp, name, 16);
    stamp[16] = '\0';
  }
  return 1;
}

static int digits(const char *s, int n) {
  int v = 0;
  while (n-- > 0) v = v * 10 + (*s++ - '0');
  return v;
}

int64_t fs_stamp_time(const char stamp[17]) {
  struct tm tm = { 0 };

  tm.tm_year = digits(stamp, 4) - 1900;
  tm.tm_mon = digits(stamp + 4, 2) - 1;
  tm.tm_mday = digits(stamp + 6, 2);
  tm.tm_hour = digits(stamp + 9, 2);
  tm.tm_min = digits(stamp + 11, 2);
  tm.tm_sec = digits(stamp + 13, 2);
  return (int64_t)timegm(&tm);
}

/* 1 when name holds a stored name's "<stamp>_<id>" at its start or after
** a leading '.', as the temporary names of rsync (".NAME.XXXXXX") and
** editors do; fills stamp. */
static int name_stamp(const char *name, char stamp[17]) {
  char id[META_ID_LEN + 1];
  const char *s = name[0] == '.' ? name + 1 : name;

  if (strlen(s) < 17 + META_ID_LEN || !all_digits(s, 8) || s[8] != 'T' ||
      !all_digits(s + 9, 6) || s[15] != 'Z' || s[16] != '_')
    return 0;
  memcpy(id, s + 17, META_ID_LEN);
  id[META_ID_LEN] = '\0';
  if (!meta_id_valid(id)) return 0;
  memcpy(stamp, s, 16);
  stamp[16] = '\0';
  return 1;
}

void fs_name_format(const char *id, meta_type t, int64_t created_at,
                    char out[FS_NAME_MAX]) {
  char stamp[META_TIME_MAX];

  meta_time_stamp(created_at, stamp);
  snprintf(out, FS_NAME_MAX, "%s_%s%s", stamp, id, type_ext(t));
}

/* meta_time_parse on the n bytes at s. */
static int time_part(const char *s, size_t n, int64_t now_sec, int64_t *out,
                     int *relative) {
  char buf[128];

  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (meta_time_parse(buf, now_sec, out) != 0) return -1;
  if (strncmp(buf, "now", 3) == 0) *relative = 1;
  return 0;
}

int fs_range_parse(const char *name, int64_t now_sec, int64_t *from,
                   int64_t *to, int *relative) {
  const char *dots = strstr(name, "..");
  int64_t f, t;
  int rel = 0;

  if (dots == NULL) return -1;
  if (time_part(name, (size_t)(dots - name), now_sec, &f, &rel) != 0 ||
      time_part(dots + 2, strlen(dots + 2), now_sec, &t, &rel) != 0)
    return -1;
  if (f > t) return -1;
  *from = f;
  *to = t;
  *relative = rel;
  return 0;
}

/* Splits buf in place at '/'; returns the number of components or -1. */
static int split(char *buf, char *comp[MAX_COMPONENTS]) {
  int n = 0;
  char *p = buf, *slash;

  if (*p != '/') return -1;
  p++;
  while (*p != '\0') {
    if (n == MAX_COMPONENTS) return -1;
    comp[n++] = p;
    slash = strchr(p, '/');
    if (slash == NULL) break;
    *slash = '\0';
    p = slash + 1;
  }
  return n;
}

/* 1 when name is a label set (it has a '=' and parses), with its
** canonical form in p->lbuf; 0 when it is not one; -1 when it has a '='
** but does not parse or its canonical form is too long. */
static int parse_labels(fs_path *p, const char *name) {
  char *canon = NULL;
  size_t n;

  if (strchr(name, '=') == NULL) return 0;
  if (meta_labels_canonical(name)) {
    p->labels = name;
    return 1;
  }
  if (meta_labels_parse(name, &canon, NULL) != 0) return -1;
  n = strlen(canon);
  if (n == 0 || n >= sizeof p->lbuf) {
    free(canon);
    return -1;
  }
  memcpy(p->lbuf, canon, n + 1);
  free(canon);
  p->labels = p->lbuf;
  return 1;
}

static int fail(fs_path *p, int err, const char *why) {
  p->why = why;
  return err;
}

/* The view a merge file's name asks for by its suffix (0 = pprof), and
** the length of the name without it. */
static int view_suffix(const char *name, size_t *len) {
  static const view_format views[] = {VIEW_SVG, VIEW_FOLDED, VIEW_TOP};
  size_t n = strlen(name), e, i;

  for (i = 0; i < sizeof views / sizeof views[0]; i++) {
    e = strlen(view_format_ext(views[i]));
    if (n > e && strcmp(name + n - e, view_format_ext(views[i])) == 0) {
      *len = n - e;
      return (int)views[i];
    }
  }
  *len = n;
  return 0;
}

/* Fills an FS_MFILE from its name p->name: "<from>..<to>[.view]". */
static int parse_range_file(fs_path *p, int64_t now_sec) {
  char range[FS_PATH_MAX];
  size_t len;
  int rel = p->relative;

  p->view = view_suffix(p->name, &len);
  memcpy(range, p->name, len);
  range[len] = '\0';
  if (fs_range_parse(range, now_sec, &p->from, &p->to, &p->relative) != 0)
    return fail(p, -ENOENT, strstr(range, "..") == NULL
                                ? "not a range <from>..<to>"
                                : "bad time in range, or from after to");
  p->relative |= rel; /* a diff whose base is relative ages too */
  p->node = FS_MFILE;
  return 0;
}

/* Fills the part below <svc>/<type>/ : comp[0..n) are what follows. */
static int parse_below_type(fs_path *p, char **comp, int n, int merge,
                            int64_t now_sec) {
  if (n == 0) {
    p->node = merge ? FS_MTYPE : FS_TYPE;
    return 0;
  }
  switch (parse_labels(p, comp[0])) {
    case 1:
      comp++;
      n--;
      if (n == 0) {
        p->node = merge ? FS_MLABELDIR : FS_LABELDIR;
        return 0;
      }
      break;
    case 0:
      break;
    default:
      return fail(p, -ENOENT, "not a label set (k=v,k=v)");
  }
  if (merge && p->diff) {
    if (fs_range_parse(comp[0], now_sec, &p->base_from, &p->base_to,
                       &p->relative) != 0)
      return fail(p, -ENOENT, "not a base range <from>..<to>");
    p->base_name = comp[0];
    comp++;
    n--;
    if (n == 0) {
      p->node = FS_DBASE;
      return 0;
    }
  }
  if (n != 1)
    return fail(p, -ENOENT, merge ? "too deep: <from>..<to> is a file"
                                  : "too deep: only one label directory");
  p->name = comp[0];
  if (merge)
    return parse_range_file(p, now_sec);
  p->node = FS_FILE;
  p->stored = fs_name_stored(p->name, p->type, p->id, p->stamp);
  if (!p->stored) p->has_stamp = name_stamp(p->name, p->stamp);
  else p->has_stamp = 1;
  return 0;
}

int fs_path_parse(const char *path, int64_t now_sec, fs_path *out) {
  char *comp[MAX_COMPONENTS];
  char **c = comp;
  int n, merge = 0, t;

  out->why = "path too long";
  if (strlen(path) >= sizeof out->buf) return -ENOENT;
  memset(out, 0, offsetof(fs_path, buf));
  out->labels = "";
  strcpy(out->buf, path);
  n = split(out->buf, comp);
  if (n < 0) return fail(out, -ENOENT, "too deep");
  if (n == 0) {
    out->node = FS_ROOT;
    return 0;
  }
  if (!fs_name_valid(comp[n - 1]))
    return fail(out, -EINVAL, "not a valid name");

  if (strcmp(c[0], FS_MERGE_DIR) == 0 || strcmp(c[0], FS_DIFF_DIR) == 0) {
    out->diff = strcmp(c[0], FS_DIFF_DIR) == 0;
    merge = 1;
    c++;
    n--;
    if (n == 0) {
      out->node = FS_MROOT;
      return 0;
    }
  }
  if (!meta_service_valid(c[0]))
    return fail(out, -ENOENT, "not a valid service name");
  out->service = c[0];
  if (n == 1) {
    out->node = merge ? FS_MSERVICE : FS_SERVICE;
    return 0;
  }
  t = meta_type_parse(c[1]);
  if (t < 0)
    return fail(out, -ENOENT,
                "not a type (cpu heap block mutex goroutine threadcreate "
                "wall other trace)");
  if (merge && t == META_TRACE)
    return fail(out, -ENOENT, "traces are never merged");
  out->type = (meta_type)t;
  return parse_below_type(out, c + 2, n - 2, merge, now_sec);
}
