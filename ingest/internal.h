/*
** internal.h — private to ingest/: what its files share.
**
**   ingest.c     types, labels, Pyroscope names, stacks -> pprof
**   multipart.c  multipart/form-data fields
**   push.c       the Connect push request (proto and JSON)
*/
#ifndef PROFEFS_INGEST_INTERNAL_H
#define PROFEFS_INGEST_INTERNAL_H

#include "ingest.h"

/* Writes the formatted reason into err (INGEST_ERRMAX bytes) unless err
** is NULL; returns -1, for `return ingest_fail(err, ...)`. */
int ingest_fail(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif /* PROFEFS_INGEST_INTERNAL_H */
