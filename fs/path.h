/*
** path.h — private to fs/: what a FUSE path names.
**
** The FUSE view is a fixed shape (DESIGN.md "FUSE view"), so every path can
** be classified from its text alone, before any store call:
**
**   /                                         FS_ROOT
**   /<svc>                                    FS_SERVICE
**   /<svc>/<type>                             FS_TYPE
**   /<svc>/<type>/<labels>                    FS_LABELDIR  (name contains '='
**                                             and parses as a label set, in
**                                             any key order: labels is the
**                                             canonical form)
**   /<svc>/<type>/[<labels>/]<name>           FS_FILE      (stored when <name>
**                                             is <stamp>_<id>.pb.gz / .trace)
**   /merge                                    FS_MROOT
**   /merge/<svc>                              FS_MSERVICE
**   /merge/<svc>/<type>                       FS_MTYPE     (not trace)
**   /merge/<svc>/<type>/<labels>              FS_MLABELDIR
**   /merge/<svc>/<type>/[<labels>/]<f>..<t>   FS_MFILE
**   /merge/<svc>/<type>/[<labels>/]<f>..<t>.svg  FS_MFILE with view set
**                                             (also .folded, .top)
**   /diff[/<svc>[/<type>[/<labels>]]]         FS_MROOT .. FS_MLABELDIR with
**                                             diff set
**   /diff/<svc>/<type>/[<labels>/]<bf>..<bt>  FS_DBASE (the base range)
**   /diff/.../<bf>..<bt>/<f>..<t>[.svg|...]   FS_MFILE with diff set
**
** Whether the thing exists (the service, the id, a match for the merge) is
** for the caller to ask the store.
*/
#ifndef PROFEFS_FS_PATH_H
#define PROFEFS_FS_PATH_H

#include <stdint.h>

#include "meta.h"

/* The reserved top-level names of the merge and diff views. */
#define FS_MERGE_DIR "merge"
#define FS_DIFF_DIR "diff"

/* Longest path the view has: 255-byte service, type, 255-byte label set and
** 255-byte file name, plus "/merge" and separators. */
#define FS_PATH_MAX 1024

typedef enum fs_node {
  FS_ROOT = 0,
  FS_SERVICE,
  FS_TYPE,
  FS_LABELDIR,
  FS_FILE,
  FS_MROOT,
  FS_MSERVICE,
  FS_MTYPE,
  FS_MLABELDIR,
  FS_MFILE,
  FS_DBASE
} fs_node;

typedef struct fs_path {
  fs_node node;
  const char *service;   /* FS_SERVICE and below; points into buf */
  meta_type type;        /* FS_TYPE and below */
  const char *labels;    /* canonical filter; "" when there is no label dir;
                         ** points into buf or lbuf */
  const char *name;      /* FS_FILE / FS_MFILE: the last component */
  /* FS_FILE with the stored shape: */
  int stored;
  char id[META_ID_LEN + 1];
  char stamp[17];        /* "20060102T150405Z" */
  int has_stamp;         /* stamp is set: a stored name, or a temporary
                         ** name made from one (".NAME.XXXXXX") */
  /* FS_MFILE: the range, resolved against the caller's now */
  int64_t from, to;
  int relative;          /* from or to depends on now: results age */
  int view;              /* FS_MFILE: a view_format (view.h), 0 = pprof */
  int diff;              /* under /diff: base_* is the base range */
  int64_t base_from, base_to;
  const char *base_name; /* FS_DBASE and a diff's FS_MFILE: "<bf>..<bt>" */
  const char *why;       /* on failure: why the path cannot exist, for logs */
  char buf[FS_PATH_MAX];
  char lbuf[FS_PATH_MAX]; /* the canonical form of a label dir name */
} fs_path;

/* Classifies path (absolute, as libfuse passes it) into *out, resolving merge
** ranges against now_sec.  Returns 0, or
**   -EINVAL  the last component is not a valid name at all (empty, control
**            characters, "." / "..", too long); lookups report ENOENT,
**            creates report EINVAL;
**   -ENOENT  a well-formed name that cannot exist here (unknown type, a
**            service name that is not valid, a bad merge range, too deep).
** On failure out->why says why (a constant string) and the rest of *out
** is unspecified. */
int fs_path_parse(const char *path, int64_t now_sec, fs_path *out);

/* 1 when name may be a file or directory name of the view: 1..255 bytes,
** no '/' or control characters, not "." or "..". */
int fs_name_valid(const char *name);

/* 1 when name has the shape of a stored profile's file name for type t;
** fills id and stamp (either may be NULL). */
int fs_name_stored(const char *name, meta_type t, char id[META_ID_LEN + 1],
                   char stamp[17]);

/* The unix time of a stamp "20060102T150405Z" (as fs_name_stored gives). */
int64_t fs_stamp_time(const char stamp[17]);

/* Writes the file name of a stored profile into out (FS_NAME_MAX bytes). */
#define FS_NAME_MAX 64
void fs_name_format(const char *id, meta_type t, int64_t created_at,
                    char out[FS_NAME_MAX]);

/* Parses "<from>..<to>" (meta_time_parse formats) against now_sec.
** Returns 0 and sets *from, *to, *relative; -1 for a bad time or from > to. */
int fs_range_parse(const char *name, int64_t now_sec, int64_t *from,
                   int64_t *to, int *relative);

#endif /* PROFEFS_FS_PATH_H */
