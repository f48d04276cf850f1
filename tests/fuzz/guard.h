/* Guard pages around attached segments, for the fuzzers.
 *
 * The library attaches with shmat(shmid, NULL, flags), and the kernel may
 * place the segment right beside other mappings, where a stray read past
 * either end would go unnoticed.  While guard_pages_on is set, this
 * program's shmat() (which the library's calls bind to, since an executable's
 * definition comes before libc's) reserves the segment's size plus two pages
 * PROT_NONE and attaches the segment in the middle with SHM_REMAP, so an
 * access one byte outside it faults.  This covers both of a table's
 * segments, the root and each data segment the library attaches.  Segments
 * are attached with their size rounded up to a page: the fuzzers make data
 * segments of page-multiple sizes so that the guard starts right at the
 * last byte; the root is a few hundred bytes, so a stray read into the
 * rest of its page goes unnoticed (shmat maps whole pages at page-aligned
 * addresses: the root's end cannot be put flush against a guard).  Nothing in the library
 * changes, and with the flag clear shmat() and shmdt() are the plain system
 * calls. */
#ifndef SHMKV_FUZZ_GUARD_H
#define SHMKV_FUZZ_GUARD_H

extern int guard_pages_on;

/* Attachments currently between guard pages (for the tests of this file). */
int guard_pages_attached(void);

#endif
