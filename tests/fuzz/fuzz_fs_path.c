/*
** fuzz_fs_path.c — libFuzzer target for the FUSE path classifier
** (fs/path.h: fs_path_parse, fs_name_stored, fs_name_format,
** fs_range_parse), which sees every path a user or program types under
** the mount.
**
** Input: a path (a leading '/' is added when missing, as libfuse always
** passes absolute paths).  Checks of an accepted path: the node is one of
** the enum; service names are valid and not the reserved "merge" outside
** /merge; merge nodes are never of type trace; labels are "" or
** canonical; a stored file name has a valid id and is exactly what
** fs_name_format writes for that id and stamp; a merge range (less a
** view's suffix: .svg, .folded, .top) has from <= to and is what
** fs_range_parse says.  A refusal is a negative errno.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz.h"
#include "path.h"
#include "view.h"

#define NOW 1700000000LL

/* Unix time of a "20060102T150405Z" stamp, or -1 when it is not a real
** date and time (then no name can be formatted back to it). */
static int64_t stamp_time(const char *stamp) {
  struct tm tm = { 0 }, back;
  time_t t;

  if (sscanf(stamp, "%4d%2d%2dT%2d%2d%2dZ", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  back = tm;
  t = timegm(&tm);
  if (t == (time_t)-1 || tm.tm_year != back.tm_year || tm.tm_mon != back.tm_mon ||
      tm.tm_mday != back.tm_mday || tm.tm_hour != back.tm_hour ||
      tm.tm_min != back.tm_min || tm.tm_sec != back.tm_sec)
    return -1;
  return (int64_t)t;
}

static void check_parsed(const fs_path *p) {
  int merge_side = p->node >= FS_MROOT;

  FUZZ_CHECK(p->node >= FS_ROOT && p->node <= FS_MFILE);
  if (p->node == FS_ROOT || p->node == FS_MROOT) return;
  FUZZ_CHECK(p->service != NULL && meta_service_valid(p->service));
  if (!merge_side) FUZZ_CHECK(strcmp(p->service, FS_MERGE_DIR) != 0);
  if (p->node == FS_SERVICE || p->node == FS_MSERVICE) return;
  FUZZ_CHECK((int)p->type >= 0 && p->type < META_NTYPES);
  if (merge_side) FUZZ_CHECK(p->type != META_TRACE);
  FUZZ_CHECK(p->labels != NULL);
  FUZZ_CHECK(p->labels[0] == '\0' || meta_labels_canonical(p->labels));
  if (p->node == FS_FILE) {
    char id[META_ID_LEN + 1], stamp[17], name[FS_NAME_MAX];
    int64_t t;

    FUZZ_CHECK(p->name != NULL && fs_name_valid(p->name));
    FUZZ_CHECK(!!p->stored == fs_name_stored(p->name, p->type, id, stamp));
    if (p->stored) {
      FUZZ_CHECK(meta_id_valid(p->id) && strcmp(p->id, id) == 0);
      FUZZ_CHECK(strcmp(p->stamp, stamp) == 0);
      if ((t = stamp_time(stamp)) >= 0) {
        fs_name_format(p->id, p->type, t, name);
        FUZZ_CHECK(strcmp(name, p->name) == 0);
      }
    }
  }
  if (p->node == FS_MFILE) {
    int64_t from, to;
    int rel;

    char range[FS_PATH_MAX];
    size_t n;

    FUZZ_CHECK(p->name != NULL && strlen(p->name) < sizeof range);
    FUZZ_CHECK(p->from <= p->to);
    /* "<from>..<to>", then the view's suffix (".svg", ...) when it has one */
    n = strlen(p->name);
    if (p->view != VIEW_PPROF) {
      const char *ext = view_format_ext((view_format)p->view);
      FUZZ_CHECK(n > strlen(ext) &&
                 strcmp(p->name + n - strlen(ext), ext) == 0);
      n -= strlen(ext);
    }
    memcpy(range, p->name, n);
    range[n] = '\0';
    FUZZ_CHECK(fs_range_parse(range, NOW, &from, &to, &rel) == 0);
    FUZZ_CHECK(from == p->from && to == p->to && !!rel == !!p->relative);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *path = malloc(size + 2);
  fs_path *p = malloc(sizeof *p);
  int64_t from = 1, to = 0;
  int rel = 0, rc;

  if (path == NULL || p == NULL) goto out;
  path[0] = '/';
  memcpy(path + 1, data, size);
  path[size + 1] = '\0';
  /* a path that already starts with '/' is used as is */
  rc = fs_path_parse(size > 0 && data[0] == '/' ? path + 1 : path, NOW, p);
  FUZZ_CHECK(rc <= 0 && rc > -4096);
  if (rc == 0) check_parsed(p);

  /* the helpers on the raw text, as a single component */
  if (fs_range_parse(path + 1, NOW, &from, &to, &rel) == 0)
    FUZZ_CHECK(from <= to);
  for (int t = 0; t < META_NTYPES; t++) {
    char id[META_ID_LEN + 1];
    if (fs_name_stored(path + 1, (meta_type)t, id, NULL))
      FUZZ_CHECK(meta_id_valid(id) && fs_name_valid(path + 1));
  }
out:
  free(p);
  free(path);
  return 0;
}
