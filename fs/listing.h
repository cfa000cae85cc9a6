/*
** listing.h — private to fs/: the listing of one open directory, kept from
** the readdir at offset 0 to its releasedir, handed out by offset.
**
** Why: libfuse 3.14's high-level API sends the attributes of a listing's
** entries to the kernel (READDIRPLUS) only when the filler is given
** non-zero offsets; with offset 0 it buffers the names and tells the
** kernel to ignore their attributes (ino 0), so `ls -l` of 20,000 label
** directories looked each one up again.  With offsets, the kernel asks
** for the listing in pieces of a few dozen entries: the listing is made
** once per open directory (a snapshot, as getdents gives) and each piece
** is served from it.
*/
#ifndef PROFEFS_FS_LISTING_H
#define PROFEFS_FS_LISTING_H

#define FUSE_USE_VERSION 312
#include <fuse.h>

typedef struct fs_listing fs_listing;

/* An empty listing, or NULL out of memory. */
fs_listing *fs_listing_new(void);

/* Frees l; accepts NULL. */
void fs_listing_free(fs_listing *l);

/* Empties l and returns the filler (fuse_fill_dir_t) that appends to it,
** for fs_node_list with buf = l: it fails (non-zero) only out of memory. */
fuse_fill_dir_t fs_listing_reset(fs_listing *l);

/* 1 once l was filled (fs_listing_reset then a successful listing). */
int fs_listing_ready(const fs_listing *l);
void fs_listing_set_ready(fs_listing *l);

/* Hands the entries of l from offset off on to filler (the kernel's
** buffer), each with its offset (its index + 1) and, when plus, its
** attributes if it has them, until filler says the buffer is full.
** Never fails. */
void fs_listing_emit(const fs_listing *l, off_t off, void *buf,
                     fuse_fill_dir_t filler, int plus);

#endif /* PROFEFS_FS_LISTING_H */
