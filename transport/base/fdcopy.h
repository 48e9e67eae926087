/* Internal: copy bytes between descriptors, in the kernel where it can. */
#ifndef GP_BASE_FDCOPY_H
#define GP_BASE_FDCOPY_H

/* Copies from `in` (at its offset) to `out` until in's end or `limit`
 * bytes, whichever comes first; both offsets advance. sendfile where the
 * kernel takes the pair, read/write where it does not. Returns 1 at in's
 * end, 0 at the limit first, -1 on an error (errno set; part may have
 * been copied). */
int gp__fd_copy(int in, int out, long long limit);

#endif
