/*
** path.c — classifies FUSE paths of the profefs view (see path.h).
**
** Pure string work on top of meta.h: no store calls, no clock (the caller
** passes "now"), so the unit test can pin every case down.
*/
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "path.h"

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

static int is_labels(const char *name) {
  return strchr(name, '=') != NULL && meta_labels_canonical(name);
}

/* Fills the part below <svc>/<type>/ : comp[0..n) are what follows. */
static int parse_below_type(fs_path *p, char **comp, int n, int merge,
                            int64_t now_sec) {
  if (n == 0) {
    p->node = merge ? FS_MTYPE : FS_TYPE;
    return 0;
  }
  if (is_labels(comp[0])) {
    p->labels = comp[0];
    comp++;
    n--;
    if (n == 0) {
      p->node = merge ? FS_MLABELDIR : FS_LABELDIR;
      return 0;
    }
  }
  if (n != 1) return -ENOENT;
  p->name = comp[0];
  if (merge) {
    if (fs_range_parse(p->name, now_sec, &p->from, &p->to, &p->relative) != 0)
      return -ENOENT;
    p->node = FS_MFILE;
    return 0;
  }
  p->node = FS_FILE;
  p->stored = fs_name_stored(p->name, p->type, p->id, p->stamp);
  return 0;
}

int fs_path_parse(const char *path, int64_t now_sec, fs_path *out) {
  char *comp[MAX_COMPONENTS];
  char **c = comp;
  int n, merge = 0, t;

  if (strlen(path) >= sizeof out->buf) return -ENOENT;
  memset(out, 0, sizeof *out);
  out->labels = "";
  strcpy(out->buf, path);
  n = split(out->buf, comp);
  if (n < 0) return -ENOENT;
  if (n == 0) {
    out->node = FS_ROOT;
    return 0;
  }
  if (!fs_name_valid(comp[n - 1])) return -EINVAL;

  if (strcmp(c[0], FS_MERGE_DIR) == 0) {
    merge = 1;
    c++;
    n--;
    if (n == 0) {
      out->node = FS_MROOT;
      return 0;
    }
  }
  if (!meta_service_valid(c[0])) return -ENOENT;
  out->service = c[0];
  if (n == 1) {
    out->node = merge ? FS_MSERVICE : FS_SERVICE;
    return 0;
  }
  t = meta_type_parse(c[1]);
  if (t < 0 || (merge && t == META_TRACE)) return -ENOENT;
  out->type = (meta_type)t;
  return parse_below_type(out, c + 2, n - 2, merge, now_sec);
}
