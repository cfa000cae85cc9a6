/*
** view.h — views of a merged profile for people without a Go toolchain:
** folded stacks, an interactive SVG flame graph, a `go tool pprof -top`
** table, and the same for the diff of two merges.
**
** Every view is computed from a merge's output (the gzip pprof bytes a
** store merge returns), decoded once; nothing here merges profiles again
** or knows about stores, HTTP or FUSE.  Every front end (httpd/, fs/) calls
** this module, so the mount and HTTP give the same bytes.
**
** Formats:
**   pprof   the profile itself (a diff: `go tool pprof -diff_base`'s);
**   folded  "root;...;leaf VALUE" per distinct stack, frames are function
**           names, inlined functions' lines are frames of their own
**           (outermost first), zero stacks left out; a diff gives
**           "STACK BASE TARGET" (difffolded.pl's format);
**   svg     a self-contained flame graph (hover, click to zoom, search,
**           reset; no network); a diff colours red what grew and blue what
**           shrank, widths from the target;
**   top     the text of `go tool pprof -top` (same numbers and units);
**   json    the top table's rows as JSON, for the web page.
** The sample type is the one named by `sample`, else pprof's default
** (default_sample_type, else the last).
**
** Memory: a view holds the decoded profile and one node per distinct
** stack prefix, so it stays within a small multiple of the merge's own
** bound.  Thread-safe: no shared state.
*/
#ifndef PROFEFS_VIEW_H
#define PROFEFS_VIEW_H

#include <stddef.h>
#include <stdint.h>

#define VIEW_ERRMAX 256

typedef enum view_format {
  VIEW_PPROF = 0,
  VIEW_FOLDED,
  VIEW_SVG,
  VIEW_TOP,
  VIEW_JSON
} view_format;

typedef enum view_rc {
  VIEW_OK = 0,
  VIEW_EINVAL,    /* unknown sample type */
  VIEW_EPROFILE,  /* the bytes are no valid profile */
  VIEW_EMISMATCH, /* diff: the two sides' sample types differ */
  VIEW_ENOMEM
} view_rc;

/* The format named name ("pprof", "folded", "svg", "top", "json"; NULL or
** "" is pprof) in *out: 0, or -1 for an unknown name (*out unchanged). */
int view_format_parse(const char *name, view_format *out);

/* The file name suffix of a format: "" for pprof, ".folded", ".svg",
** ".top", ".json". */
const char *view_format_ext(view_format f);

/* The HTTP Content-Type of a format (static string). */
const char *view_content_type(view_format f);

/* Renders the view f of the profile pprof[0..len) (gzip or plain).
** sample names the sample type (NULL or "": pprof's default); title heads
** the svg (may be NULL).  VIEW_PPROF returns a copy of the input.  On
** success *out (malloc'd, caller frees) and *olen are set; on failure they
** are unchanged and err says why (VIEW_EINVAL names the sample types
** there are). */
view_rc view_render(const void *pprof, size_t len, view_format f,
                    const char *sample, const char *title, void **out,
                    size_t *olen, char err[VIEW_ERRMAX]);

/* Renders the view f of the diff of base and target (two profiles as for
** view_render): VIEW_PPROF is pprof_diff's profile; the other views are
** computed from it.  Fails as view_render, plus VIEW_EMISMATCH when the
** two sides' sample or period types differ. */
view_rc view_diff(const void *base, size_t blen, const void *target,
                  size_t tlen, view_format f, const char *sample,
                  const char *title, void **out, size_t *olen,
                  char err[VIEW_ERRMAX]);

/* The title of a flame graph of a merge, the same for every front end
** (the mount gives the bytes HTTP gives): "service type [labels]
** FROM..TO" with UTC times, a diff's "BASE-FROM..BASE-TO -> FROM..TO"
** when diff is set.  Malloc'd (caller frees); NULL when out of memory. */
char *view_title(const char *service, const char *type, const char *labels,
                 int diff, int64_t base_from, int64_t base_to, int64_t from,
                 int64_t to);

#endif /* PROFEFS_VIEW_H */
